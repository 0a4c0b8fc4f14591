"""Which precision and memory layout a device runs fastest, decided once for every stage (training,
validation, infer with TTA, eval, report, predict): the config's ``speed.amp`` and
``speed.channels_last`` are switches, and ``auto`` resolves per machine.

Why per machine: bf16 autocast on a CPU is fast only where the CPU runs it natively (AVX512-BF16 or
AMX); elsewhere oneDNN emulates it and a training step is ~7-13x slower than fp32 (`make
bench-cpu-speed`: 0.53 vs 3.54 images/s with the ISA capped at AVX2; 0.35 vs 4.6 on a real AVX2-only
EPYC). channels_last paid in fp32 on both kinds of CPU (1.16-1.23x), so ``auto`` turns it on for
every device that runs convolutions through oneDNN or cuDNN. A user's explicit choice is kept, and
one that is slow here is said once, in one plain line."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

# oneDNN's own cap on the instruction sets it uses (users set it to reproduce another machine):
# anything below these runs bf16 / fp16 emulated even where the CPU has the instructions
_BELOW_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}
_BELOW_FP16 = _BELOW_BF16 | {"AVX512_CORE_BF16"}


def _isa_cap() -> str | None:
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return cap.strip().upper() if cap and cap.strip().upper() not in ("", "ALL", "DEFAULT") else None


def cpu_bf16() -> tuple[bool, str]:
    """(native, why): whether this CPU runs bf16 natively (AVX512-BF16 or AMX, and oneDNN allowed to
    use them), with the reason in a few words."""
    import torch

    hardware = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    cap = _isa_cap()
    if not hardware:
        return False, "this CPU emulates bf16: no AVX512-BF16 or AMX"
    if cap in _BELOW_BF16 or not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False, f"this CPU emulates bf16: oneDNN capped at {cap or 'an ISA without bf16'}"
    return True, "this CPU runs bf16 natively: " + ("AMX" if torch.cpu._is_amx_tile_supported() else "AVX512-BF16")


def cpu_fp16() -> tuple[bool, str]:
    """(native, why) for fp16 on this CPU: native only with AMX-FP16."""
    import torch

    if torch.cpu._is_amx_fp16_supported() and _isa_cap() not in _BELOW_FP16:
        return True, "this CPU runs fp16 natively: AMX-FP16"
    return False, "this CPU emulates fp16: no AMX-FP16"


@dataclass(frozen=True)
class Choice:
    """What a stage runs with on its device, and why; ``slow`` is the one line to say when the user
    named a setting this machine runs slowly (None otherwise)."""

    amp: object  # torch.dtype | None (None: fp32)
    channels_last: bool
    amp_why: str
    layout_why: str
    slow: str | None = None

    @property
    def amp_name(self) -> str:
        return "off" if self.amp is None else {"torch.bfloat16": "bf16", "torch.float16": "fp16"}[str(self.amp)]

    def describe(self) -> str:
        """``amp: off (auto: this CPU emulates bf16), channels_last: true (auto: ...)``"""
        layout = str(self.channels_last).lower()
        return f"amp: {self.amp_name} ({self.amp_why}), channels_last: {layout} ({self.layout_why})"

    def record(self) -> dict:
        """For the run record: what was chosen and why."""
        return {
            "amp": self.amp_name,
            "amp_why": self.amp_why,
            "channels_last": self.channels_last,
            "channels_last_why": self.layout_why,
        }


def choose(speed, device) -> Choice:
    """Resolve a config's ``speed`` section (``amp``: auto | bf16 | fp16 | off; ``channels_last``:
    auto | bool) for ``device`` (a torch.device)."""
    import torch

    mode, channels_last = str(speed.amp).lower(), speed.channels_last
    slow = None
    if mode in ("off", "false", "none", "fp32"):
        dtype, why = None, "set so"
    elif device.type == "cuda":
        if mode == "auto":
            bf16 = torch.cuda.is_bf16_supported()
            dtype, why = (
                (torch.bfloat16, "auto: this GPU runs bf16")
                if bf16
                else (torch.float16, "auto: fp16, no bf16 on this GPU")
            )
        else:
            dtype, why = (torch.bfloat16 if mode == "bf16" else torch.float16), "set so"
    elif device.type == "cpu":
        native, reason = cpu_bf16() if mode in ("auto", "bf16") else cpu_fp16()
        if mode == "auto":
            dtype, why = (torch.bfloat16, f"auto: {reason}") if native else (None, f"auto: {reason}")
        else:
            dtype, why = (torch.bfloat16 if mode == "bf16" else torch.float16), f"set so; {reason}"
            if not native:
                slow = (
                    f"speed.amp={mode}: {reason}, so every step runs several times slower than in fp32 "
                    "(bf16: 7-13x in make bench-cpu-speed); speed.amp=auto picks fp32 on this machine"
                )
    else:  # another backend: autocast only when named
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mode)
        why = "set so" if dtype is not None else f"auto: fp32 on {device.type}"
    if channels_last == "auto":
        last = device.type == "cuda" or (device.type == "cpu" and torch.backends.mkldnn.is_available())
        layout_why = "auto: convolutions run faster channels_last here" if last else f"auto: no gain on {device.type}"
    else:
        last, layout_why = bool(channels_last), "set so"
    return Choice(dtype, last, why, layout_why, slow)


_SAID: set[str] = set()


def say_once(choice: Choice) -> None:
    """Print the choice's slow-setting line, once a process (to stderr, no source path)."""
    if choice.slow and choice.slow not in _SAID:
        _SAID.add(choice.slow)
        print(f"note: {choice.slow}", file=sys.stderr, flush=True)
