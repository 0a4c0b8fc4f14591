"""`trashseg cv` (make cv): every fold of every model in MODELS, then inference and the ensemble.

With GPUS=N > 1 the fold jobs run in parallel, one per GPU (CUDA_VISIBLE_DEVICES), N at a time;
otherwise one after another. Each job is the ordinary verb in its own process, so a fold of
`make cv` is exactly `trashseg train --model fpn --fold k` with the same settings.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass

from trashseg import registry
from trashseg.cli import options
from trashseg.errors import TrashsegError, friendly_errors


@dataclass(frozen=True)
class Job:
    verb: str  # train | infer
    run: tuple[str, ...]  # --model <name> | --exp <preset>
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


def verb_runner(common: list[str]):
    """Each job as its own `trashseg <verb>` process (its own GPU, its own memory), ``common``
    options added."""

    def runner(job: Job, gpu: int | None) -> int:
        env = dict(os.environ)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        cmd = ["trashseg", job.verb, *job.run, f"--fold={job.fold}", *common]
        print(f"[cv] {' '.join(cmd)}" + (f"  (GPU {gpu})" if gpu is not None else ""), flush=True)
        return subprocess.call([sys.executable, "-m", *cmd], env=env)

    return runner


def trained_name(args, model: str | None = None, exp: str | None = None) -> str:
    """The run folder a fold job trains into: its settings' model.name, which a --set may change
    (ARGS='--set model.name=b3-long'), so the merge reads the runs the jobs wrote."""
    import argparse

    one = argparse.Namespace(**{**vars(args), "MODEL": model, "EXP": exp})
    return options.config(one).model.name


# what every fold job of cv shares: the run's settings, less the fold each job is given
SHARED = [v for v in options.RUN_SETTINGS if v != "FOLD"]


@friendly_errors
def cv(argv: list[str]) -> int:
    p = options.parser(
        "cv",
        "Every fold (K) of MODELS (or of EXP's preset): train, then infer, then ensemble -> SUBMISSIONS/NAME.csv. "
        "GPUS=N > 1: the fold jobs run in parallel, one per GPU.",
        ["MODELS", "EXP", "K", "GPUS", *SHARED, "SUBMISSIONS", "NAME"],
        sets=True,
    )
    args = options.parse(p, argv)
    options.check(args)
    k, gpus = options.count(args, "K"), options.count(args, "GPUS")
    if k < 2:
        raise TrashsegError(f"K={k}: the number of folds must be 2 or more")
    if gpus < 1:
        raise TrashsegError(f"GPUS={gpus}: must be 1 or more")
    if args.EXP:
        runs = [["--exp", registry.target(None, args.EXP).name]]
        names = [trained_name(args, exp=args.EXP)]
    else:
        models = options.words(args, "MODELS") or list(registry.models())
        presets = registry.presets()  # MODELS names runs, as for oof and ensemble: model folders or presets
        runs = [["--exp", m] if m in presets else ["--model", registry.model(m).name] for m in models]
        names = [trained_name(args, exp=m) if m in presets else trained_name(args, model=m) for m in models]
    common = options.as_argv(args, SHARED)
    runner = verb_runner(common)
    for stage in ("train", "infer"):
        jobs = [Job(stage, tuple(run), fold) for run in runs for fold in range(k)]
        failed = [(j, c) for j, c in run_jobs(jobs, gpus, runner) if c != 0]
        if failed:
            for job, code in failed:
                print(f"[cv] {job.verb} {' '.join(job.run)} --fold={job.fold} failed (exit {code})", file=sys.stderr)
            return 1
    merge = options.as_argv(args, ["DATA_DIR", "RUNS", "TTA", "CRF", "SUBMISSIONS", "NAME"])
    cmd = ["trashseg", "ensemble", f"--models={' '.join(names)}", *merge]
    print(f"[cv] {' '.join(cmd)}", flush=True)
    return subprocess.call([sys.executable, "-m", *cmd])
