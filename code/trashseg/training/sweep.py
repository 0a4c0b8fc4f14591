"""`make sweep`: an Optuna study over the training settings of one model on one fold.

The search space lives in YAML (sweep_space.yaml beside this file, or SPACE=path); the objective is
the fold's best validation mIoU; per-epoch values feed the pruner. Each trial is an ordinary run
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

import yaml

from trashseg.config import load_config
from trashseg.errors import TrashsegError
from trashseg.redact import redact

DEFAULT_SPACE = Path(__file__).with_name("sweep_space.yaml")
METRICS = ("miou", "miou_per_image")


def read_space(path: Path) -> dict:
    try:
        space = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise TrashsegError(f"SPACE={path}: file not found") from None
    except yaml.YAMLError as exc:
        raise TrashsegError(f"SPACE={path}: not valid YAML ({exc})") from None
    params = space.get("params")
    if not isinstance(params, dict) or not params:
        raise TrashsegError(f"{path}: needs a non-empty 'params' mapping of config key -> distribution")
    if space.get("metric", "miou") not in METRICS:
        raise TrashsegError(f"{path}: metric {space.get('metric')!r}: use one of {', '.join(METRICS)}")
    for key, spec in params.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        needs = {"float": ("low", "high"), "int": ("low", "high"), "categorical": ("choices",)}.get(kind)
        if needs is None:
            raise TrashsegError(f"{path}: params.{key}: type must be float, int or categorical, got {kind!r}")
        missing = [n for n in needs if n not in spec]
        if missing:
            raise TrashsegError(f"{path}: params.{key}: {kind} needs {', '.join(missing)}")
    return space


def suggest(trial, params: dict) -> dict:
    """The trial's value for every searched key."""
    values = {}
    for key, spec in params.items():
        kind = spec["type"]
        if kind == "float":
            values[key] = trial.suggest_float(key, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
        elif kind == "int":
            values[key] = trial.suggest_int(
                key, int(spec["low"]), int(spec["high"]), step=int(spec.get("step", 1)), log=bool(spec.get("log"))
            )
        else:
            values[key] = trial.suggest_categorical(key, list(spec["choices"]))
    return values


def as_sets(values: dict) -> list[str]:
    return [
        f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"
        for key, value in values.items()
    ]


def build_sampler(spec: dict):
    import optuna

    spec = dict(spec or {"name": "tpe"})
    name = spec.pop("name", "tpe")
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
        return optuna.create_study(
            study_name=name,
            storage=storage,
            direction="maximize",
            load_if_exists=True,
            sampler=build_sampler(space.get("sampler")),
            pruner=build_pruner(space.get("pruner")),
        )
    except (ImportError, SQLAlchemyError, ValueError) as exc:  # no driver, server unreachable, bad URL
        first = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise TrashsegError(
            f"STORAGE={redact(storage_url)}: cannot open the study database ({first}); "
            "SQLite (the default) and PostgreSQL (postgresql://user:password@host:port/db) work after make setup"
        ) from None


def finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def make_objective(config_path: Path, overrides: list[str], space: dict, sweep_runs: Path):
    import optuna

    metric = space.get("metric", "miou")

    def objective(trial) -> float:
        from trashseg.training.trainer import train

        values = suggest(trial, space["params"])
        sets = overrides + as_sets(values) + [f"train.runs_dir={sweep_runs}", f"model.name=trial{trial.number:03d}"]
        cfg = load_config(config_path, sets)
        trial.set_user_attr("run_dir", str(sweep_runs / f"trial{trial.number:03d}" / f"fold{cfg.train.fold}"))
        print(f"[sweep] trial {trial.number}: {', '.join(f'{k}={v}' for k, v in values.items())}", flush=True)

        def on_epoch(epoch: int, val: dict) -> None:
            value = float(val[metric])
            trial.report(0.0 if math.isnan(value) else value, epoch)
            if trial.should_prune():
                print(f"[sweep] trial {trial.number} pruned after epoch {epoch} ({metric} {value:.4f})", flush=True)
                raise optuna.TrialPruned()

        best = train(cfg, on_epoch=on_epoch)
        return float(best[metric])

    return objective


def ready_line(model: str, fold: int, make_vars: str, make_args: str, params: dict) -> str:
    sets = " ".join([make_args.strip()] * bool(make_args.strip()) + [f"--set {s}" for s in as_sets(params)])
    return f'make train MODEL={model} FOLD={fold}{" " + make_vars if make_vars else ""} ARGS="{sets}"'


def run_sweep(
    config_path: Path,
    overrides: list,
    model: str,
    trials: int,
    space_path: Path | None,
    study: str | None,
    storage: str | None,
    make_vars: str,
    make_args: str,
) -> None:
    """Finish ``trials`` trials of the study (resuming it), then print the best as a `make train` line."""
    import optuna

    if trials < 1:
        raise TrashsegError(f"TRIALS={trials}: must be 1 or more")
    space = read_space(space_path or DEFAULT_SPACE)
    cfg = load_config(config_path, overrides)  # the variables, checked before any trial
    load_config(
        config_path,
        overrides
        + as_sets(  # and the space's keys and types
            {k: (s["choices"][0] if s["type"] == "categorical" else s["low"]) for k, s in space["params"].items()}
        ),
    )
    fold = cfg.train.fold
    study_name = study or f"{model}-fold{fold}"
    sweep_runs = Path(cfg.train.runs_dir) / "sweeps" / study_name
    sweep_runs.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{sweep_runs.parent / f'{study_name}.db'}"
    opened = open_study(study_name, storage, space)
    done = finished(opened)
    print(f"[sweep] study {study_name} in {redact(storage)}: {done} of {trials} trials finished", flush=True)
    if done < trials:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        opened.optimize(
            make_objective(config_path, overrides, space, sweep_runs),
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
    print(ready_line(model, fold, make_vars, make_args, best.params))
