"""Nothing overwritten, nothing stale: a run folder that holds a run is kept (train again stops with one
line; FORCE=1 starts over, deleting it); `make cv` keeps finished folds, resumes a killed one from its
last.pt and ends where an uninterrupted cv ends; fold files remember their K and the train_all.json they
split, and a training or cv on other ones stops with one line."""

import csv
import json

import pytest

from helpers import kill_hook, make_process, run_make, tiny_run
from trashseg.data.folds import make_folds

pytestmark = pytest.mark.slow  # trains in subprocesses


def rows(run):
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def failure(proc) -> str:
    assert proc.returncode != 0, proc.stdout[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return lines[0]


def test_a_finished_run_is_kept_unless_force_and_an_unfinished_one_says_resume(coco_dir, tmp_path):
    tiny = tiny_run(coco_dir, tmp_path, FOLD=0, LOGGER="none")
    run = tmp_path / "runs" / "fpn" / "fold0"
    run_make("train-fpn", **tiny, EPOCHS=1)
    (run / "probs_test.npy").write_bytes(b"the first run's")  # what the first run left beside its checkpoint
    before = (run / "best.pt").read_bytes()

    again = failure(make_process("train-fpn", **tiny, EPOCHS=2))  # other settings: still not over it
    assert f"{run} holds a finished run (epoch 1 of 1" in again and "RESUME=1 EPOCHS=<more> extends it" in again
    assert "FORCE=1 trains over it" in again and (run / "best.pt").read_bytes() == before
    done = failure(make_process("train-fpn", **tiny, EPOCHS=1, RESUME=1))
    assert "is finished (epoch 1 of 1" in done and "EPOCHS=2 or more extends it" in done
    both = failure(make_process("train-fpn", **tiny, EPOCHS=1, RESUME=1, FORCE=1))
    assert "RESUME=1 and FORCE=1: give one" in both

    out = run_make("train-fpn", **tiny, EPOCHS=2, FORCE=1)
    assert f"FORCE=1: deleting {run} (epoch 1 of 1" in out
    assert not (run / "probs_test.npy").exists() and [r["epoch"] for r in rows(run)] == ["1", "2"]

    # killed as its second epoch begins: an unfinished run, which RESUME=1 (or FORCE=1) takes on
    hook = kill_hook(tmp_path / "hook", "trashseg.training.trainer", "train_one_epoch", 2)
    other = {**tiny, "FOLD": 1}
    assert make_process("train-fpn", env=hook, **other, EPOCHS=2).returncode != 0
    unfinished = failure(make_process("train-fpn", **other, EPOCHS=2))
    assert "holds an unfinished run (epoch 1 of 2" in unfinished and "RESUME=1 goes on from its last.pt" in unfinished
    assert "resuming" in run_make("train-fpn", **other, EPOCHS=2, RESUME=1)


def test_cv_killed_mid_fold_resumes_to_the_uninterrupted_result(coco_dir, tmp_path):
    tiny = tiny_run(coco_dir, tmp_path, EPOCHS=2, LOGGER="none")
    make_folds(coco_dir / "train_all.json", coco_dir, 2, 0, {})  # two folds: the shortest cv
    whole = {**tiny, "RUNS": tmp_path / "whole", "NAME": "whole", "SUBMISSIONS": tmp_path / "subs"}
    run_make("cv", **whole, MODELS="fpn", K=2)

    # each fold's training process is killed as its second epoch begins: mid-fold, mid-cv
    hook = kill_hook(tmp_path / "hook", "trashseg.training.trainer", "train_one_epoch", 2)
    cut = {**whole, "RUNS": tmp_path / "cut", "NAME": "cut"}
    killed = make_process("cv", env=hook, **cut, MODELS="fpn", K=2)
    assert killed.returncode != 0 and "[cv] train --model fpn --fold=0 failed" in killed.stderr
    assert [len(rows(tmp_path / "cut" / "fpn" / f"fold{k}")) for k in range(2)] == [1, 1]

    out = run_make("cv", **cut, MODELS="fpn", K=2)
    for k in range(2):
        assert f"trashseg train --model fpn --fold={k} --resume 1" in out
        a, b = rows(tmp_path / "whole" / "fpn" / f"fold{k}"), rows(tmp_path / "cut" / "fpn" / f"fold{k}")
        assert [r["epoch"] for r in b] == ["1", "2"]
        for x, y in zip(a, b, strict=True):
            for key in ("train_loss", "val_loss", "val_miou"):
                assert float(x[key]) == pytest.approx(float(y[key]), rel=1e-4, abs=1e-6), (k, key)
    assert (tmp_path / "subs" / "whole.csv").read_text() == (tmp_path / "subs" / "cut.csv").read_text()

    # once more: every fold finished and inferred from its best.pt -> kept, nothing trained or inferred
    out = run_make("cv", **cut, MODELS="fpn", K=2)
    assert out.count("finished, kept") == 2 and "trashseg train" not in out and "trashseg infer" not in out
    # a probability file made from another checkpoint is inferred again; the run is kept
    manifest = tmp_path / "cut" / "fpn" / "fold1" / "probs_test.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "checkpoint_sha256": "0"}))
    out = run_make("cv", **cut, MODELS="fpn", K=2)
    assert "fold1: finished, kept; infer again: test" in out
    assert "trashseg infer --model fpn --fold=1 --splits test" in out
    # other settings into the same folders: one line, before any job
    other = failure(make_process("cv", **{**cut, "EPOCHS": 3}, MODELS="fpn", K=2))
    assert "holds a run of other settings (train.epochs 2 -> 3)" in other and "FORCE=1 trains every fold" in other


def test_fold_files_remember_their_k_and_train_all(coco_dir, tmp_path):
    tiny = tiny_run(coco_dir, tmp_path, EPOCHS=1, LOGGER="none")
    run_make("folds", DATA_DIR=coco_dir, K=4)
    record = json.loads((coco_dir / "folds.json").read_text())
    assert record["k"] == 4 and record["train_all"] == "train_all.json" and len(record["train_all_sha256"]) == 64
    out = run_make("folds", DATA_DIR=coco_dir, K=3)  # fewer folds: the fourth's files go
    assert f"removed {coco_dir}/train_data3.json" in out and not (coco_dir / "valid_data3.json").exists()

    wrong_k = failure(make_process("cv", **tiny, MODELS="fpn", K=5))
    assert f"K=5: the fold files in {coco_dir} were made by `make folds K=3`" in wrong_k
    assert not (tmp_path / "runs").exists()  # before any work

    data = json.loads((coco_dir / "train_all.json").read_text())
    data["images"] = data["images"][:-1]  # the annotated set changed since the split
    (coco_dir / "train_all.json").write_text(json.dumps(data))
    stale = failure(make_process("train-fpn", **tiny, FOLD=0))
    assert "train_all.json changed since the fold files were made by `make folds K=3`" in stale
    make_folds(coco_dir / "train_all.json", coco_dir, 3, 0, {})
    assert "best epoch 1" in run_make("train-fpn", **tiny, FOLD=0)
    (coco_dir / "folds.json").unlink()  # fold files from elsewhere: no record, but each fold's files are looked for
    missing = failure(make_process("cv", **tiny, MODELS="fpn", K=4))
    assert f"{coco_dir}/train_data3.json: not found" in missing and not (tmp_path / "runs" / "fpn" / "fold1").exists()
