"""GPU speed switches from the config's ``speed`` section: mixed precision, channels_last, cuDNN
autotuning. Each is a switch; 'auto' turns it on where it pays (CUDA) and off on CPU, where
channels_last was measured to slow 512 px training and autocast brings nothing."""

from __future__ import annotations

import torch

from trashseg.errors import TrashsegError
from trashseg.settings import Settings


def amp_dtype(cfg: Settings, device: torch.device) -> torch.dtype | None:
    """None = full fp32; else the autocast dtype (bf16 where supported, fp16 otherwise)."""
    mode = cfg.speed.amp.lower()
    if mode in ("off", "false", "none", "fp32"):
        return None
    if mode == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if mode == "bf16":
        return torch.bfloat16
    if mode == "fp16":
        return torch.float16
    raise TrashsegError(f"speed.amp {mode!r}: choose auto, bf16, fp16 or off")


def use_channels_last(cfg: Settings, device: torch.device) -> bool:
    mode = cfg.speed.channels_last  # "auto" or a switch (the schema allows nothing else)
    return device.type == "cuda" if mode == "auto" else mode


def configure_backends(cfg: Settings, device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = cfg.speed.cudnn_benchmark
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
