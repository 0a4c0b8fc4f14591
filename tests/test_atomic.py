"""Interrupted writes leave no partial artefact: `make ensemble` killed mid-write keeps the old CSV."""

import json
import os
import subprocess

import numpy as np
import pytest

from helpers import kill_hook, make_process, run_make
from trashseg.data.classes import CLASSES
from trashseg.inference.probs import ProbsWriter

N = 150


@pytest.mark.slow
def test_killed_ensemble_leaves_no_partial_csv(tmp_path):
    ids = [f"batch_01/{i:04d}.jpg" for i in range(N)]
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.json").write_text(
        json.dumps({"images": [{"id": i, "file_name": f, "width": 8, "height": 8} for i, f in enumerate(ids)]})
    )
    probs = tmp_path / "runs" / "fpn" / "fold0" / "probs_test.npy"
    writer = ProbsWriter(probs, N, len(CLASSES), 256, {"image_ids": ids, "resolution": 256, "classes": list(CLASSES)})
    row = np.random.default_rng(0).random((len(CLASSES), 256, 256)).astype(np.float16)
    for i in range(N):
        writer.write(i, row)
    writer.close()
    subs = tmp_path / "subs"
    subs.mkdir()
    old = subs / "e.csv"
    old.write_text("previous submission\n")

    ensemble = dict(DATA_DIR=data, RUNS=tmp_path / "runs", SUBMISSIONS=subs, NAME="e")
    # SIGKILL halfway through the rows, from inside: a power cut at an exact point, on no clock
    hook = kill_hook(tmp_path / "hook", "trashseg.ensembling.submission", "SubmissionWriter.add", N // 2)
    proc = make_process("ensemble", env=hook, **ensemble)
    assert proc.returncode != 0 and "Killed" in proc.stderr, proc.stderr  # make saw its child die
    partial = [p for p in subs.glob(".e.csv.*.tmp") if p.stat().st_size > 0]
    assert len(partial) == 1  # the killed writer's rows so far, in its temp file only
    assert old.read_text() == "previous submission\n"  # untouched, never half-written
    assert [p.name for p in subs.iterdir() if not p.name.startswith(".")] == ["e.csv"]

    # the next run completes and replaces it with a whole, valid file
    run_make("ensemble", **ensemble)
    assert sum(1 for _ in open(old)) == N + 1
    assert list(subs.iterdir()) == [old]  # the killed writer's temp file was swept by the next write


def test_stale_temp_of_a_dead_writer_is_swept_but_a_live_ones_is_kept(tmp_path):
    from trashseg.atomic import HOST, write_json

    dead = subprocess.Popen(["true"])
    dead.wait()
    target = tmp_path / "x.json"
    stale = tmp_path / f".x.json.{HOST}-{dead.pid}.abc.tmp"
    live = tmp_path / f".x.json.{HOST}-{os.getppid()}.def.tmp"  # our parent is running
    other = tmp_path / f".y.json.{HOST}-{dead.pid}.abc.tmp"  # another target: not ours to touch
    for p in (stale, live, other):
        p.write_text("partial")
    write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert not stale.exists() and live.exists() and other.exists()


def test_atomic_write_flushes_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    import trashseg.atomic as atomic
    from trashseg.atomic import write_json

    events, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    write_json(tmp_path / "result.json", {"miou": 0.5})
    assert [kind for kind, _ in events] == ["fsync", "replace", "fsync"]
    assert events[0][1] == events[1][1] != str(tmp_path / "result.json")  # the temp file, before the rename
    assert events[2][1] == str(tmp_path)  # then the folder holding the rename
    assert json.loads((tmp_path / "result.json").read_text()) == {"miou": 0.5}


def test_atomic_files_get_the_permissions_a_plain_open_would(tmp_path):
    from trashseg.atomic import FILE_MODE, write_json

    write_json(tmp_path / "a.json", {"x": 1})
    with open(tmp_path / "plain", "w") as fh:
        fh.write("x")
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777 == FILE_MODE
