"""bench-start: what a competitor's first minutes cost on this machine, from a fresh clone of this
checkout (in a temporary folder): `make setup` with uv's cache empty, `make setup` again into a new
venv with the cache filled, then `make demo` (the whole path on the bundled sample: folds, FPN and
DeepLabV3Plus from offline ImageNet weights, the CSV). Kept, with the CPU's bf16 support (the demo
trains in bf16 only where it is native), in bench/results/start-<bf16-native|avx2>.json (in git),
which docs/results.md's figures are read from.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import ROOT, cpu_flags, keep, results_path


def timed(what: str, cmd: list[str], cwd: Path, env: dict) -> float:
    print(f"$ {' '.join(cmd)}  ({what})", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bench-start: {what} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    print(f"{what}: {seconds:.1f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="result JSON (default bench/results/start-<kind>.json)")
    parser.add_argument("--keep-clone", action="store_true", help="leave the clone (its path is printed)")
    args = parser.parse_args()
    flags = cpu_flags()["flags"]
    kind = "bf16-native" if flags.get("avx512_bf16") or flags.get("amx_bf16") else "avx2"
    work = Path(tempfile.mkdtemp(prefix="bench-start-"))
    try:
        clone = work / "trashseg"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        head = subprocess.run(["git", "-C", str(clone), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_CACHE_DIR"))}
        env["UV_CACHE_DIR"] = str(work / "uv-cache")  # empty: every wheel comes from the package index
        make = ["make", "--no-print-directory"]
        cold = timed("make setup, uv's cache empty", [*make, "setup"], clone, env)
        shutil.rmtree(clone / ".venv")
        warm = timed("make setup again, the cache filled", [*make, "setup"], clone, env)
        demo = timed("make demo", [*make, "demo"], clone, env)
        csv = clone / "submissions" / "demo.csv"
        if not csv.is_file():
            raise SystemExit(f"bench-start: make demo wrote no {csv}")
        figures = {"setup_cold_s": round(cold, 1), "setup_warm_s": round(warm, 1), "demo_s": round(demo, 1)}
        print(" ".join(f"{k}={v}" for k, v in figures.items()))
        settings = {"kind": kind, "flags": flags, "clone_of": head.stdout.strip(), "installer": "uv"}
        keep("bench-start", figures, settings, args.out or results_path(f"start-{kind}"))
    finally:
        if args.keep_clone:
            print(f"the clone: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
