"""Helpers shared by the bench scripts: where the real data is, and a child's peak memory."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WOOSONG = Path(os.environ.get("WOOSONG_DIR", ROOT.parent / "shared/data/woosong-trashbags"))


def require_woosong() -> Path:
    if not (WOOSONG / "annotations.json").is_file():
        raise SystemExit(f"bench needs the real photos at {WOOSONG} (set WOOSONG_DIR)")
    return WOOSONG


def run_measured(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stdout) of one child process, from wait4's rusage of that child."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{err.read()[-2000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read()


def cpu_flags() -> dict:
    """The CPU's model name and the flags that decide the speed choice (from /proc/cpuinfo on Linux)."""
    import platform

    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_fp16")
    return {"model": name or platform.processor(), "flags": {f: f in flags for f in wanted}}


def machine() -> dict:
    """What a figure was measured on: the CPU model and its threads, torch, and the GPU when one is used."""
    import torch

    about = {"cpu": cpu_flags()["model"] or "?", "threads": torch.get_num_threads(), "torch": torch.__version__}
    if torch.cuda.is_available():
        about["gpu"] = torch.cuda.get_device_name(0)
    return about


def keep(name: str, figures: dict, settings: dict, out: Path | None) -> Path | None:
    """Write a bench's figures (with its settings, the machine and the commit) to ``out``, by default
    bench/results/<name>.json in git, which the docs' figures are read from and a test holds them to;
    ``out`` None (a --smoke run): nothing is kept."""
    if out is None:
        print(f"{name}: a smoke run; its figures are not kept")
        return None
    from trashseg.atomic import write_json

    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    write_json(out, {"bench": name, "settings": settings, "machine": machine(), "commit": commit, "figures": figures})
    print(f"wrote {out}")
    return out


def results_path(name: str) -> Path:
    return ROOT / "bench" / "results" / f"{name}.json"
