"""The trainer's hooks, each alone on a stand-in run: the all-data rule, the checkpoints (best only
when improved, the last N epochs kept, metrics.csv after last.pt), the EMA's state in last.pt, and
a sweep's pruning stopping the run."""

import csv
from types import SimpleNamespace

import pytest
import torch

from helpers import settings
from trashseg.runtime.distributed import Context
from trashseg.training import hooks as H


def fake_run(tmp_path, validated=True, best=None, keep_last=0):
    model = torch.nn.Linear(2, 2)
    cfg = {"model": {"name": "toy"}, "train": {"keep_last": keep_last}}
    run = SimpleNamespace(
        cfg=cfg, ctx=Context(), device=torch.device("cpu"), best=best, rows=[], start_epoch=1, epochs=3,
        valid_loader=object() if validated else None, out=tmp_path, model=model,
    )  # fmt: skip
    run.scored = lambda: model
    run.training_state = lambda: {"rows": list(run.rows)}
    return run


def epoch(number, val, improved):
    return H.Epoch(number, 0.1, 0.5, 10.0, 1.0, val, improved, number * 4)


def test_on_all_data_every_epoch_is_the_best_and_the_training_loss_stands_in():
    run = fake_run(None, validated=False, best={"loss": 0.1, "epoch": 1})
    val, improved = H.judge(run, 0.7, validate=lambda: pytest.fail("no validation on all data"))
    assert val == {"loss": pytest.approx(0.7)} and improved


def test_on_a_fold_the_validation_miou_decides():
    run = fake_run(None, best={"miou": 0.5, "epoch": 1})
    assert H.judge(run, 0.7, lambda: {"miou": 0.4, "loss": 1.0}) == ({"miou": 0.4, "loss": 1.0}, False)
    assert H.judge(run, 0.7, lambda: {"miou": 0.6, "loss": 1.0})[1]


def test_checkpoints_best_only_when_improved_last_n_kept_and_the_csv_follows(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(H, "save_checkpoint", lambda path, *a, **k: saved.append(path.name) or path.touch())
    run, hook = fake_run(tmp_path, keep_last=2), H.CheckpointHook(tmp_path, keep_last=2)
    val = {"loss": 1.0, "miou": 0.5, "miou_per_image": 0.4, "pixel_accuracy": 0.9}
    for number, improved in [(1, True), (2, False), (3, True)]:
        hook.on_epoch_end(run, epoch(number, val, improved))
    assert saved == ["best.pt", "epoch1.pt", "last.pt", "epoch2.pt", "last.pt", "best.pt", "epoch3.pt", "last.pt"]
    assert sorted(p.name for p in tmp_path.glob("epoch*.pt")) == ["epoch2.pt", "epoch3.pt"]
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and rows[0]["val_miou"] == "0.5"


def test_ema_state_goes_into_last_pt_and_a_resume_without_it_is_refused(tmp_path):
    from trashseg.errors import TrashsegError

    model = torch.nn.Linear(2, 2)
    on = H.EmaHook(model, settings("ema.enabled=true", "ema.decay=0.9", models=False))
    off = H.EmaHook(model, settings(models=False))
    assert set(on.state()) == {"ema"} and off.state() == {} and off.scored(model) is model
    with torch.no_grad():
        model.weight.add_(1.0)
    on.on_step(1, 0.0, 0.1)  # the first step copies the weights
    assert torch.equal(on.state()["ema"]["weight"], model.weight)
    with pytest.raises(TrashsegError, match="trained without EMA; resume with ema.enabled=false"):
        on.load({}, tmp_path / "last.pt")


def test_the_pruning_hook_stops_the_run_with_what_the_sweep_raises():
    class Pruned(Exception):
        pass

    seen = []

    def on_epoch(number, val):
        seen.append((number, val["miou"]))
        raise Pruned

    with pytest.raises(Pruned):
        H.PruningHook(on_epoch).on_epoch_end(None, epoch(2, {"miou": 0.3}, True))
    assert seen == [(2, 0.3)]
