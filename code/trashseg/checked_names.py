"""What the model-name checks found, kept per machine so a settings check need not import SMP,
timm and albumentations (~10 s of a process's start on a 2-core CPU) to learn it again.

The architecture's parameters, the encoder's name, the augmentation list and the input size's
multiple are facts of the installed libraries: the same settings checked under the same library
versions, by the same checking code, find the same. Only settings that passed are kept (a problem is
always found afresh, with its closest names); a file's existence (``model.weights``) is never kept
but looked at each time. The files live under ``$XDG_CACHE_HOME/trashseg/checked/`` (default
``~/.cache``), one per key; an unwritable or unreadable folder only means checking the slow way.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from importlib import metadata
from pathlib import Path

from trashseg.settings import Settings

LIBRARIES = ("segmentation-models-pytorch", "timm", "albumentations", "torch")
PACKAGE = Path(__file__).resolve().parent
# the code whose answers are kept: a change to any of these is another key
CHECKING_CODE = (
    "checks.py",
    "checked_names.py",
    "modeling/architectures.py",
    "modeling/weights_route.py",
    "data/transforms.py",
)


def folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trashseg" / "checked"


@cache
def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@cache
def _code_digest() -> str:
    code = hashlib.sha256()
    for name in CHECKING_CODE:
        code.update((PACKAGE / name).read_bytes())
    return code.hexdigest()


def key(cfg: Settings) -> str:
    """The settings the library checks read, the libraries' versions and the checking code's digest
    (those two read once a process: a check looks the key up, then keeps it, and cv checks every fold)."""
    mc, aug = cfg.model, cfg.augment
    parts = {
        "model": [mc.arch, mc.params, mc.encoder],
        "img_size": cfg.train.img_size,
        "augment": [aug.train, aug.normalize.model_dump()],
        "libraries": {d: _version(d) for d in LIBRARIES},
        "code": _code_digest(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def recall(cfg: Settings) -> dict | None:
    """The facts kept for these settings ({"multiple": int, "hub_weights": [names]}), or None."""
    try:
        facts = json.loads((folder() / f"{key(cfg)}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(facts, dict) or not isinstance(facts.get("multiple"), int):
        return None
    if not isinstance(facts.get("hub_weights"), list):
        return None
    return facts


def remember(cfg: Settings, facts: dict) -> None:
    """Keep what the checks found for settings that passed them (best effort: no folder, no memo)."""
    from trashseg.atomic import write_json

    try:
        folder().mkdir(parents=True, exist_ok=True)
        write_json(folder() / f"{key(cfg)}.json", facts)
    except OSError:
        pass
