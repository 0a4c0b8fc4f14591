"""bench-fit: fit-ensemble's cost per out-of-fold image, the kit's batched scorer (agreed pixels counted
once, one bincount per chunk of weightings) against the per-weighting loop it replaced (measured in the
same run, on the same images), for 2 and 3 models on the default 0.05 grid (21 and 232 weightings, the
equal mean among them), at 256 px as the scorer scores.

The images are generated: truth of a few blobs over 4 classes, each model's probabilities a softmax of
the truth plus its own noise (in patches, as real models err), right on ~94% of pixels; the printed
share of pixels the models dispute drives the kit's cost (undisputed pixels are counted once). Both ways
must give the same confusion matrices (checked); the figures are seconds per image and their ratio.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from common import keep, results_path
from trashseg.data.classes import NUM_CLASSES
from trashseg.ensembling.fit import confusions, simplex_grid
from trashseg.evaluation.metrics import confusion_matrix, mean_iou, mean_ious


def image(rng: np.random.Generator, models: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(M x C x H x W probabilities, H x W truth) of one generated photo."""
    truth = np.zeros((size, size), dtype=np.int64)
    yy, xx = np.mgrid[:size, :size]
    for cls in rng.choice([1, 2, 6, 8], size=3):
        cy, cx, r = rng.integers(0, size, 2).tolist() + [int(rng.integers(size // 8, size // 3))]
        truth[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = cls
    onehot = torch.from_numpy(np.eye(NUM_CLASSES, dtype=np.float32)[truth].transpose(2, 0, 1))
    # each model errs in patches (noise drawn at 1/16 of the size, smoothed up) and a little per pixel
    coarse = torch.from_numpy(rng.normal(0, 0.8, (models, NUM_CLASSES, size // 16, size // 16)).astype(np.float32))
    patches = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    pixels = torch.from_numpy(rng.normal(0, 0.2, (models, NUM_CLASSES, size, size)).astype(np.float32))
    logits = 2.0 * onehot + patches + pixels
    return logits.softmax(1).half().float(), torch.from_numpy(truth)  # stored as float16, as probs files are


def loop(weights: torch.Tensor, stack: torch.Tensor, target: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The replaced way: every weighting's merge at once, then one confusion matrix each, in a loop."""
    preds = torch.einsum("km,mchw->kchw", weights, stack).argmax(1)
    cms = np.stack([confusion_matrix(target, preds[k]) for k in range(len(weights))])
    return cms, np.array([mean_iou(cm) for cm in cms])


def batched(weights: torch.Tensor, stack: torch.Tensor, target: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    cms = confusions(weights, stack, target)
    return cms, mean_ious(cms)


def measure(models: int, images: int, size: int, step: float) -> dict:
    rng = np.random.default_rng(models)
    data = [image(rng, models, size) for _ in range(images)]
    weights = torch.tensor(simplex_grid(models, step), dtype=torch.float32)
    seconds = {"loop": 0.0, "batched": 0.0}
    same = True
    disputed = right = 0.0  # shares of pixels where the models' first classes differ; where a model is right
    for i, (stack, target) in enumerate(data):
        out = {}
        for way in ("loop", "batched") if i % 2 == 0 else ("batched", "loop"):
            start = time.perf_counter()
            out[way] = (loop if way == "loop" else batched)(weights, stack, target)
            seconds[way] += time.perf_counter() - start
        same &= bool(np.array_equal(out["loop"][0], out["batched"][0]))
        same &= bool(np.allclose(out["loop"][1], out["batched"][1], equal_nan=True))
        top = stack.argmax(1)
        disputed += float((top != top[0]).any(0).float().mean()) / images
        right += float((top == target).float().mean()) / images
    loop_s, kit_s = seconds["loop"] / images, seconds["batched"] / images
    print(
        f"{models} models, {len(weights):>4} weightings: loop {loop_s:.3f} s/image, batched {kit_s:.3f} s/image, "
        f"ratio {loop_s / kit_s:.1f}x (same matrices: {same}; models disagree on {100 * disputed:.0f}% of pixels, "
        f"each is right on {100 * right:.0f}%)"
    )
    print(f"fit_speedup_{models}={loop_s / kit_s:.2f}")
    return {
        "weightings": len(weights),
        "loop_s_per_image": round(loop_s, 4),
        "batched_s_per_image": round(kit_s, 4),
        "speedup": round(loop_s / kit_s, 2),
        "identical": same,
        "disputed_share": round(disputed, 3),
        "model_pixel_accuracy": round(right, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--step", type=float, default=0.05)
    parser.add_argument("--smoke", action="store_true", help="2 images at 64 px, step 0.25: that it runs")
    parser.add_argument("--out", type=Path, default=None, help="result JSON (default bench/results/fit.json)")
    args = parser.parse_args()
    if args.smoke:
        args.images, args.size, args.step = 2, 64, 0.25
    figures = {f"models_{m}": measure(m, args.images, args.size, args.step) for m in (2, 3)}
    if not all(f["identical"] for f in figures.values()):
        raise SystemExit("bench-fit: the batched scorer's confusion matrices differ from the loop's")
    settings = {"images": args.images, "size": args.size, "step": args.step, "threads": torch.get_num_threads()}
    keep("bench-fit", figures, settings, None if args.smoke else args.out or results_path("fit"))


if __name__ == "__main__":
    main()
