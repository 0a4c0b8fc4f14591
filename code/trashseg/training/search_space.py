"""The language of a sweep's search space (YAML): which config keys a trial draws and from what
(float, int, categorical; whole YAML values such as lists offered as choices, stored in Optuna as
their flow-YAML labels), what every trial fixes (``set``), which trials run first (``enqueue``) and
one cost for every trial (``budget``: image size traded against epochs). Read and checked once,
with one-line errors naming the block, before any trial starts."""

from __future__ import annotations

from pathlib import Path

import yaml

from trashseg.errors import TrashsegError

DEFAULT_SPACE = Path(__file__).with_name("sweep_space.yaml")
METRICS = ("miou", "miou_per_image")


def read_space(path: Path) -> dict:
    try:
        space = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise TrashsegError(f"SPACE={path}: file not found") from None
    except yaml.YAMLError as exc:
        raise TrashsegError(f"SPACE={path}: not valid YAML ({exc})") from None
    if space.get("metric", "miou") not in METRICS:
        raise TrashsegError(f"{path}: metric {space.get('metric')!r}: use one of {', '.join(METRICS)}")
    _check_params(path, space.get("params"))
    if not isinstance(space.get("set", {}), dict):
        raise TrashsegError(f"{path}: set: give a mapping of config key -> value, the same for every trial")
    _check_budget(path, space)
    _check_enqueue(path, space.get("enqueue", []), space["params"])
    return space


def _check_params(path: Path, params) -> None:
    if not isinstance(params, dict) or not params:
        raise TrashsegError(f"{path}: needs a non-empty 'params' mapping of config key -> distribution")
    for key, spec in params.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        needs = {"float": ("low", "high"), "int": ("low", "high"), "categorical": ("choices",)}.get(kind)
        if needs is None:
            raise TrashsegError(f"{path}: params.{key}: type must be float, int or categorical, got {kind!r}")
        missing = [n for n in needs if n not in spec]
        if missing:
            raise TrashsegError(f"{path}: params.{key}: {kind} needs {', '.join(missing)}")


def _check_budget(path: Path, space: dict) -> None:
    budget = space.get("budget")
    if budget is None:
        return
    if not isinstance(budget, dict) or set(budget) != {"size_at", "epochs_at"}:
        raise TrashsegError(
            f"{path}: budget: give {{size_at: <px>, epochs_at: <epochs>}}, e.g. {{size_at: 256, epochs_at: 4}}"
        )
    if not all(isinstance(v, int) and v > 0 for v in budget.values()):
        raise TrashsegError(f"{path}: budget: size_at and epochs_at must be whole numbers above 0, got {budget}")
    if "train.epochs" in space["params"] or "train.epochs" in (space.get("set") or {}):
        raise TrashsegError(
            f"{path}: budget sets train.epochs from the image size; remove train.epochs from params/set"
        )


def _check_enqueue(path: Path, enqueue, params: dict) -> None:
    if not isinstance(enqueue, list) or not all(isinstance(e, dict) for e in enqueue):
        raise TrashsegError(f"{path}: enqueue: give a list of mappings, config key -> value (the trials to run first)")
    for number, queued in enumerate(enqueue):
        for key, value in queued.items():
            if key not in params:
                raise TrashsegError(f"{path}: enqueue[{number}].{key}: not a key of params ({', '.join(params)})")
            choices = params[key].get("choices")
            if params[key]["type"] == "categorical" and value not in choices:
                raise TrashsegError(f"{path}: enqueue[{number}].{key}: {value!r} is not one of its choices {choices}")


def label(value):
    """What Optuna stores for a categorical choice: scalars as they are, lists and mappings as flow YAML
    (Optuna's choices must be None, bool, int, float or str)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return _flow(value)


def _flow(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**9).strip().removesuffix("...").strip()  # one line


def decode(params: dict, space_params: dict) -> dict:
    """A trial's stored params back as config values (the labels of lists/mappings undone)."""
    out = {}
    for key, value in params.items():
        spec = space_params.get(key, {})
        if spec.get("type") == "categorical":
            value = {label(c): c for c in spec["choices"]}.get(value, value)
        out[key] = value
    return out


def budget_epochs(space: dict, img_size: int) -> int | None:
    """Epochs that cost what ``epochs_at`` epochs cost at ``size_at`` px (cost ~ pixels x epochs)."""
    budget = space.get("budget")
    if not budget:
        return None
    return max(1, round(budget["epochs_at"] * (budget["size_at"] / img_size) ** 2))


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
            labels = [label(c) for c in spec["choices"]]
            values[key] = dict(zip(labels, spec["choices"]))[trial.suggest_categorical(key, labels)]
    return values


def as_sets(values: dict) -> list[str]:
    return [f"{key}={_flow(value)}" for key, value in values.items()]
