"""Device names from the config ('auto', 'cpu', 'cuda', 'cuda:N') -> torch devices, for training
and inference alike."""

from __future__ import annotations

import re

from trashseg.errors import TrashsegError

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(name: str):
    """The torch.device for ``name`` (torch imported here: settings read the pattern without it)."""
    import torch

    if not DEVICE_PATTERN.match(name):
        raise TrashsegError(f"train.device={name!r}: use auto, cpu, cuda or cuda:N")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        if name.startswith("cuda"):
            raise TrashsegError(f"train.device={name!r}: CUDA is not available on this machine (use DEVICE=cpu)")
    elif ":" in name and int(name.split(":")[1]) >= torch.cuda.device_count():
        raise TrashsegError(f"train.device={name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(name)
