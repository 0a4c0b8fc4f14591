"""Speed switches from the config's ``speed`` section for training: the precision and memory layout
resolved for the device (runtime/precision.py, shared with inference), and cuDNN autotuning."""

from __future__ import annotations

import torch

from trashseg.runtime.precision import Choice, choose, say_once
from trashseg.settings import Settings


def speed_choice(cfg: Settings, device: torch.device, announce: bool = True) -> Choice:
    """The run's precision and layout on ``device``; a named setting that is slow here is said once."""
    choice = choose(cfg.speed, device)
    if announce:
        say_once(choice)
    return choice


def configure_backends(cfg: Settings, device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = cfg.speed.cudnn_benchmark
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
