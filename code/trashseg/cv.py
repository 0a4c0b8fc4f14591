"""`make cv`: every fold of every model in MODELS, then inference and the ensemble.

With GPUS=N > 1 the fold jobs run in parallel, one per GPU (CUDA_VISIBLE_DEVICES), N at a time;
otherwise one after another. Each job is the ordinary make target, so a fold of `make cv` is
exactly `make train-fpn FOLD=k`; the user's make variables reach it through MAKEFLAGS.
"""

from __future__ import annotations

import argparse
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    target: str
    fold: int


def run_jobs(jobs: list[Job], gpus: int, runner) -> list[tuple[Job, int]]:
    """Run ``runner(job, gpu_or_None)`` for every job, at most ``gpus`` at once, each pinned to a
    free GPU; returns (job, exit code) in completion order."""
    if gpus <= 1:
        return [(job, runner(job, None)) for job in jobs]
    free: queue.Queue = queue.Queue()
    for gpu in range(gpus):
        free.put(gpu)
    results, lock, threads = [], threading.Lock(), []

    def work(job: Job) -> None:
        gpu = free.get()
        try:
            code = runner(job, gpu)
        finally:
            free.put(gpu)
        with lock:
            results.append((job, code))

    for job in jobs:
        t = threading.Thread(target=work, args=(job,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    return results


def make_runner(make: str, extra: list[str]):
    def runner(job: Job, gpu: int | None) -> int:
        env = dict(os.environ)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        cmd = [make, "--no-print-directory", job.target, f"FOLD={job.fold}", "GPUS=1", *extra]
        print(f"[cv] {' '.join(cmd)}" + (f"  (GPU {gpu})" if gpu is not None else ""), flush=True)
        return subprocess.call(cmd, env=env)

    return runner


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, required=True)
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--models", nargs="+", required=True, help="model map names (make: MODELS)")
    parser.add_argument("--make", default=os.environ.get("MAKE", "make"))
    parser.add_argument("--runs", nargs="+", help="run names to ensemble (default: --models; EXP=<preset>: its name)")
    args = parser.parse_args(argv)
    if args.k < 2 or args.gpus < 1:
        bad = (
            f"K={args.k}: the number of folds must be 2 or more"
            if args.k < 2
            else f"GPUS={args.gpus}: must be 1 or more"
        )
        print(f"error: {bad}", file=sys.stderr)
        raise SystemExit(2)
    runner = make_runner(args.make, [])
    for stage in ("train", "infer"):
        jobs = [Job(f"{stage}-{m}", k) for m in args.models for k in range(args.k)]
        failed = [(j, c) for j, c in run_jobs(jobs, args.gpus, runner) if c != 0]
        if failed:
            for job, code in failed:
                print(f"[cv] {job.target} FOLD={job.fold} failed (exit {code})", file=sys.stderr)
            raise SystemExit(1)
    raise SystemExit(
        subprocess.call(
            [args.make, "--no-print-directory", "ensemble", "GPUS=1", f"MODELS={' '.join(args.runs or args.models)}"]
        )
    )


if __name__ == "__main__":
    main()
