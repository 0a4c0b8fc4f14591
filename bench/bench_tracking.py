"""bench-tracking: what live tracking adds to a training epoch on CPU at the demo's settings (FPN,
EfficientNet-B0, random init, 256 px, batch 8, 4 epochs, the bundled sample's fold 0), tracking off
(the baseline, in the same run) against TensorBoard (the default: per-step loss/lr, per-epoch
metrics, 4 overlays every 2 epochs), W&B offline, and both. Runs alternate so the machine's
state is shared; the epoch time is the trainer's own (metrics.csv), the run time includes start-up,
and the trainer's own count of the seconds its process spent on tracking (the figure least
disturbed by a busy machine) is printed too.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, keep, results_path

VARIANTS = {
    "off": "[]",
    "tensorboard": "[tensorboard]",
    "wandb": "[wandb]",
    "tensorboard+wandb": "[tensorboard, wandb]",
}


# the measured settings; --smoke: a tiny encoder at 64 px, to show the script runs (figures meaningless)
SIZES = {False: ("tu-efficientnet_b0", 256, 8), True: ("tu-mobilenetv3_small_050", 64, 2)}


def run(variant: str, data: Path, work: Path, epochs: int, smoke: bool = False) -> tuple[list[float], float, float]:
    runs = work / f"runs_{variant}"
    shutil.rmtree(runs, ignore_errors=True)
    encoder, size, batch = SIZES[smoke]
    sets = [
        f"data.data_dir={data}",
        f"train.runs_dir={runs}",
        f"data.cache_dir={work / 'cache'}",
        "model.weights=none",
        f"model.encoder={encoder}",
        f"train.img_size={size}",
        f"train.batch_size={batch}",
        f"eval.batch_size={batch}",
        f"train.epochs={epochs}",
        "optimizer.lr=1e-3",
        "train.device=cpu",
        f"tracking.loggers={VARIANTS[variant]}",
    ]
    cmd = [sys.executable, str(ROOT / "code/FPN/train.py")] + [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bench-tracking: the {variant} training failed:\n{proc.stderr[-2000:]}")
    spent = 0.0  # the trainer's own count of its seconds on tracking (none printed when tracking is off)
    for line in proc.stdout.splitlines():
        if line.startswith("tracking ("):
            print(f"  {variant}: {line}", flush=True)
            spent = float(re.search(r"\): ([0-9.]+) s in the training process", line).group(1))
    with open(runs / "fpn" / "fold0" / "metrics.csv", newline="") as fh:
        seconds = [float(r["seconds"]) for r in csv.DictReader(fh)]
    return seconds, wall, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny encoder, 64 px: that it runs, not its figures")
    parser.add_argument("--out", type=Path, default=None, help="result JSON (default bench/results/tracking.json)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data"
        shutil.copytree(ROOT / "data" / "sample", data, ignore=shutil.ignore_patterns("train_data*", "valid_data*"))
        folds = [sys.executable, "-m", "trashseg", "folds", "--data-dir", str(data), "--k", "3"]
        subprocess.run([*folds, "--group", r"^(batch_[^/]+)/"], check=True, capture_output=True)
        epochs, walls, spent = {v: [] for v in VARIANTS}, {v: [] for v in VARIANTS}, {v: [] for v in VARIANTS}
        for rep in range(args.reps):
            order = list(VARIANTS) if rep % 2 == 0 else list(reversed(VARIANTS))
            for variant in order:
                seconds, wall, tracking = run(variant, data, work, args.epochs, args.smoke)
                spent[variant].append(tracking / sum(seconds))
                epochs[variant] += seconds[1:] or seconds  # the first epoch also builds the mask cache
                walls[variant].append(wall)
    base_epoch, base_wall = statistics.mean(epochs["off"]), statistics.mean(walls["off"])
    encoder, size, batch = SIZES[args.smoke]
    print(
        f"FPN {encoder} {size} px batch {batch}, {args.epochs} epochs x {args.reps} runs each "
        "(epoch 1 left out of the epoch mean)"
    )
    for variant in VARIANTS:
        e, w = statistics.mean(epochs[variant]), statistics.mean(walls[variant])
        print(
            f"{variant:<18} epoch {e:6.2f} s ({100 * (e / base_epoch - 1):+5.1f}%)   run {w:6.1f} s "
            f"({w - base_wall:+5.1f} s)"
        )
    for variant in list(VARIANTS)[1:]:
        key = variant.replace("+", "_")
        print(f"epoch_overhead_{key}={statistics.mean(epochs[variant]) / base_epoch:.3f}")
    figures = {
        variant: {
            "epoch_s": round(statistics.mean(epochs[variant]), 2),
            "run_s": round(statistics.mean(walls[variant]), 1),
            "epoch_overhead": round(statistics.mean(epochs[variant]) / base_epoch, 3),
            "tracking_share_of_epochs": round(statistics.mean(spent[variant]), 4),
        }
        for variant in VARIANTS
    }
    settings = {"encoder": encoder, "size": size, "batch": batch, "epochs": args.epochs, "reps": args.reps}
    keep("bench-tracking", figures, settings, args.out or (None if args.smoke else results_path("tracking")))


if __name__ == "__main__":
    main()
