"""bench-cpu: CPU training and inference images/s with glibc's default allocator behaviour against
the kit's tuned setting (the Makefile's CPU_MALLOC), same model and data, same run.

Each setting runs in its own process (malloc reads its environment at start-up). jemalloc is
measured too when /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 exists (Debian: libjemalloc2).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from common import keep, results_path

TUNED = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000", "MALLOC_TOP_PAD_": "1073741824"}
JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")


def worker(mode: str, size: int, batch: int, steps: int, encoder: str) -> None:
    import torch

    from trashseg.config import load_config
    from trashseg.modeling.architectures import build_model
    from trashseg.training.losses import build_loss

    torch.manual_seed(0)
    cfg = load_config(None, [f"model.encoder={encoder}", "model.weights=none"])
    model = build_model(cfg)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 11, (batch, size, size))
    if mode == "train":
        loss_fn, opt = build_loss(cfg), torch.optim.Adam(model.parameters(), 1e-4)
        model.train()

        def step():
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                model(x).softmax(1)

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    print(f"{batch * steps / (time.perf_counter() - start):.4f}")


def measure(mode: str, env_extra: dict, args) -> float:
    env = {k: v for k, v in os.environ.items() if k not in TUNED and k != "LD_PRELOAD"}
    env.update(env_extra)
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            mode,
            "--size",
            str(args.size),
            "--batch",
            str(args.batch),
            "--steps",
            str(args.steps),
            "--encoder",
            args.encoder,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", choices=["train", "infer"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--encoder", default="tu-efficientnet_b0")
    parser.add_argument("--smoke", action="store_true", help="a tiny encoder at 64 px, one step: that it runs")
    parser.add_argument("--out", type=Path, default=None, help="result JSON (default bench/results/cpu.json)")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.batch, args.steps, args.encoder = 64, 2, 1, "tu-mobilenetv3_small_050"
    if args.worker:
        worker(args.worker, args.size, args.batch, args.steps, args.encoder)
        return
    settings = {"default": {}, "tuned": TUNED}
    if JEMALLOC.exists():
        settings["jemalloc"] = {"LD_PRELOAD": str(JEMALLOC)}
    print(
        f"FPN {args.encoder}, {args.size} px, batch {args.batch}, {args.steps} timed steps, CPU threads "
        f"{os.cpu_count()}"
    )
    results = {}
    for mode in ("train", "infer"):
        for name, env in settings.items():
            results[(mode, name)] = measure(mode, env, args)
            print(f"{mode:<5} {name:<9} {results[(mode, name)]:7.2f} images/s")
    for mode in ("train", "infer"):
        print(f"{mode}_images_per_s_default={results[(mode, 'default')]:.3f}")
        print(f"{mode}_images_per_s_tuned={results[(mode, 'tuned')]:.3f}")
        if (mode, "jemalloc") in results:
            print(f"{mode}_images_per_s_jemalloc={results[(mode, 'jemalloc')]:.3f}")
    print(f"infer_alloc_speedup={results[('infer', 'tuned')] / results[('infer', 'default')]:.2f}")
    print(f"alloc_speedup={results[('train', 'tuned')] / results[('train', 'default')]:.2f}")
    figures = {f"{mode}_images_per_s_{name}": round(value, 3) for (mode, name), value in results.items()}
    figures["alloc_speedup"] = round(results[("train", "tuned")] / results[("train", "default")], 2)
    figures["infer_alloc_speedup"] = round(results[("infer", "tuned")] / results[("infer", "default")], 2)
    settings = {"encoder": args.encoder, "size": args.size, "batch": args.batch, "steps": args.steps}
    keep("bench-cpu", figures, settings, args.out or (None if args.smoke else results_path("cpu")))


if __name__ == "__main__":
    main()
