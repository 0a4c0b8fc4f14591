"""bench-sweep: the kit's own sweep searching the CPU recipe (configs/sweeps/cpu-lite.yaml) on the
real woosong photos, fold 0 of the 3 date folds that bench-recipes uses (286 photos of one recording
date validate, the 534 of the others train), each trial at one cost (6 epochs x 256 px, image size
traded against epochs). The study's first trial is today's cpu-lite, queued by the space, so the
baseline is measured in the same study; the end prints the study's table, the best trial against it
and `name=value` lines. The study is a SQLite file under runs/bench-recipes/sweeps/ (out of git): a
stopped bench-sweep resumes it, and TRIALS=N asks for N finished trials in all. The winner is then
confirmed out of fold on all three folds by `make bench-recipes ROWS=...`. The study's table (each
trial's state, figure, minutes and values) is kept in git as bench/results/sweep-<study>.json, which
docs/results.md's sweep table is read from.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import warnings
from pathlib import Path

from bench_recipes import BUDGET, LITE0, SWEEP_STUDY, prepare

from common import ROOT

SPACE = ROOT / "configs" / "sweeps" / "cpu-lite.yaml"


def export(study, path: Path) -> dict:
    """The study's trials as a table a page can be held to: number, state, value (the fold's best
    per-image mIoU, or the last reported one of a pruned or stopped trial), minutes, values drawn."""
    from optuna.trial import TrialState

    from trashseg.atomic import write_json

    rows = []
    for t in study.get_trials(deepcopy=False):
        reported = t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None
        ended = t.datetime_complete is not None and t.datetime_start is not None
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name.lower(),
                "value": t.value if t.state == TrialState.COMPLETE else None,
                "last_reported": reported,
                "minutes": round((t.datetime_complete - t.datetime_start).total_seconds() / 60, 1) if ended else None,
                "params": t.params,
            }
        )
    table = {"study": study.study_name, "trials": rows}
    write_json(path, table)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12, help="finished trials wanted in all (the study resumes)")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-recipes")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results", help="where the table is kept")
    args = parser.parse_args()
    data = args.runs / "data"
    prepare(data)
    variables = dict(BUDGET, **LITE0)
    variables.pop("EPOCHS")  # the space's budget sets each trial's epochs from its image size
    cmd = ["make", "--no-print-directory", "-C", str(ROOT), "sweep", "EXP=cpu-lite", f"SPACE={SPACE}"]
    cmd += [
        f"STUDY={SWEEP_STUDY}",
        f"TRIALS={args.trials}",
        "FOLD=0",
        f"DATA_DIR={data}",
        f"RUNS={args.runs}",
        "SEED=21",
    ]
    cmd += [f"{k}={v}" for k, v in variables.items()]
    cmd += [f"ARGS=--set data.cache_dir={args.runs / 'cache'}"]
    print("$ " + " ".join(cmd), flush=True)
    if subprocess.call(cmd) != 0:
        raise SystemExit("bench-sweep: make sweep failed")

    import optuna
    from optuna.trial import TrialState

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=SWEEP_STUDY, storage=f"sqlite:///{args.runs / 'sweeps' / f'{SWEEP_STUDY}.db'}")
    trials = study.get_trials(deepcopy=False)
    baseline = trials[0]  # the space's first queued trial: today's cpu-lite
    if baseline.state != TrialState.COMPLETE:
        raise SystemExit(f"bench-sweep: trial 0 (today's cpu-lite, the baseline) is {baseline.state.name}")
    best = study.best_trial
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    minutes = [(t.datetime_complete - t.datetime_start).total_seconds() / 60 for t in done]
    print(
        f"\nfold 0 per-image mIoU: cpu-lite (trial 0) {baseline.value:.4f}, best (trial {best.number}) {best.value:.4f}"
    )
    print(f"trials_complete={len(done)}")
    print(f"trials_pruned={sum(t.state == TrialState.PRUNED for t in trials)}")
    print(f"trials_failed={sum(t.state == TrialState.FAIL for t in trials)}")
    print(f"baseline_miou_per_image={baseline.value:.4f}")
    print(f"best_trial={best.number}")
    print(f"best_miou_per_image={best.value:.4f}")
    print(f"best_gain={best.value - baseline.value:+.4f}")
    print(f"best_ratio={best.value / baseline.value:.4f}")
    print(f"trial_minutes_max={max(minutes):.1f}")
    out = args.results / f"sweep-{SWEEP_STUDY}.json"
    export(study, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
