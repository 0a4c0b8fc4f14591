"""What a run ran on: git commit (and whether the tree was dirty), the installed packages (pip
freeze's lines), torch / CUDA / cuDNN versions, device names, seed and command line (secrets masked),
written into the run folder."""

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
PIP_OWN = {"pip", "setuptools", "wheel", "distribute"}  # what `pip freeze` leaves out


def git(*args: str) -> str | None:
    """git's answer in this repository (stripped), or None without git, outside a checkout or on error."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def installed() -> str:
    """Every installed distribution, one a line as `pip freeze` writes them ("name==version"; a package
    installed from a folder or URL as "name @ url", an editable one as "-e path", where pip writes a git
    checkout's remote and commit: run_record.json keeps the commit), read from the environment's metadata
    in-process: a `pip freeze` subprocess is ~1 s of every training's start."""
    import json
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    lines = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name or name.lower() in lines or name.lower() in PIP_OWN:
            continue
        line = f"{name}=={dist.version}"
        direct = dist.read_text("direct_url.json")
        if direct:
            try:
                info = json.loads(direct)
            except ValueError:
                info = {}
            url = info.get("url", "")
            if info.get("dir_info", {}).get("editable") and url.startswith("file://"):
                line = f"-e {unquote(urlparse(url).path)}"
            elif url and "vcs_info" not in info:
                line = f"{name} @ {url}"
        lines[name.lower()] = line
    return "".join(f"{lines[k]}\n" for k in sorted(lines))


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
    with atomic_open(out / "pip_freeze.txt") as fh:
        fh.write(installed())
