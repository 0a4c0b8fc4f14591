"""bench-ensemble: peak memory and speed of code/ensemble.py for 2 models x 200 and x 800 test images,
against the original's way (whole arrays in memory, one DataFrame) in the same run.

Probability files are generated (random softmax-like rows, 256x256, float16); each run is a child
process whose peak RSS comes from the kernel (wait4), so the figures include the interpreter and
the (small) bench process it was forked from.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import ROOT, keep, results_path, run_measured
from trashseg.data.classes import CLASSES
from trashseg.inference.probs import ProbsWriter


def make_files(tmp: Path, n: int, models: int = 2) -> tuple[list[Path], Path]:
    rng = np.random.default_rng(n)
    ids = [f"batch_{i % 4 + 1:02d}/{i:04d}.jpg" for i in range(n)]
    test_json = tmp / f"test_{n}.json"
    test_json.write_text(
        json.dumps({"images": [{"id": i, "file_name": f, "width": 512, "height": 512} for i, f in enumerate(ids)]})
    )
    block = rng.random((16, len(CLASSES), 256, 256), dtype=np.float32)
    block = (block / block.sum(1, keepdims=True)).astype(np.float16)
    paths = []
    for m in range(models):
        path = tmp / f"model{m}_{n}.npy"
        writer = ProbsWriter(
            path, n, len(CLASSES), 256, {"image_ids": ids, "resolution": 256, "classes": list(CLASSES)}
        )
        for i in range(n):
            writer.write(i, block[(i + m) % len(block)])
        writer.close()
        paths.append(path)
    return paths, test_json


def generate_in_child(tmp: Path, n: int) -> tuple[list[Path], Path]:
    """Write the files from a separate process: a forked child's peak RSS starts from the parent's
    size, so the parent must stay small for the children's figures to be their own."""
    import subprocess

    subprocess.run([sys.executable, __file__, "--generate", str(tmp), str(n)], check=True)
    return [tmp / f"model{m}_{n}.npy" for m in range(2)], tmp / f"test_{n}.json"


def main():
    if sys.argv[1:2] == ["--generate"]:
        make_files(Path(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 800])
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="sizes 8 and 16: that the bench runs, not its figures")
    parser.add_argument("--out", type=Path, default=None, help="result JSON (default bench/results/ensemble.json)")
    args = parser.parse_args()
    if args.smoke:
        args.sizes = [8, 16]
    figures, identical = {}, {}
    with tempfile.TemporaryDirectory(dir=ROOT / "cache" if (ROOT / "cache").is_dir() else None) as tmp:
        tmp = Path(tmp)
        for n in args.sizes:
            probs, test_json = generate_in_child(tmp, n)
            kit_cmd = [
                sys.executable,
                str(ROOT / "code/ensemble.py"),
                "--probs",
                " ".join(map(str, probs)),
                "--test-json",
                str(test_json),
                "--out",
                str(tmp / "kit.csv"),
                "--no-validate",
            ]
            seconds, rss, _ = run_measured(kit_cmd)
            figures[f"peak_rss_mb_{n}"] = rss
            figures[f"images_per_s_{n}"] = n / seconds
            print(f"kit ensemble.py      {n:4d} images x 2 models: peak RSS {rss:7.0f} MB, {n / seconds:6.1f} images/s")
            if not args.no_baseline:
                base_cmd = [
                    sys.executable,
                    str(ROOT / "bench/ensemble_baseline.py"),
                    str(tmp / "base.csv"),
                    str(test_json),
                    *map(str, probs),
                ]
                b_seconds, b_rss, _ = run_measured(base_cmd)
                same = filecmp.cmp(tmp / "kit.csv", tmp / "base.csv", shallow=False)  # streams
                figures[f"baseline_peak_rss_mb_{n}"] = b_rss
                figures[f"baseline_images_per_s_{n}"] = n / b_seconds
                identical[n] = same
                print(
                    f"original-style       {n:4d} images x 2 models: peak RSS {b_rss:7.0f} MB, "
                    f"{n / b_seconds:6.1f} images/s  (identical CSV: {same})"
                )
            for p in probs:
                p.unlink()
    lo, hi = args.sizes[0], args.sizes[-1]
    for key, value in figures.items():
        print(f"{key}={value:.1f}")
    print(f"rss_growth_{lo}_to_{hi}={figures[f'peak_rss_mb_{hi}'] / figures[f'peak_rss_mb_{lo}']:.3f}")
    if not args.no_baseline:
        print(f"baseline_over_kit_rss_{hi}={figures[f'baseline_peak_rss_mb_{hi}'] / figures[f'peak_rss_mb_{hi}']:.2f}")
    kept = {k: round(v, 1) for k, v in figures.items()}
    kept.update({f"identical_csv_{n}": same for n, same in identical.items()})
    settings = {"sizes": args.sizes, "models": 2, "resolution": 256}
    keep("bench-ensemble", kept, settings, args.out or (None if args.smoke else results_path("ensemble")))


if __name__ == "__main__":
    main()
