"""What a run ran on: git commit (and whether the tree was dirty), pip freeze, torch / CUDA /
cuDNN versions, device names, seed and command line (secrets masked), written into the run folder."""

from __future__ import annotations

import datetime
import platform
import subprocess
import sys
from pathlib import Path

import torch

from trashseg.atomic import atomic_open, write_json
from trashseg.redact import redact_argv
from trashseg.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def git(*args: str) -> str | None:
    """git's answer in this repository (stripped), or None without git, outside a checkout or on error."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def write_run_record(
    out: Path, cfg: Settings, device: torch.device, world: int, resumed_from: int | None, speed: dict | None = None
) -> None:
    devices = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if device.type == "cuda"
        else [platform.processor() or platform.machine()]
    )
    status = git("status", "--porcelain")
    record = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": redact_argv(sys.argv),  # no password or key from the command line
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": str(device),
        "device_names": devices,
        "world_size": world,
        "seed": cfg.train.seed,
        "host": platform.node(),
        "resumed_from_epoch": resumed_from,
        "speed": speed,  # what speed.amp / speed.channels_last resolved to on this machine, and why
    }
    write_json(out / "run_record.json", record)
    freeze = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--disable-pip-version-check"], capture_output=True, text=True
    )
    with atomic_open(out / "pip_freeze.txt") as fh:
        fh.write(freeze.stdout)
