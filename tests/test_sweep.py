"""`make sweep` on the bundled sample (tiny encoder): a 3-trial study killed mid-trial and started
again continues the same study in its SQLite file (the killed trial failed by its heartbeat and
retried), records a pruned trial, keeps each trial an ordinary run folder and prints a ready
`make train` line for the best trial."""

import os
import shutil
import signal

import pytest

from helpers import (
    ROOT,
    SAMPLE,
    SAMPLE_DATES,
    TINY_ENCODER,
    heartbeat_of,
    read_until,
    run_make,
    stale_trials,
    start_make,
    tiny_run,
    wait_for,
)

pytestmark = pytest.mark.slow

SPACE = """
metric: miou
sampler: {name: random, seed: 1}                              # trial 0 draws 2 epochs, trial 1 draws 1
pruner: {name: threshold, lower: 0.99, n_warmup_steps: 2}     # any trial reaching epoch 2 is pruned
heartbeat_seconds: 1
params:
  train.epochs: {type: categorical, choices: [1, 2]}
  optimizer.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
"""


def test_killed_sweep_resumes_the_same_study_and_prunes(tmp_path):
    import optuna

    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data, ignore=shutil.ignore_patterns("train_data*", "valid_data*"))
    run_make("folds", DATA_DIR=data, K=3, GROUP=SAMPLE_DATES)
    (tmp_path / "space.yaml").write_text(SPACE)
    variables = tiny_run(data, tmp_path, MODEL="fpn", TRIALS=3, SPACE=tmp_path / "space.yaml", LOGGER="none")
    storage = f"sqlite:///{tmp_path / 'runs' / 'sweeps' / 'fpn-fold0.db'}"

    proc = start_make("sweep", **variables)
    lines = read_until(proc, "[sweep] trial 1:")  # trial 1 has started: it is RUNNING in the study
    # kill it mid-trial, once its heartbeat is in the database (from then on the kill is detectable);
    # trial 1 cannot finish first: the kill comes before its first epoch
    wait_for(lambda: heartbeat_of(storage, "fpn-fold0", 1), "trial 1's first heartbeat")
    lines += read_until(proc, "training FPN")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert any("trial 0 pruned after epoch 2" in line for line in lines), "".join(lines)[-2000:]
    # past the heartbeat's grace period, by Optuna's own rule: the killed trial is stale
    wait_for(lambda: stale_trials(storage, "fpn-fold0") == [1], "the killed trial 1 to go stale")

    out = run_make("sweep", **variables)
    assert f"[sweep] study fpn-fold0 in {storage}: 1 of 3 trials finished" in out
    study = optuna.load_study(study_name="fpn-fold0", storage=storage)
    states = [t.state.name for t in study.trials]
    assert states.count("PRUNED") >= 1 and states.count("COMPLETE") >= 1 and states.count("FAIL") == 1
    assert states.count("PRUNED") + states.count("COMPLETE") == 3
    failed = next(t for t in study.trials if t.state.name == "FAIL")
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == failed.number]
    assert retried and retried[0].params == failed.params  # the killed trial's values tried again
    best = study.best_trial
    run = ROOT.joinpath(best.user_attrs["run_dir"])
    assert (run / "best.pt").is_file() and (run / "metrics.csv").is_file() and (run / "config.yaml").is_file()
    line = next(ln for ln in out.splitlines() if ln.startswith("make train MODEL=fpn FOLD=0 "))
    assert f"--set train.epochs={best.params['train.epochs']}" in line and f"ENCODER={TINY_ENCODER}" in line
    assert f"--set data.cache_dir={tmp_path / 'cache'}" in line
