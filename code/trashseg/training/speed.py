"""GPU speed switches from the config's ``speed`` section: mixed precision, channels_last, cuDNN
autotuning. Each is a switch; 'auto' turns it on where it pays (CUDA) and off on CPU, where
channels_last was measured to slow 512 px training and autocast brings nothing."""

from __future__ import annotations

import torch

from trashseg.errors import TrashsegError


def amp_dtype(cfg: dict, device: torch.device) -> torch.dtype | None:
    """None = full fp32; else the autocast dtype (bf16 where supported, fp16 otherwise)."""
    mode = str(cfg["speed"]["amp"]).lower()
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


def use_channels_last(cfg: dict, device: torch.device) -> bool:
    mode = str(cfg["speed"]["channels_last"]).lower()
    return device.type == "cuda" if mode == "auto" else mode in ("true", "1", "on")


def configure_backends(cfg: dict, device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(cfg["speed"]["cudnn_benchmark"])
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
