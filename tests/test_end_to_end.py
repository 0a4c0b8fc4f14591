"""The real make targets on a generated set with all 11 classes and odd image sizes (folds, check-data,
train, infer, ensemble, a validated CSV; tiny encoder, 64 px, one epoch), and a missing data folder
named with where the data goes. The same path on the bundled real photos: test_sample_end_to_end.py."""

import json

import pytest

from helpers import TINY_BUDGET, make_process, run_make
from trashseg.ensembling.submission import validate_submission

pytestmark = pytest.mark.slow  # drives make targets / trains in subprocesses


def image_names(json_path):
    return [img["file_name"] for img in json.loads(json_path.read_text())["images"]]


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
