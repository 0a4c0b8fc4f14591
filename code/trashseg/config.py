"""Layered configuration: the schema's defaults (settings.py) < model config.yaml < experiment
preset (``configs/<name>.yaml``, EXP=<name>) < variables and ``--set``; the result is the typed
settings object every stage receives.

A preset names the model folder it layers over (``base: fpn``, a model folder's name)
and its run folder is named after it (runs/<name>/fold<k>), so variants of one architecture never
overwrite each other and oof / fit-ensemble / ensemble address them by that name.

Keys are checked against the schema's keys while merging, so a typo is an error that suggests the close
match instead of a setting that silently does nothing; the merged result is then type-checked as a
whole (trashseg.settings) before anything runs.
"""

from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path

import yaml

from trashseg.errors import TrashsegError
from trashseg.settings import Settings, parse

# Sections whose keys are free-form (user data, not settings).
FREE_FORM = {("data", "class_map"), ("augment", "train"), ("model", "params")}


def _read_yaml(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise TrashsegError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise TrashsegError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TrashsegError(f"{path}: top level must be a mapping of sections")
    return data


def _unknown_key(key: str, known, where: str) -> TrashsegError:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}"
    return TrashsegError(f"unknown config key {where}{key!r}{hint}")


def merge(base: dict, override: dict, source: str, prefix: tuple = ()) -> dict:
    """Recursively merge ``override`` into a copy of ``base``, refusing keys ``base`` lacks."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        path = prefix + (key,)
        if path in FREE_FORM:  # user data: new keys allowed, mappings extended
            if isinstance(out.get(key), list) and _indexed(value):
                out[key] = _into_list(out[key], value, ".".join(map(str, path)))
            elif isinstance(out.get(key), dict) and isinstance(value, dict):
                out[key] = {**out[key], **copy.deepcopy(value)}
            else:
                out[key] = copy.deepcopy(value)
            continue
        if key not in out:
            raise _unknown_key(key, out.keys(), f"in {source}: {'.'.join(prefix) + '.' if prefix else ''}")
        if isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = merge(out[key], value, source, path)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _indexed(value) -> bool:
    """{'1': {...}} from ``--set augment.train.1.X.p=0.5``: entries of a list addressed by position."""
    return isinstance(value, dict) and bool(value) and all(str(k).isdigit() for k in value)


def _deep(base, override, where: str):
    """``override`` merged into ``base``: mappings key by key, lists by position (digit keys)."""
    if isinstance(base, list) and _indexed(override):
        return _into_list(base, override, where)
    if isinstance(base, dict) and isinstance(override, dict):
        if len(base) == 1 and len(override) == 1 and next(iter(base)) != next(iter(override)):
            name = next(iter(base))
            if isinstance(base[name], dict | type(None)) and str(name)[:1].isupper():
                raise TrashsegError(f"{where} is {name}, not {next(iter(override))}")
        out = dict(base)
        for k, v in override.items():
            out[k] = _deep(base[k], v, f"{where}.{k}") if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(override)


def _into_list(items: list, override: dict, where: str) -> list:
    out = list(items)
    for k, v in override.items():
        i = int(k)
        if i >= len(out):
            raise TrashsegError(f"{where}.{i}: {where} has {len(out)} entries (0..{len(out) - 1})")
        out[i] = _deep(out[i], v, f"{where}.{i}")
    return out


def parse_set(item: str) -> dict:
    """Turn 'a.b.c=value' into {'a': {'b': {'c': value}}} with the value parsed as YAML."""
    if "=" not in item:
        raise TrashsegError(f"--set {item!r}: expected key.sub=value")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):  # YAML 1.1 reads '3e-4' as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, str) and value.lower() == "none" and key.strip().endswith("weights"):
        value = "none"
    tree: dict = {}
    node = tree
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return tree


def read_preset(path: str | Path) -> dict:
    """A preset's settings, less its ``base`` line; it may not name its run (its file name does)."""
    data = _read_yaml(Path(path))
    if not isinstance(data.get("base"), str):
        raise TrashsegError(f"{path}: needs a `base: <model>` line naming the model folder it layers over")
    if "name" in (data.get("model") or {}):
        raise TrashsegError(f"{path}: model.name is the preset's file name ({Path(path).stem}); remove it")
    settings = {k: v for k, v in data.items() if k != "base"}
    settings["model"] = {**(settings.get("model") or {}), "name": Path(path).stem}
    return settings


