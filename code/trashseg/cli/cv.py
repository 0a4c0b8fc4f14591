"""`trashseg cv` (make cv): every fold of every model in MODELS, then inference and the ensemble.

With GPUS=N > 1 the fold jobs run in parallel, one per GPU (CUDA_VISIBLE_DEVICES), N at a time;
otherwise one after another. Each job is the ordinary verb in its own process, so a fold of
`make cv` is exactly `trashseg train --model fpn --fold k` with the same settings.

cv resumes: before any job it looks at every fold's run folder (training/run_folder.py): a finished
fold of the same settings is kept, a killed one goes on from its last.pt (RESUME=1), a fold of other
settings stops it with one line (FORCE=1 trains every fold again); probabilities already inferred
from a fold's best.pt with today's views are kept. The fold files must be `make folds K=<K>`'s.
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
    extra: tuple[str, ...] = ()  # --resume 1 | --force 1


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
        cmd = ["trashseg", job.verb, *job.run, f"--fold={job.fold}", *job.extra, *common]
        print(f"[cv] {' '.join(cmd)}" + (f"  (GPU {gpu})" if gpu is not None else ""), flush=True)
        return subprocess.call([sys.executable, "-m", *cmd], env=env)

    return runner


def job_config(args, model: str | None = None, exp: str | None = None, fold: int | None = None):
    """The settings a fold job runs with (its model.name, which a --set may change, names the run
    folder: ARGS='--set model.name=b3-long'), so cv plans and merges the runs the jobs write."""
    import argparse

    one = argparse.Namespace(
        **{**vars(args), "MODEL": model, "EXP": exp, **({"FOLD": fold} if fold is not None else {})}
    )
    return options.config(one)


def trained_name(args, model: str | None = None, exp: str | None = None) -> str:
    return job_config(args, model, exp).model.name


# what every fold job of cv shares: the run's settings, less the fold each job is given and RESUME,
# which cv decides fold by fold
SHARED = [v for v in options.RUN_SETTINGS if v not in ("FOLD", "RESUME")]
PLANNED = {"train": (), "force": ("--force", "1"), "resume": ("--resume", "1")}


def plan(args, runs: list[list[str]], k: int, force: bool) -> tuple[list[Job], list[Job]]:
    """The train and infer jobs still to run, every fold's run folder looked at first (so a fold of
    other settings stops cv before any work), with a line for each fold kept."""
    from pathlib import Path

    from trashseg.data.coco import read_json
    from trashseg.hashing import file_sha256
    from trashseg.inference.probs import making, probs_current
    from trashseg.runs import data_dir, data_json, probs_path, run_dir
    from trashseg.training.run_folder import fold_plan

    names: dict[Path, list[str]] = {}  # each COCO file's image names, read once

    def images(path: Path) -> list[str]:
        if path not in names:
            names[path] = [img["file_name"] for img in read_json(path)["images"]]
        return names[path]

    train, infer = [], []
    for run in runs:
        model, exp = (None, run[1]) if run[0] == "--exp" else (run[1], None)
        for fold in range(k):
            cfg = job_config(args, model, exp, fold)
            action = fold_plan(cfg, force)
            if action != "keep":
                train.append(Job("train", tuple(run), fold, PLANNED[action]))
                infer.append(Job("infer", tuple(run), fold))
                continue
            now = making(cfg, file_sha256(run_dir(cfg) / "best.pt"))  # the checkpoint hashed once a fold
            inputs = {"test": data_dir(cfg) / cfg.data.test_json, "valid": data_json(cfg, "valid_json")}
            stale = [s for s, path in inputs.items() if not probs_current(probs_path(cfg, s), now, images(path))]
            print(f"[cv] {run_dir(cfg)}: finished, kept" + (f"; infer again: {', '.join(stale)}" if stale else ""))
            if stale:
                infer.append(Job("infer", tuple(run), fold, ("--splits", " ".join(stale))))
    return train, infer


@friendly_errors
def cv(argv: list[str]) -> int:
    p = options.parser(
        "cv",
        "Every fold (K) of MODELS (or of EXP's preset): train, then infer, then ensemble -> SUBMISSIONS/NAME.csv. "
        "GPUS=N > 1: the fold jobs run in parallel, one per GPU.",
        ["MODELS", "EXP", "K", "GPUS", *SHARED, "FORCE", "SUBMISSIONS", "NAME"],
        sets=True,
    )
    args = options.parse(p, argv)
    options.check(args)
    k, gpus = options.count(args, "K"), options.count(args, "GPUS")
    if k < 2:
        raise TrashsegError(f"K={k}: the number of folds must be 2 or more")
    if gpus < 1:
        raise TrashsegError(f"GPUS={gpus}: must be 1 or more")
    from trashseg.data.folds import check_folds
    from trashseg.runs import data_dir

    shared = options.config(args, models=False)
    check_folds(data_dir(shared), k=k)
    from trashseg.runs import data_json
    from trashseg.settings import changed

    for fold in range(k):  # every fold's files before any job (fold files from elsewhere have no record)
        for key in ("train_json", "valid_json"):
            data_json(changed(shared, {"train.fold": fold}), key)
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
    for jobs in plan(args, runs, k, options.switch(args, "FORCE")):
        failed = [(j, c) for j, c in run_jobs(jobs, gpus, runner) if c != 0]
        if failed:
            for job, code in failed:
                print(f"[cv] {job.verb} {' '.join(job.run)} --fold={job.fold} failed (exit {code})", file=sys.stderr)
            return 1
    merge = options.as_argv(args, ["DATA_DIR", "RUNS", "TTA", "CRF", "SUBMISSIONS", "NAME"])
    cmd = ["trashseg", "ensemble", f"--models={' '.join(names)}", *merge]
    print(f"[cv] {' '.join(cmd)}", flush=True)
    return subprocess.call([sys.executable, "-m", *cmd])
