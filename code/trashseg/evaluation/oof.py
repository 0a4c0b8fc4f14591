"""Out-of-fold scoring: every fold's validation probabilities, gathered, against train_all.json.

Each training image was predicted by the one model that never saw it, so this is the honest score
of a recipe, and the only one the kit fits or compares ensembles and tricks on (never the test set).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from trashseg.atomic import write_json
from trashseg.cli import base_parser, friendly_errors
from trashseg.data.coco import CocoSet, read_json
from trashseg.config import load_config
from trashseg.errors import TrashsegError
from trashseg.inference.tta import probs_suffix
from trashseg.data.loaders import load_set
from trashseg.data.masks import MaskCache, read_mask
from trashseg.evaluation.metrics import Scorer, format_table
from trashseg.inference.probs import ProbsReader


def oof_readers(runs_dir: Path, model: str, suffix: str = "") -> list[ProbsReader]:
    files = sorted((Path(runs_dir) / model).glob(f"fold*/probs_valid{suffix}.npy"))
    if not files:
        flags = (" TTA=1" if "_tta" in suffix else "") + (" CRF=1" if "_crf" in suffix else "")
        raise TrashsegError(f"no {runs_dir}/{model}/fold*/probs_valid{suffix}.npy: run `make infer-{model} FOLD=k"
                            f"{flags}` for every fold first")
    return [ProbsReader(f) for f in files]


def index_rows(readers: list[ProbsReader]) -> dict[str, tuple[ProbsReader, int]]:
    """file_name -> (reader, row); an image predicted by two folds is an error (leaky folds)."""
    rows: dict[str, tuple[ProbsReader, int]] = {}
    for r in readers:
        for i, name in enumerate(r.image_ids):
            if name in rows:
                raise TrashsegError(f"{name} is in the validation split of both {rows[name][0].path} and {r.path}")
            rows[name] = (r, i)
    return rows


class Truth:
    """Ground-truth masks of train_all.json at the scoring size, by file_name."""

    def __init__(self, cfg: dict, train_all: CocoSet, size: int):
        self.size = size
        cache = MaskCache(cfg["data"]["cache_dir"])
        self.paths = dict(zip((train_all.file_name(i) for i in train_all.image_ids), cache.build(train_all)))

    def names(self) -> list[str]:
        return list(self.paths)

    def __call__(self, name: str) -> np.ndarray:
        return cv2.resize(read_mask(self.paths[name]), (self.size, self.size), interpolation=cv2.INTER_NEAREST)


def covered(truth: Truth, rows: dict, what: str) -> list[str]:
    names = [n for n in truth.names() if n in rows]
    missing = len(truth.names()) - len(names)
    if not names:
        raise TrashsegError(f"{what}: none of the train_all.json images has an out-of-fold prediction")
    if missing:
        print(f"warning: {what}: {missing} of {len(truth.names())} train_all.json images have no out-of-fold "
              "prediction (folds not all inferred?); scoring the rest")
    return names


def score_model(cfg: dict, truth: Truth, model: str, suffix: str) -> dict:
    readers = oof_readers(Path(cfg["train"]["runs_dir"]), model, suffix)
    rows = index_rows(readers)
    scorer = Scorer()
    for name in tqdm(covered(truth, rows, model), desc=f"oof {model}", leave=False):
        reader, i = rows[name]
        scorer.update(truth(name), reader.row(i).argmax(0))
    for r in readers:
        r.close()
    result = scorer.result()
    result.update({"model": model, "folds": [str(r.path) for r in readers], "post": suffix.strip("_") or "none"})
    return result


def compare_with_plain(result: dict, plain_path: Path) -> dict | None:
    """Gain (negative: loss) of a post-processed OOF score over the plain one on the same images."""
    if not plain_path.is_file():
        return None
    plain = read_json(plain_path)
    if plain.get("images") != result["images"]:
        return None
    return {"miou": result["miou"] - plain["miou"],
            "miou_per_image": result["miou_per_image"] - plain["miou_per_image"]}


def describe_comparison(post: str, comparison: dict | None, model: str) -> str:
    if comparison is None:
        return (f"no plain OOF score on the same images to compare with: run `make oof MODEL={model}` "
                "(without TTA/CRF) first")
    word = "gain" if comparison["miou"] >= 0 else "loss"
    return (f"{post} vs plain OOF: {word} {comparison['miou']:+.4f} dataset mIoU, "
            f"{comparison['miou_per_image']:+.4f} per-image mIoU")


def main(argv=None) -> None:
    parser = base_parser("Score out-of-fold predictions of all folds")
    parser.add_argument("--model", required=True)
    parser.add_argument("--train-all", default="train_all.json")
    args = parser.parse_args(argv)

    @friendly_errors
    def run():
        cfg = load_config(None, args.overrides)
        data_dir = Path(cfg["data"]["data_dir"])
        truth = Truth(cfg, load_set(cfg, data_dir / args.train_all), int(cfg["eval"]["score_size"]))
        suffix = probs_suffix(cfg)
        result = score_model(cfg, truth, args.model, suffix)
        model_dir = Path(cfg["train"]["runs_dir"]) / args.model
        comparison = compare_with_plain(result, model_dir / "oof.json") if suffix else None
        if comparison:
            result["vs_plain"] = comparison
        out = model_dir / f"oof{suffix}.json"
        write_json(out, result)
        print(f"out-of-fold, {args.model}{' (' + suffix.strip('_') + ')' if suffix else ''}, {result['images']} images:")
        print(format_table(result))
        if suffix:
            print(describe_comparison(result["post"], comparison, args.model))
        print(f"wrote {out}")

    run()


if __name__ == "__main__":
    main()
