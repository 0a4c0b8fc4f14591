"""`trashseg runs` / `make runs`: every run under RUNS in one table, read from the files runs write:
the best epoch's scores, OOF when present, time, commit, status (finished, unfinished, broken) and
the settings a run differs in; sortable, as CSV, and as runs/index.html linking each run's report."""

import csv
import io
import json

import pytest
import yaml

from helpers import run_make
from trashseg.config import defaults
from trashseg.errors import TrashsegError
from trashseg.evaluation import runs_table


def fake_run(runs, name, fold, epochs, planned, lr=1e-4, best=True, record=True):
    """A run folder as the trainer leaves it: config.yaml, metrics.csv rows, run_record.json, best.pt."""
    folder = runs / name / f"fold{fold}"
    folder.mkdir(parents=True)
    cfg = defaults()
    cfg["model"]["name"], cfg["train"]["epochs"], cfg["train"]["fold"] = name, planned, fold
    cfg["optimizer"]["lr"] = lr
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    with open(folder / "metrics.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", "lr", "train_loss", "val_loss", "val_miou", "val_miou_per_image", "seconds"])
        for e, (miou, per_image) in enumerate(epochs, 1):
            w.writerow([e, lr, 1.0, 1.0, miou, per_image, 10.5])
    if record:
        started = {"started": "2026-12-07T02:29:00+00:00", "git_commit": "0123456789abcdef", "git_dirty": True}
        (folder / "run_record.json").write_text(json.dumps(started))
    if best:
        (folder / "best.pt").write_bytes(b"")
    return folder


@pytest.fixture
def runs(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "fpn", 0, [(0.50, 0.55), (0.62, 0.60), (0.61, 0.66)], 3)
    fake_run(runs, "fpn", 1, [(0.40, 0.45)], 3)  # stopped after epoch 1 of 3
    fake_run(runs, "cpu-lite", 0, [(0.70, 0.72), (0.71, 0.73)], 2, lr=2.7e-3)
    (runs / "cpu-lite" / "oof.json").write_text(json.dumps({"miou_per_image": 0.7135}))
    (runs / "cpu-lite" / "oof_tta.json").write_text(json.dumps({"miou_per_image": 0.7213}))
    (runs / "deeplab" / "fold0").mkdir(parents=True)  # a folder a crashed start left
    (runs / "sweeps").mkdir()  # not a run
    return runs


def test_every_run_is_a_row_with_its_best_epoch_oof_time_commit_and_status(runs):
    rows = {r.run: r for r in runs_table.collect(runs)}
    assert set(rows) == {"fpn/fold0", "fpn/fold1", "cpu-lite/fold0", "deeplab/fold0"}
    fpn = rows["fpn/fold0"]
    assert (fpn.best_epoch, fpn.miou, fpn.miou_per_image) == (2, 0.62, 0.60)  # best by dataset mIoU, as best.pt
    assert fpn.epochs == "3/3" and fpn.seconds == 31.5 and fpn.status == "finished"
    assert fpn.commit == "01234567+" and fpn.date == "2026-12-07 02:29" and fpn.preset == ""
    assert rows["fpn/fold1"].status == "unfinished (epoch 1 of 3; RESUME=1 goes on)"
    lite = rows["cpu-lite/fold0"]
    assert lite.preset == "cpu-lite" and (lite.oof, lite.oof_tta) == (0.7135, 0.7213)
    assert rows["deeplab/fold0"].status.startswith("broken: config.yaml")
    # what differs: the learning rate (and the epochs planned), never where a run lives or its fold
    assert "optimizer.lr=0.0027" in lite.differs and "train.epochs=2" in lite.differs
    assert not any(d.startswith(("train.fold=", "model.name=", "data.data_dir=")) for d in lite.differs)


def test_sorted_best_first_as_csv_and_a_typo_names_the_column(runs):
    rows = runs_table.sort_rows(runs_table.collect(runs), "miou")
    assert [r.run for r in rows] == ["cpu-lite/fold0", "fpn/fold0", "fpn/fold1", "deeplab/fold0"]
    table = list(csv.DictReader(io.StringIO(runs_table.as_csv(rows))))
    assert table[0]["run"] == "cpu-lite/fold0" and table[0]["oof_tta"] == "0.7213" and table[0]["miou"] == "0.7100"
    with pytest.raises(TrashsegError, match="SORT=mio: no such column; did you mean miou"):
        runs_table.sort_rows(rows, "mio")


def test_make_runs_writes_an_index_linking_each_run(runs):
    report = runs / "fpn" / "fold0" / "report"
    report.mkdir()
    (report / "index.html").write_text("<html></html>")
    out = run_make("runs", RUNS=runs, SORT="oof_tta", HTML=1)
    assert out.index("cpu-lite/fold0") < out.index("fpn/fold0") and f"wrote {runs / 'index.html'}" in out
    page = (runs / "index.html").read_text()
    assert 'href="fpn/fold0/report/index.html"' in page and 'href="cpu-lite/fold0"' in page
    assert page.count("<tr class=") == 4 and 'class="broken"' in page and 'class="unfinished"' in page
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from a network
    csv_out = run_make("runs", RUNS=runs, CSV=1)
    assert csv_out.splitlines()[1].startswith("run,model,preset,fold,epochs,best_epoch,miou")  # after the echo
