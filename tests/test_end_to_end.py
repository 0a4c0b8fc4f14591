"""The real make targets, in order, on the bundled sample of real photos: folds split by date ->
check-data -> cv (train + infer of both models on every fold, ensemble) -> ensemble -> validated
CSV, plus eval. A second, shorter pass runs a
generated set with all 11 classes and odd image sizes. Tiny encoder, 64 px, one epoch: plumbing."""

import csv
import json

import numpy as np
import pytest
import torch

from conftest import TINY_BUDGET, TINY_ENCODER, make_process, run_make
from trashseg.data.classes import CLASSES
from trashseg.ensembling.submission import validate_submission

pytestmark = pytest.mark.slow  # drives make targets / trains in subprocesses


def image_names(json_path):
    return [img["file_name"] for img in json.loads(json_path.read_text())["images"]]


def test_make_targets_on_bundled_sample_to_valid_csv(sample_runs, tmp_path):
    s = sample_runs
    assert "fold 2: 30 train / 15 valid" in s.printed["folds"]
    for fold in range(3):  # one recording date (batch folder) per validation fold, none shared
        valid_dates = {name.split("/")[0] for name in image_names(s.data / f"valid_data{fold}.json")}
        train_dates = {name.split("/")[0] for name in image_names(s.data / f"train_data{fold}.json")}
        assert len(valid_dates) == 1 and not valid_dates & train_dates
    assert "General trash" in s.printed["check-data"] and "0 problem(s)" in s.printed["check-data"]

    cv = s.printed["cv"]
    for model in ("fpn", "deeplab"):
        for fold in range(3):
            assert f"[cv] make --no-print-directory train-{model} FOLD={fold} GPUS=1  (GPU " in cv
            assert f"[cv] make --no-print-directory infer-{model} FOLD={fold} GPUS=1  (GPU " in cv
    assert cv.count("best epoch 1") == 6 and "ensemble.csv: valid submission, 15 rows" in cv
    assert cv.count("on cpu x1 ") == 6 and "(GPU 1)" in cv  # one process per job, two jobs in flight
    for model in ("fpn", "deeplab"):
        run = s.runs / model / "fold0"
        rows = list(csv.DictReader(open(run / "metrics.csv")))
        assert len(rows) == 1 and 0.0 <= float(rows[0]["val_miou"]) <= 1.0
        ckpt = torch.load(run / "best.pt", weights_only=True)
        assert ckpt["epoch"] == 1 and ckpt["config"]["model"]["encoder"] == TINY_ENCODER
        assert (run / "last.pt").is_file() and (run / "config.yaml").is_file()
        assert (run / "run_record.json").is_file()
        for split, n in (("test", 15), ("valid", 15)):
            probs = np.load(run / f"probs_{split}.npy", mmap_mode="r")
            manifest = json.loads((run / f"probs_{split}.json").read_text())
            assert probs.shape == (n, 11, 256, 256) and probs.dtype == np.float16
            assert manifest["resolution"] == 256 and len(manifest["image_ids"]) == n
            assert np.allclose(probs[0].astype(np.float32).sum(0), 1.0, atol=1e-2)

    subs = tmp_path / "subs"
    out = run_make("ensemble", DATA_DIR=s.data, RUNS=s.runs, SUBMISSIONS=subs, NAME="e2e")
    assert out.count("probs_test.npy (w=") == 6 and "valid submission, 15 rows" in out
    test_ids = image_names(s.data / "test.json")
    assert validate_submission(subs / "e2e.csv", test_ids) == 15
    rows = list(csv.reader(open(subs / "e2e.csv")))
    assert [r[0] for r in rows[1:]] == test_ids and all(len(r[1].split()) == 256 * 256 for r in rows[1:])
    out = run_make("validate-submission", DATA_DIR=s.data, FILE=subs / "e2e.csv")
    assert "valid submission" in out

    result_path = tmp_path / "eval.json"
    out = run_make("eval-fpn", **s.train, FOLD=0, JSON=s.data / "valid_data0.json", OUT=result_path)
    result = json.loads(result_path.read_text())
    assert {"miou", "miou_per_image", "per_class_iou"} <= result.keys()
    assert set(result["per_class_iou"]) == set(CLASSES)
    assert result["images"] == 15 and "mIoU (dataset)" in out
    best = torch.load(s.runs / "fpn" / "fold0" / "best.pt", weights_only=True)["metrics"]
    assert abs(result["miou"] - best["miou"]) < 1e-6  # eval re-scores the trainer's own figure


def test_generated_11_class_set_with_odd_sizes(coco_dir, tmp_path):
    runs, subs = tmp_path / "runs", tmp_path / "subs"
    common = dict(DATA_DIR=coco_dir, RUNS=runs, ARGS=f"--set data.cache_dir={tmp_path / 'cache'}")
    out = run_make("folds", DATA_DIR=coco_dir, K=3, SEED=3)
    assert "fold 2:" in out and (coco_dir / "valid_data2.json").is_file()
    out = run_make("check-data", **common)
    assert "Clothing" in out and "0 problem(s)" in out
    run_make("train-fpn", **common, **TINY_BUDGET, FOLD=0)
    run_make("infer-fpn", **common, **TINY_BUDGET, FOLD=0, SPLITS="test")
    out = run_make("ensemble", DATA_DIR=coco_dir, RUNS=runs, SUBMISSIONS=subs, NAME="gen")
    assert validate_submission(subs / "gen.csv", image_names(coco_dir / "test.json")) == 4


def test_missing_data_dir_says_where_data_goes(tmp_path):
    proc = make_process("train-fpn", DATA_DIR=tmp_path, RUNS=tmp_path / "runs")
    assert proc.returncode != 0
    assert "has no train_all.json" in proc.stderr and "DATA_DIR=data/sample" in proc.stderr
    assert "Traceback" not in proc.stderr
