"""Multi-process DDP (gloo, CPU) and resume after SIGKILL, through the real make targets."""

import csv
import json

import pytest
import torch

from helpers import free_port, kill_hook, make_process, run_make, tiny_run

pytestmark = pytest.mark.slow  # drives make targets / trains in subprocesses


@pytest.fixture
def tiny(coco_dir, tmp_path):
    return tiny_run(coco_dir, tmp_path, FOLD=0, BATCH=2)


def rows(run):
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_ddp_two_processes_match_single_process_evaluation(tiny, coco_dir, tmp_path):
    # evaluation batch 1 on both sides: an untrained net's near-ties must not flip with batch shape
    tiny = {**tiny, "ARGS": tiny["ARGS"] + " --set eval.batch_size=1"}
    out = run_make("train-fpn", **tiny, EPOCHS=1, GPUS=2, MASTER_PORT=free_port())
    assert "x2" in out  # both ranks joined
    run = tmp_path / "runs" / "fpn" / "fold0"
    assert sorted(p.name for p in run.glob("*.pt")) == ["best.pt", "last.pt"]
    record = json.loads((run / "run_record.json").read_text())
    assert record["world_size"] == 2 and record["seed"] == 21
    ddp_miou = float(rows(run)[0]["val_miou"])
    result = tmp_path / "single.json"
    run_make("eval-fpn", **tiny, JSON=coco_dir / "valid_data0.json", OUT=result)
    single = json.loads(result.read_text())
    assert single["miou"] == pytest.approx(ddp_miou, abs=1e-6)
    assert single["images"] == len(json.loads((coco_dir / "valid_data0.json").read_text())["images"])


def test_resume_after_sigkill_mid_run_ends_at_planned_epoch(tiny, tmp_path):
    run = tmp_path / "runs" / "fpn" / "fold0"
    # SIGKILL as epoch 3 begins (epochs 1 and 2 saved), from inside the trainer: on no clock
    hook = kill_hook(tmp_path / "hook", "trashseg.training.trainer", "train_one_epoch", 3)
    proc = make_process("train-fpn", env=hook, **tiny, EPOCHS=4, LOGGER="none")
    assert proc.returncode != 0 and "Killed" in proc.stderr, proc.stderr
    assert len(rows(run)) == 2 and torch.load(run / "last.pt", weights_only=True)["epoch"] == 2

    out = run_make("train-fpn", **tiny, EPOCHS=4, RESUME=1, LOGGER="none")
    assert f"resuming {run} after epoch" in out
    assert [int(r["epoch"]) for r in rows(run)] == [1, 2, 3, 4]
    last = torch.load(run / "last.pt", weights_only=True)
    best = torch.load(run / "best.pt", weights_only=True)
    assert last["epoch"] == 4 and 1 <= best["epoch"] <= 4
    assert best["metrics"]["miou"] == pytest.approx(max(float(r["val_miou"]) for r in rows(run)), abs=1e-6)
    assert json.loads((run / "run_record.json").read_text())["resumed_from_epoch"] >= 1
    assert not (run / "tensorboard").exists() and not (run / "wandb").exists()  # LOGGER=none: no tracking files
