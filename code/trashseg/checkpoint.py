"""Checkpoints as plain tensors + primitives, written atomically, loaded with weights_only=True."""
from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_path
from .errors import TrashsegError


def save_checkpoint(path: Path, model: torch.nn.Module, cfg: dict, epoch: int, metrics: dict) -> None:
    state = {"model": model.state_dict(), "config": cfg, "epoch": epoch, "metrics": metrics}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict:
    if not Path(path).is_file():
        raise TrashsegError(f"{path}: checkpoint not found (train the model first)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TrashsegError(f"{path}: not a loadable trashseg checkpoint ({str(exc).splitlines()[0]})") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise TrashsegError(f"{path}: not a trashseg checkpoint (no model/config entries)")
    return state
