"""Checkpoints as plain tensors + primitives, written atomically, loaded with weights_only=True.

``best.pt`` holds the model, its config and metrics. ``last.pt`` adds everything a resumed run
needs to continue as if never stopped: optimizer, scheduler, grad scaler, epoch, best metric and
every RNG state (stored as tensors and lists, so no pickled object is ever loaded).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from trashseg.atomic import atomic_path
from trashseg.errors import TrashsegError
from trashseg.settings import Settings


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def save_checkpoint(
    path: Path, model: torch.nn.Module, cfg: Settings, epoch: int, metrics: dict, training_state: dict | None = None
) -> None:
    state = {"model": unwrap(model).state_dict(), "config": cfg.model_dump(), "epoch": epoch, "metrics": metrics}
    if training_state:
        state["training"] = training_state
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict:
    if not Path(path).is_file():
        raise TrashsegError(f"{path}: checkpoint not found (train the model first)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TrashsegError(
            f"{path}: not a loadable trashseg checkpoint (corrupt, truncated, or holding "
            f"pickled objects, which are never loaded): {first}"
        ) from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise TrashsegError(f"{path}: not a trashseg checkpoint (no model/config entries)")
    return state


def rng_state(generator: torch.Generator) -> dict:
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
        "loader": generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict, generator: torch.Generator) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    generator.set_state(state["loader"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
