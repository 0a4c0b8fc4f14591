"""Where models and presets are found, so that adding either is its own file and nothing else: a model
is a folder ``code/<Arch>/`` whose ``config.yaml`` names it (``model.name``, its run folder), a preset
is ``configs/<name>.yaml`` whose ``base:`` line names the model it layers over. `trashseg config list`
prints what is found; every verb that takes MODEL, MODELS or EXP resolves them here."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from trashseg.errors import TrashsegError


@dataclass(frozen=True)
class Model:
    name: str  # MODEL=, the run folder under RUNS
    folder: Path  # code/<Arch>/

    @property
    def config(self) -> Path:
        return self.folder / "config.yaml"


@dataclass(frozen=True)
class Preset:
    name: str  # EXP=, the run folder under RUNS
    path: Path  # configs/<name>.yaml
    base: str  # the model it layers over


@dataclass(frozen=True)
class Target:
    """What one run is made of: the model folder's config, the preset (if any) and the run's name."""

    model: Model
    preset: Preset | None

    @property
    def name(self) -> str:
        return self.preset.name if self.preset else self.model.name


def kit_root() -> Path:
    """The kit's folder: TRASHSEG_ROOT, else the current folder when it holds model folders (make runs
    there, so a copy of the kit finds its own), else the folder the package was installed from."""
    if os.environ.get("TRASHSEG_ROOT"):
        return Path(os.environ["TRASHSEG_ROOT"])
    if any(Path("code").glob("*/config.yaml")):
        return Path()  # relative: messages and `config show` name code/FPN/config.yaml, as typed
    return Path(__file__).resolve().parents[2]


def _yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TrashsegError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TrashsegError(f"{path}: top level must be a mapping of sections")
    return data


@cache
def _models(root: Path) -> dict[str, Model]:
    found: dict[str, Model] = {}
    for config in sorted((root / "code").glob("*/config.yaml")):
        name = (_yaml(config).get("model") or {}).get("name")
        if not isinstance(name, str) or not name:
            raise TrashsegError(f"{config}: needs model.name (the model's name and run folder, e.g. `name: fpn`)")
        if name in found:
            raise TrashsegError(f"{config}: model.name {name!r} is already {found[name].config}'s; names must differ")
        found[name] = Model(name, config.parent)
    return dict(sorted(found.items()))


@cache
def _presets(root: Path) -> dict[str, Preset]:
    found = {}
    for path in sorted((root / "configs").glob("*.yaml"), key=lambda p: p.stem):
        base = _yaml(path).get("base")
        if not isinstance(base, str):
            raise TrashsegError(f"{path}: needs a `base: <model>` line naming the model folder it layers over")
        found[path.stem] = Preset(path.stem, path, base)
    return found


def models() -> dict[str, Model]:
    return _models(kit_root())


def presets() -> dict[str, Preset]:
    return _presets(kit_root())


def model(name: str) -> Model:
    known = models()
    if name not in known:
        if name in presets():
            raise TrashsegError(
                f"MODEL={name}: {name} is a preset, not a model folder: EXP={name} (make train EXP={name})"
            )
        near = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
        raise TrashsegError(
            f"MODEL={name}: no model folder is named so (code/*/config.yaml, model.name)"
            + (f"; did you mean {near[0]}?" if near else f"; choose one of: {' '.join(known)}")
        )
    return known[name]


def preset(name: str) -> Preset:
    known = presets()
    if name not in known:
        if name in models():
            raise TrashsegError(f"EXP={name}: {name} is a model folder, not a preset: MODEL={name}")
        near = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
        hint = f"did you mean {near[0]}?" if near else f"presets: {' '.join(known)}"
        raise TrashsegError(f"EXP={name}: no configs/{name}.yaml; {hint}")
    return known[name]


def target(model_name: str | None, exp: str | None) -> Target:
    """MODEL and/or EXP as one run: the preset's base model, which MODEL (when given) must be."""
    if exp:
        p = preset(exp)
        if p.base not in models():
            raise TrashsegError(f"{p.path}: base: {p.base} names no model folder; choose one of: {' '.join(models())}")
        if model_name and model_name != p.base:
            raise TrashsegError(f"EXP={exp} layers over {p.base}, not MODEL={model_name}")
        return Target(model(p.base), p)
    if not model_name:
        raise TrashsegError(
            f"MODEL=: give a model, one of: {' '.join(models())}; or EXP=<preset>: {' '.join(presets())}"
        )
    return Target(model(model_name), None)
