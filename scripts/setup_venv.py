"""`make setup`: the pinned stack and the kit (editable) into a virtual environment, timed by phase.

Installing the stack is most of a fresh clone's first minutes: torch's wheels alone are gigabytes.
uv (pinned, installed into the venv from the same package index) downloads in parallel and links a
second install from its cache, so it is the default installer; pip stays the fallback, used when uv
cannot be had or fails (`INSTALLER=pip` asks for it). Each phase prints its seconds, so a slow setup
says where its time went.

    python3 scripts/setup_venv.py --venv .venv --installer uv -r requirements.txt -r requirements-dev.txt \
        -c constraints.txt
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

UV = "uv==0.13.9"  # pinned like the stack


def run(cmd: list[str], env: dict | None = None) -> bool:
    print("setup: " + " ".join(cmd), flush=True)
    return subprocess.call(cmd, env=env) == 0


def timed(what: str, step) -> bool:
    start = time.perf_counter()
    ok = step()
    print(f"setup: {what}: {time.perf_counter() - start:.1f} s{'' if ok else ' (failed)'}", flush=True)
    return ok


def uv_env() -> dict:
    """uv reads no pip configuration: an index the user gave pip through the environment is passed on
    (a pip.conf index is not: INSTALLER=pip uses it)."""
    env = dict(os.environ)
    for pip_key, uv_key in (("PIP_INDEX_URL", "UV_DEFAULT_INDEX"), ("PIP_EXTRA_INDEX_URL", "UV_INDEX")):
        if os.environ.get(pip_key) and not os.environ.get(uv_key):
            env[uv_key] = os.environ[pip_key]
    env.setdefault("UV_NATIVE_TLS", "1")  # the system's certificates, as pip uses them (proxies with their own CA)
    return env


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--venv", type=Path, default=Path(".venv"))
    p.add_argument("--installer", choices=("uv", "pip"), default="uv")
    p.add_argument("-r", dest="requirements", action="append", default=[])
    p.add_argument("-c", dest="constraints", action="append", default=[])
    args = p.parse_args()
    python = args.venv / "bin" / "python"
    start = time.perf_counter()
    if not python.exists():
        if not timed("create the venv", lambda: run([sys.executable, "-m", "venv", str(args.venv)])):
            return 1
    files = [a for r in args.requirements for a in ("-r", r)] + [a for c in args.constraints for a in ("-c", c)]
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    installer = args.installer
    uv = args.venv / "bin" / "uv"
    if installer == "uv" and not uv.exists():
        if not timed(f"install {UV} (pip)", lambda: run([*pip, UV])):
            print("setup: uv could not be installed; pip installs the stack instead", flush=True)
            installer = "pip"
    stack_ok = False
    if installer == "uv":
        cmd = [str(uv), "pip", "install", "--quiet", "--python", str(python), *files]
        stack_ok = timed("the pinned stack (uv)", lambda: run(cmd, env=uv_env()))
        if not stack_ok:
            print("setup: uv failed; pip installs the stack instead", flush=True)
            installer = "pip"
    if not stack_ok and not timed("the pinned stack (pip)", lambda: run([*pip, *files])):
        return 1
    kit = [*pip, "--no-deps", "--no-build-isolation", "-e", "."]
    if not timed("the kit, editable", lambda: run(kit)):
        return 1
    print(f"setup: done in {time.perf_counter() - start:.1f} s ({installer})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
