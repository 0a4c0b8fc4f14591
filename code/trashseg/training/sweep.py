"""`make sweep`: an Optuna study over the training settings of one model on one fold.

The search space lives in YAML (sweep_space.yaml beside this file, or SPACE=path, e.g.
configs/sweeps/cpu-lite.yaml); the objective is the fold's best validation mIoU (or per-image mIoU);
per-epoch values feed the pruner. A space may also fix settings for every trial (``set``), queue the
trials to run first (``enqueue``: today's recipe, so the study holds its own baseline), trade image
size against epochs at one cost (``budget``), and offer whole YAML values (lists, mappings) as
categorical choices. Each trial is an ordinary run
folder, <runs>/sweeps/<study>/trial<NNN>/fold<k>/, trained by the ordinary trainer. The study lives
in a real database: a SQLite file under the runs folder by default, so a killed sweep resumes where
it stopped (trials whose process died are failed by their missing heartbeat and retried once), or
any URL Optuna accepts (STORAGE=postgresql://...), so several machines can work on one study.
The end prints the best trial as a ready `make train` line.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

from trashseg.config import load_config
from trashseg.errors import TrashsegError
from trashseg.redact import redact
from trashseg.training.search_space import DEFAULT_SPACE, as_sets, budget_epochs, decode, label, read_space, suggest


def build_sampler(spec: dict, offset: int = 0):
    """The space's sampler; a seed is moved on by ``offset``, the trials the study already holds, so a
    resumed study (or a worker joining it) does not draw the first process's values again."""
    import optuna

    spec = dict(spec or {"name": "tpe"})
    name = spec.pop("name", "tpe")
    if spec.get("seed") is not None:
        spec["seed"] = int(spec["seed"]) + offset
    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
    if name not in samplers:
        raise TrashsegError(f"sweep sampler {name!r}: use one of {', '.join(samplers)}")
    return samplers[name](**spec)


def build_pruner(spec: dict):
    import optuna

    spec = dict(spec or {"name": "none"})
    name = spec.pop("name", "none")
    pruners = {
        "median": optuna.pruners.MedianPruner,
        "threshold": optuna.pruners.ThresholdPruner,
        "none": optuna.pruners.NopPruner,
    }
    if name not in pruners:
        raise TrashsegError(f"sweep pruner {name!r}: use one of {', '.join(pruners)}")
    return pruners[name](**spec)


def open_study(name: str, storage_url: str, space: dict):
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from sqlalchemy.exc import IntegrityError, ProgrammingError, SQLAlchemyError

    heartbeat = int(space.get("heartbeat_seconds", 60))
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats: chosen
    try:
        for attempt in range(3):
            try:
                storage = RDBStorage(
                    storage_url,
                    heartbeat_interval=heartbeat,
                    grace_period=2 * heartbeat,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
                )
                break
            except (IntegrityError, ProgrammingError) as exc:
                # workers started together on a new database race to create its tables; the loser's
                # CREATE fails once the winner's has committed (a duplicate type, or "relation ...
                # already exists"), so opening it again finds them made
                raced = isinstance(exc, IntegrityError) or "already exists" in str(exc)
                if attempt == 2 or not raced:
                    raise
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            direction="maximize",
            load_if_exists=True,
            sampler=build_sampler(space.get("sampler")),
            pruner=build_pruner(space.get("pruner")),
        )
        study.sampler = build_sampler(space.get("sampler"), offset=len(study.trials))
        return study
    except (ImportError, SQLAlchemyError, ValueError) as exc:  # no driver, server unreachable, bad URL
        first = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise TrashsegError(
            f"STORAGE={redact(storage_url)}: cannot open the study database ({first}); "
            "SQLite (the default) and PostgreSQL (postgresql://user:password@host:port/db) work after make setup"
        ) from None


def finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def trial_sets(config_path: Path, overrides: list[str], space: dict, values: dict, preset=None) -> list[str]:
    """The --set values of one trial: the sweep's variables, the space's fixed settings, the trial's
    values, and (with a budget) the epochs its image size affords."""
    sets = overrides + as_sets(space.get("set") or {}) + as_sets(values)
    epochs = budget_epochs(space, load_config(config_path, sets, preset=preset).train.img_size)
    return sets + ([f"train.epochs={epochs}"] if epochs else [])


def make_objective(config_path: Path, overrides: list[str], space: dict, sweep_runs: Path, preset=None):
    import optuna

    metric = space.get("metric", "miou")

    def objective(trial) -> float:
        from trashseg.training.trainer import train

        values = suggest(trial, space["params"])
        sets = trial_sets(config_path, overrides, space, values, preset)
        sets += [f"train.runs_dir={sweep_runs}", f"model.name=trial{trial.number:03d}"]
        cfg = load_config(config_path, sets, preset=preset)
        trial.set_user_attr("run_dir", str(sweep_runs / f"trial{trial.number:03d}" / f"fold{cfg.train.fold}"))
        trial.set_user_attr("epochs", cfg.train.epochs)
        shown = {**values, **({"train.epochs": cfg.train.epochs} if space.get("budget") else {})}
        print(f"[sweep] trial {trial.number}: {', '.join(f'{k}={v}' for k, v in shown.items())}", flush=True)

        def on_epoch(epoch: int, val: dict) -> None:
            value = float(val[metric])
            # with a budget, trials differ in epochs: the pruner compares them at the same share of
            # their training (percent), not at the same epoch number
            step = round(100 * epoch / cfg.train.epochs) if space.get("budget") else epoch
            trial.report(0.0 if math.isnan(value) else value, step)
            if trial.should_prune():
                print(f"[sweep] trial {trial.number} pruned after epoch {epoch} ({metric} {value:.4f})", flush=True)
                raise optuna.TrialPruned()

        best = train(cfg, on_epoch=on_epoch)
        return float(best[metric])

    return objective


