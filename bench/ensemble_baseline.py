"""The original ensemble's shape, for bench-ensemble only: whole arrays in memory, a DataFrame of all rows."""

import json
import sys

import numpy as np
import pandas as pd


def main(out_csv, test_json, *npys):
    ids = [img["file_name"] for img in json.load(open(test_json))["images"]]
    total = sum(np.load(p).astype(np.float32) for p in npys) / len(npys)
    rows = [
        {"image_id": i, "PredictionString": " ".join(map(str, pred.reshape(-1).tolist()))}
        for i, pred in zip(ids, total.argmax(1))
    ]
    pd.DataFrame(rows).to_csv(out_csv, index=False)


if __name__ == "__main__":
    main(*sys.argv[1:])
