"""`make sweep STORAGE=postgresql://...` against a real PostgreSQL server (a throwaway one, see
postgres.py): two workers at once on one study, one killed mid-trial; the study resumes (the killed
trial failed by its heartbeat and retried), every trial has one number and one run folder, and the
database password is in no file the kit wrote and in nothing it printed."""

import os
import shutil
import signal
from pathlib import Path

import pytest

from helpers import (
    SAMPLE,
    SAMPLE_DATES,
    heartbeat_of,
    read_until,
    run_make,
    stale_trials,
    start_make,
    tiny_run,
    wait_for,
)
from postgres import postgres_server

pytestmark = pytest.mark.slow

SPACE = """
metric: miou
sampler: {name: random, seed: 2}
pruner: {name: none}
heartbeat_seconds: 1
params:
  optimizer.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
"""


def files_holding(folder: Path, secret: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_two_workers_share_one_study_on_postgresql_and_survive_a_kill(tmp_path):
    import optuna

    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data, ignore=shutil.ignore_patterns("train_data*", "valid_data*"))
    run_make("folds", DATA_DIR=data, K=3, GROUP=SAMPLE_DATES)
    (tmp_path / "space.yaml").write_text(SPACE)
    with postgres_server() as (url, password):
        study = "pg-study"
        variables = tiny_run(
            data, tmp_path, MODEL="fpn", TRIALS=3, SPACE=tmp_path / "space.yaml", STUDY=study, EPOCHS=1, LOGGER="none"
        )
        variables["STORAGE"] = url
        # worker A prints to the test; worker B to a file
        a = start_make("sweep", **variables)
        b = start_make("sweep", log=tmp_path / "b.log", **variables)
        printed = read_until(a, "[sweep] trial ")
        number = int(printed[-1].split("[sweep] trial ")[1].split(":")[0])
        # kill A mid-trial: after its trial's first heartbeat (so the kill is detectable), before training
        wait_for(lambda: heartbeat_of(url, study, number), f"trial {number}'s first heartbeat")
        printed += read_until(a, "training FPN")
        os.killpg(a.pid, signal.SIGKILL)
        a.wait()
        assert b.wait(timeout=900) == 0, (tmp_path / "b.log").read_text()[-3000:]
        # by Optuna's own rule (heartbeat older than its grace period), A's trial is now stale or
        # was already failed and retried by B
        wait_for(
            lambda: (
                optuna.load_study(study_name=study, storage=url).trials[number].state.name == "FAIL"
                or stale_trials(url, study) == [number]
            ),
            f"killed trial {number} to be failed or go stale",
        )

        resumed = run_make("sweep", **{**variables, "TRIALS": 4})
        finished = int(resumed.split(f"[sweep] study {study} in ")[1].split(": ")[1].split(" of ")[0])
        assert finished >= 3 and "of 4 trials finished" in resumed
        trials = optuna.load_study(study_name=study, storage=url).trials
        states = [t.state.name for t in trials]
        assert states.count("FAIL") == 1 and states.count("RUNNING") == 0 and states.count("COMPLETE") >= 4
        assert trials[number].state.name == "FAIL"
        retried = [t for t in trials if t.system_attrs.get("failed_trial") == number]
        assert len(retried) == 1 and retried[0].state.name == "COMPLETE" and retried[0].params == trials[number].params
        numbers = [t.number for t in trials]
        assert numbers == list(range(len(trials)))  # one number each, none twice
        runs = [t.user_attrs["run_dir"] for t in trials if t.state.name == "COMPLETE"]
        assert len(set(runs)) == len(runs) and all((Path(r) / "best.pt").is_file() for r in runs)
        log_b = (tmp_path / "b.log").read_text()
        assert "[sweep] study pg-study in postgresql://kit:****@127.0.0.1:" in log_b

        # the password: nowhere in what was printed, nor in any file under the runs folder
        outputs = "".join(printed) + log_b + resumed
        assert password not in outputs and password not in url.replace(password, "")
        assert files_holding(tmp_path, password) == []