def own_sets(trial, space: dict) -> list[str]:
    """A finished trial's own settings as --set values: the space's fixed settings, the trial's values
    (lists as YAML again) and, with a budget, the epochs its image size was given."""
    sets = as_sets(space.get("set") or {}) + as_sets(decode(trial.params, space["params"]))
    return sets + ([f"train.epochs={trial.user_attrs['epochs']}"] if space.get("budget") else [])


def ready_line(run: str, fold: int, make_vars: str, make_args: str, sets: list[str]) -> str:
    """``run``: 'MODEL=fpn' or 'EXP=cpu-lite'; ``sets``: the best trial's own settings."""
    import shlex

    words = [make_args.strip()] * bool(make_args.strip()) + [f"--set {shlex.quote(s)}" for s in sets]
    return f'make train {run} FOLD={fold}{" " + make_vars if make_vars else ""} ARGS="{" ".join(words)}"'


def trials_table(study, space: dict):
    """Every trial of the study, best first: number, state, value, epochs, minutes and its settings
    (Optuna's own data frame, the categorical labels as stored)."""
    frame = study.trials_dataframe(attrs=("number", "state", "value", "duration", "params", "user_attrs"))
    if frame.empty:
        return frame
    frame["minutes"] = frame.pop("duration").dt.total_seconds().div(60).round(1)
    keep = ["number", "state", "value", "minutes"] + [c for c in frame if c == "user_attrs_epochs"]
    keep += [c for c in frame if c.startswith("params_")]
    frame = frame[keep].rename(columns=lambda c: c.removeprefix("params_").replace("user_attrs_", ""))
    return frame.sort_values("value", ascending=False, na_position="last").round(4)


def run_sweep(
    config_path: Path,
    overrides: list,
    run: str,
    trials: int,
    space_path: Path | None,
    study: str | None,
    storage: str | None,
    make_vars: str,
    make_args: str,
    preset: Path | None = None,
) -> None:
    """Finish ``trials`` trials of the study (resuming it), print every trial as a table and the best as
    a `make train` line. ``run`` is what that line names: 'MODEL=fpn' or 'EXP=cpu-lite'."""
    import optuna

    if trials < 1:
        raise TrashsegError(f"TRIALS={trials}: must be 1 or more")
    space = read_space(space_path or DEFAULT_SPACE)
    cfg = load_config(config_path, overrides, preset=preset)  # the variables, checked before any trial
    firsts = {k: (s["choices"][0] if s["type"] == "categorical" else s["low"]) for k, s in space["params"].items()}
    for values in [firsts, *space.get("enqueue", [])]:  # the space's keys and types, and each queued trial
        load_config(config_path, trial_sets(config_path, overrides, space, {**firsts, **values}, preset), preset=preset)
    fold = cfg.train.fold
    study_name = study or f"{run.split('=', 1)[1]}-fold{fold}"
    sweep_runs = Path(cfg.train.runs_dir) / "sweeps" / study_name
    sweep_runs.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{sweep_runs.parent / f'{study_name}.db'}"
    opened = open_study(study_name, storage, space)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for values in space.get("enqueue", []):  # once: a resumed study finds them there
        labels = {k: label(v) for k, v in values.items()}
        opened.enqueue_trial(labels, skip_if_exists=True)
    done = finished(opened)
    print(f"[sweep] study {study_name} in {redact(storage)}: {done} of {trials} trials finished", flush=True)
    if done < trials:
        opened.optimize(
            make_objective(config_path, overrides, space, sweep_runs, preset),
            n_trials=trials - done,
            callbacks=[
                optuna.study.MaxTrialsCallback(
                    trials, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
                )
            ],
            catch=(TrashsegError,),
        )
    states = {}
    for t in opened.trials:
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    print(f"[sweep] trials: {', '.join(f'{n} {s}' for s, n in sorted(states.items()))}")
    import pandas

    with pandas.option_context("display.width", 250, "display.max_columns", 60, "display.max_colwidth", 40):
        print(trials_table(opened, space).to_string(index=False))
    try:
        best = opened.best_trial
    except ValueError:
        raise TrashsegError(
            f"study {study_name}: no trial completed (all pruned or failed); widen the space or the pruner's patience"
        ) from None
    print(
        f"[sweep] best trial {best.number}: {space.get('metric', 'miou')} {best.value:.4f} "
        f"({best.user_attrs.get('run_dir', '')})"
    )
    print(ready_line(run, fold, make_vars, make_args, own_sets(best, space)))
    return None
