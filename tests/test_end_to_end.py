"""The real make targets, in order, on a generated 11-class COCO set: folds -> train -> infer ->
ensemble -> validated CSV, plus eval. Tiny encoder, 64 px, one epoch: it checks the plumbing."""
import csv
import json
import os
import subprocess

import numpy as np
import torch

from conftest import ROOT, TINY_ENCODER
from trashseg.submission import validate_submission


def make(target, **variables):
    cmd = ["make", "--no-print-directory", "-C", str(ROOT), target] + [f"{k}={v}" for k, v in variables.items()]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def test_make_targets_from_coco_to_valid_csv(coco_dir, tmp_path):
    runs, subs = tmp_path / "runs", tmp_path / "subs"
    common = dict(DATA_DIR=coco_dir, RUNS=runs, ARGS=f"--set data.cache_dir={tmp_path / 'cache'}")
    train = dict(common, FOLD=0, EPOCHS=1, BATCH=4, IMG_SIZE=64, ENCODER=TINY_ENCODER, WEIGHTS="none",
                 WORKERS=0, DEVICE="cpu")

    out = make("folds", DATA_DIR=coco_dir, K=3, SEED=3)
    assert "fold 2:" in out and (coco_dir / "valid_data2.json").is_file()

    out = make("check-data", **common)
    assert "Clothing" in out and "0 problem(s)" in out

    for model in ("fpn", "deeplab"):
        out = make(f"train-{model}", **train)
        assert "best epoch 1" in out
        run = runs / model / "fold0"
        rows = list(csv.DictReader(open(run / "metrics.csv")))
        assert len(rows) == 1 and 0.0 <= float(rows[0]["val_miou"]) <= 1.0
        ckpt = torch.load(run / "best.pt", weights_only=True)
        assert ckpt["epoch"] == 1 and ckpt["config"]["model"]["encoder"] == TINY_ENCODER
        assert (run / "last.pt").is_file() and (run / "config.yaml").is_file()

        make(f"infer-{model}", **train)
        for split, n in (("test", 4), ("valid", len(json.loads((coco_dir / "valid_data0.json").read_text())["images"]))):
            probs = np.load(run / f"probs_{split}.npy", mmap_mode="r")
            manifest = json.loads((run / f"probs_{split}.json").read_text())
            assert probs.shape == (n, 11, 256, 256) and probs.dtype == np.float16
            assert manifest["resolution"] == 256 and len(manifest["image_ids"]) == n
            assert np.allclose(probs[0].astype(np.float32).sum(0), 1.0, atol=1e-2)

    out = make("ensemble", DATA_DIR=coco_dir, RUNS=runs, SUBMISSIONS=subs, NAME="e2e")
    assert "valid submission, 4 rows" in out
    test_ids = [img["file_name"] for img in json.loads((coco_dir / "test.json").read_text())["images"]]
    assert validate_submission(subs / "e2e.csv", test_ids) == 4
    out = make("validate-submission", DATA_DIR=coco_dir, FILE=subs / "e2e.csv")
    assert "valid submission" in out

    result_path = tmp_path / "eval.json"
    out = make("eval-fpn", **train, JSON=coco_dir / "valid_data0.json", OUT=result_path)
    result = json.loads(result_path.read_text())
    assert {"miou", "miou_per_image", "per_class_iou"} <= result.keys()
    assert set(result["per_class_iou"]) == {"Background", "General trash", "Paper", "Paper pack", "Metal",
                                            "Glass", "Plastic", "Styrofoam", "Plastic bag", "Battery", "Clothing"}
    assert "mIoU (dataset)" in out


def test_missing_data_dir_says_where_data_goes(tmp_path):
    proc = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "train-fpn", f"DATA_DIR={tmp_path}",
                           f"RUNS={tmp_path}/runs"], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "has no train_all.json" in proc.stderr and "DATA_DIR=data/sample" in proc.stderr
    assert "Traceback" not in proc.stderr
