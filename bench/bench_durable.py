"""bench-durable: what durable atomic writes (fsync of the temp file before the rename, and of the
folder after it) cost per checkpoint and per probability file, against rename-only atomic writes
(the kit's previous behaviour) measured in the same run, alternating the two so disk state is shared.

The checkpoint is a real FPN-EfficientNet-B3 training checkpoint (last.pt: weights + Adam state,
random init, no download); the probability file holds 200 test images (11 x 256 x 256, float16).
Files go to a folder on the disk the runs live on (default cache/bench_durable; /tmp may be memory).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from common import ROOT, keep, results_path
from trashseg.atomic import atomic_path
from trashseg.config import load_config
from trashseg.modeling.architectures import build_model


def checkpoint_state() -> dict:
    cfg = load_config(ROOT / "code/FPN/config.yaml", ["model.weights=none"])
    model = build_model(cfg)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.zeros(2, 3, 64, 64)).mean().backward()
    optimizer.step()
    return {"model": model.state_dict(), "training": {"optimizer": optimizer.state_dict()}}


def save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, array)


def timed_write(path: Path, write, durable: bool) -> float:
    start = time.perf_counter()
    with atomic_path(path, suffix=".tmp", durable=durable) as tmp:
        write(tmp)
    return time.perf_counter() - start


def measure(name: str, folder: Path, write, reps: int) -> dict:
    times = {True: [], False: []}
    for i in range(reps):
        for durable in (False, True) if i % 2 == 0 else (True, False):
            times[durable].append(timed_write(folder / f"{name}_{'durable' if durable else 'plain'}", write, durable))
    plain, durable = statistics.median(times[False]), statistics.median(times[True])
    size = (folder / f"{name}_durable").stat().st_size / 2**20
    print(
        f"{name:<16} {size:7.1f} MB  rename-only {plain * 1000:8.1f} ms  durable {durable * 1000:8.1f} ms  "
        f"extra {1000 * (durable - plain):+8.1f} ms  ratio {durable / plain:5.2f}x"
    )
    return {"mb": round(size, 1), "rename_ms": round(plain * 1000, 1), "durable_ms": round(durable * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "cache" / "bench_durable")
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--smoke", action="store_true", help="one write of 8 images' probabilities: that it runs")
    parser.add_argument("--out", type=Path, default=None, help="result JSON (default bench/results/durable.json)")
    args = parser.parse_args()
    images = 8 if args.smoke else 200
    args.reps = 1 if args.smoke else args.reps
    args.dir.mkdir(parents=True, exist_ok=True)
    try:
        state = checkpoint_state()
        probs = np.random.default_rng(0).random((images, 11, 256, 256), dtype=np.float32).astype(np.float16)
        print(f"median of {args.reps} writes each, folder {args.dir}")
        figures = {
            "checkpoint": measure("checkpoint", args.dir, lambda p: torch.save(state, p), args.reps),
            "probabilities": measure("probabilities", args.dir, lambda p: save_npy(p, probs), args.reps),
            "small_json": measure(
                "small json", args.dir, lambda p: Path(p).write_text('{"miou": 0.5}\n'), args.reps * 5
            ),
        }
        settings = {"reps": args.reps, "probability_images": images, "folder_filesystem_of": str(args.dir.parent)}
        keep("bench-durable", figures, settings, args.out or (None if args.smoke else results_path("durable")))
    finally:
        shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
