"""`make sweep` on the bundled sample (tiny encoder): a 3-trial study killed mid-trial and started
again continues the same study in its SQLite file (the killed trial failed by its heartbeat and
retried), records a pruned trial, keeps each trial an ordinary run folder and prints a ready
`make train` line for the best trial."""

import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import ROOT, SAMPLE, SAMPLE_DATES, TINY_ENCODER, make_cmd, run_make, tiny_run

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

    proc = subprocess.Popen(
        make_cmd("sweep", **variables),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    lines = []
    for line in proc.stdout:  # kill once trial 1 has started training
        lines.append(line)
        if "[sweep] trial 1:" in line:
            break
    time.sleep(2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert any("trial 0 pruned after epoch 2" in line for line in lines), "".join(lines)[-2000:]
    time.sleep(3)  # past the heartbeat's grace period: the killed trial is stale

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