def load_config(
    model_config: str | Path | None = None,
    overrides: list[str | tuple[str, str]] | None = None,
    models: bool = True,
    preset: str | Path | None = None,
    explain: dict | None = None,
) -> Settings:
    """Resolve and validate the full config for one run (``models=False``: a command that builds
    no model, whose check then skips the architecture/encoder names and imports no SMP). An override
    is 'key=value' or (its source, 'key=value'); ``explain``, when given, receives each key's source."""
    from trashseg.checks import validate

    layers = [("defaults", defaults())]
    if model_config is not None:
        layers.append((str(model_config), _read_yaml(Path(model_config))))
    if preset is not None:
        layers.append((str(preset), read_preset(preset)))
    cfg = layers[0][1]
    for source, tree in layers[1:]:
        cfg = merge(cfg, tree, source)
    unknown = []  # each bad override is reported with the others, not alone
    for item in overrides or []:
        source, item = item if isinstance(item, tuple) else ("--set", item)
        tree = parse_set(item)
        try:
            cfg = merge(cfg, tree, f"--set {item}" if source == "--set" else source)
        except TrashsegError as exc:
            unknown.append(str(exc))
            continue
        layers.append((source, tree))
    if explain is not None:
        for source, tree in layers:
            for key in _leaves(tree):
                explain[key] = source
    names = [s for s, _ in layers[: 1 + (model_config is not None) + (preset is not None)]]
    where = " < ".join(names + ["--set / Make variables"] * bool(overrides))
    try:
        settings = validate(cfg, where, models)
    except TrashsegError as exc:
        if not unknown:
            raise
        head, _, rest = str(exc).partition(":\n  ")
        problems = unknown + (rest.split("\n  ") if rest else [head])
        raise TrashsegError(f"{len(problems)} invalid setting(s) in {where}:\n  " + "\n  ".join(problems)) from None
    if len(unknown) == 1:
        raise TrashsegError(unknown[0])
    if unknown:
        raise TrashsegError(f"{len(unknown)} invalid setting(s) in {where}:\n  " + "\n  ".join(unknown))
    return settings


def _leaves(tree: dict, prefix: tuple = ()) -> list[str]:
    """Dotted keys of a layer's values (a free-form section counts as one value)."""
    out = []
    for key, value in tree.items():
        path = prefix + (key,)
        if isinstance(value, dict) and path not in FREE_FORM and value:
            out += _leaves(value, path)
        else:
            out.append(".".join(map(str, path)))
    return out


def on_this_machine(cfg) -> dict[str, str]:
    """What the machine-dependent keys resolve to here (``speed.amp``, ``speed.channels_last`` on the
    config's device), so two machines' runs of one preset can be told apart."""
    from trashseg.errors import TrashsegError
    from trashseg.runtime.devices import resolve_device
    from trashseg.runtime.precision import choose

    try:
        choice = choose(cfg.speed, resolve_device(cfg.train.device))
    except TrashsegError as exc:
        return {"speed.amp": f"unresolved ({exc})"}
    return {
        "speed.amp": f"{choice.amp_name} ({choice.amp_why})",
        "speed.channels_last": f"{str(choice.channels_last).lower()} ({choice.layout_why})",
    }


def explained(cfg, sources: dict) -> str:
    """The resolved settings, one key a line, each with where its value came from (and, for a key
    that resolves per machine, what it resolves to here)."""
    here = on_this_machine(cfg)
    cfg, lines = cfg.model_dump(), []
    for key in _leaves(cfg):
        value = cfg
        for part in key.split("."):
            value = value[part]
        text = json.dumps(value, default=str)
        source = sources.get(key) or next((s for k, s in sources.items() if key.startswith(k + ".")), "defaults")
        resolved = f"; here: {here[key]}" if key in here else ""
        lines.append(f"{key + ':':<32} {text:<40} # {source}{resolved}")
    return "\n".join(lines) + "\n"


def defaults() -> dict:
    """Every key with its default, as the schema declares them."""
    return Settings().model_dump()


def dump(cfg) -> str:
    return yaml.safe_dump(cfg.model_dump(), sort_keys=False)


def upgrade(saved: dict):
    """A config saved by an older run (a checkpoint's), completed with today's defaults for keys it
    lacks, as typed settings."""

    def fill(base: dict, over: dict) -> dict:
        out = copy.deepcopy(base)
        for key, value in over.items():
            out[key] = fill(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
        return out

    return parse(fill(defaults(), saved), "a saved run's config")
