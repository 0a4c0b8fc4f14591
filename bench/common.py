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
