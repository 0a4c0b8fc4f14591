"""Speed switches from the config's ``speed`` section: mixed precision, channels_last, cuDNN
autotuning. Each is a switch; 'auto' turns it on where it always pays (CUDA) and leaves a CPU in fp32
and the default layout, since bf16 pays only on a CPU with native bf16 (AVX512-BF16 / AMX) and changes
the numbers a little. Where it is native it pays: one epoch of cpu-lite on 534 photos took 137 s in
fp32 and 98 s channels_last + bf16 on 2 cores (`make bench-cpu-speed`: 1.23-1.37x channels_last,
1.35-1.8x with bf16 as the machine's speed varied), so the CPU presets switch both on by name."""

from __future__ import annotations

import warnings

import torch

from trashseg.errors import TrashsegError
from trashseg.settings import Settings


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX512-BF16 or AMX) rather than emulating it."""
    return bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)())


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
        if device.type == "cpu" and not cpu_has_native_bf16():
            warnings.warn(
                "speed.amp=bf16 on a CPU without native bf16: emulated and slow; set speed.amp=off", stacklevel=2
            )
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
