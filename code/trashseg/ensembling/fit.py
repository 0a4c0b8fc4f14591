"""`make fit-ensemble`: ensemble weights that maximise out-of-fold mIoU, searched on the simplex.

One streaming pass over the OOF images scores every candidate weighting at once, so the search
never holds more than one image per model in memory. Each image's confusion matrices, one per
weighting, come from a single bincount over chunks of weightings: the per-weighting loop this
replaced cost ~1.9 s an image for three models on 2 cores (`make bench-fit` measures both). The
weights are chosen by the dataset mIoU (the competition's scorer) or, with ``--objective
per-image``, by the per-image mean that the kit's docs read. The test set is never looked at.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from tqdm import tqdm

from trashseg.data.classes import IGNORE_INDEX, NUM_CLASSES
from trashseg.data.loaders import load_set
from trashseg.evaluation.metrics import iou_per_class, mean_ious
from trashseg.evaluation.oof import Truth, covered, index_rows, oof_readers
from trashseg.runs import Layout, data_dir
from trashseg.settings import Settings

CHUNK_PIXELS = 1 << 23  # merged scores held at once (weightings x classes x pixels): ~32 MiB of float32


def simplex_grid(n: int, step: float) -> list[tuple[float, ...]]:
    """All weightings of n models in multiples of ``step`` summing to 1, plus the equal mean."""
    k = int(round(1 / step))
    grid = {tuple(c / k for c in combo) for combo in itertools.product(range(k + 1), repeat=n) if sum(combo) == k}
    grid.add(tuple([1.0 / n] * n))
    return sorted(grid, reverse=True)


def confusions(weights: torch.Tensor, stack: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """K x C x C confusion matrices (rows = truth) of the K weightings' merges of one image.

    ``weights`` is K x M (non-negative, each row summing to 1), ``stack`` the M models' C x H x W
    probabilities, ``target`` H x W class ids; pixels labelled IGNORE_INDEX or outside the classes are
    skipped, as the scorer does. A pixel where every model puts the same class strictly first is that
    class under every weighting, so it is counted once for all; only the pixels the models dispute are
    merged K times (the bulk of the cost, in chunks of weightings)."""
    classes = stack.shape[1]
    t = target.reshape(-1).long()
    keep = (t >= 0) & (t < classes) & (t != IGNORE_INDEX)
    t = t[keep]
    flat = stack.reshape(stack.shape[0], classes, -1)[:, :, keep]  # M x C x P
    first, second = flat.topk(2, dim=1).values.unbind(1)  # M x P each
    top = flat.max(1).indices  # M x P (the first best class, as argmax; ~6x faster on CPU over dim 1)
    settled = ((top == top[0]).all(0) & (first > second).all(0)) if classes > 1 else torch.ones_like(t, dtype=bool)
    cells = classes * classes
    same = torch.bincount(t[settled] * classes + top[0][settled], minlength=cells)
    t, flat = t[~settled], flat[:, :, ~settled]
    if t.numel():
        # a class can win a disputed pixel under some weighting only if some model gives it at least the
        # score the pixel's best class is sure of under every weighting (its lowest over the models)
        floor = flat.min(0).values.max(0).values  # P
        live = (flat.max(0).values >= floor).any(1).nonzero().squeeze(1)  # the classes that can win somewhere
        flat = flat[:, live]
    else:
        live = torch.arange(classes)
    out = torch.empty(len(weights) * cells, dtype=torch.int64)
    chunk = max(1, CHUNK_PIXELS // max(1, len(live) * t.numel()))
    for start in range(0, len(weights), chunk):
        w = weights[start : start + chunk]
        pred = live[torch.einsum("km,mcp->kcp", w, flat).max(1).indices]  # k x P
        index = torch.arange(len(w)).unsqueeze(1) * cells + (t * classes).unsqueeze(0) + pred
        out[start * cells : (start + len(w)) * cells] = torch.bincount(index.reshape(-1), minlength=len(w) * cells)
    return (out.reshape(len(weights), cells) + same).reshape(len(weights), classes, classes).numpy()


def fit(cfg: Settings, models: list[str], step: float, train_all: str, by_image: bool = False) -> dict:
    """The grid's best weights by the dataset mIoU, or by the per-image mean when ``by_image``."""
    layout = Layout.of(cfg)
    for m in models:
        layout.require_fold_probs(m, "valid")
    truth = Truth(cfg, load_set(cfg, data_dir(cfg) / train_all, quiet=True), cfg.eval.score_size)
    per_model = {m: index_rows(oof_readers(layout, m)) for m in models}
    names = covered(truth, {n: 1 for n in set.intersection(*(set(r) for r in per_model.values()))}, "fit-ensemble")
    candidates = simplex_grid(len(models), step)
    weights = torch.tensor(candidates, dtype=torch.float32)  # K x M
    cms = np.zeros((len(candidates), NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    per_image = np.zeros(len(candidates))
    scored = 0  # images with at least one class in truth or prediction (the scorer skips the rest)
    for name in tqdm(names, desc="fit-ensemble", leave=False):
        stack = torch.stack(
            [torch.from_numpy(per_model[m][name][0].row(per_model[m][name][1]).astype(np.float32)) for m in models]
        )  # M x C x H x W
        image = confusions(weights, stack, torch.from_numpy(truth(name)))
        cms += image
        ious = mean_ious(image)
        if np.isfinite(ious).all():
            per_image += ious
            scored += 1
    mious = mean_ious(cms)
    per_image /= max(1, scored)
    best = int(np.nanargmax(per_image if by_image else mious))

    def summary(k: int) -> dict:
        return {
            "weights": dict(zip(models, candidates[k])),
            "oof_miou": float(mious[k]),
            "oof_miou_per_image": float(per_image[k]),
        }

    one_hot = {
        m: summary(candidates.index(tuple(1.0 if j == i else 0.0 for j in range(len(models)))))
        for i, m in enumerate(models)
    }
    equal = summary(candidates.index(tuple([1.0 / len(models)] * len(models))))
    return {
        "models": models,
        "post": layout.post.strip("_") or "none",
        "images": len(names),
        "step": step,
        "objective": "per-image" if by_image else "dataset",
        "per_model": one_hot,
        "equal_mean": equal,
        "fitted": summary(best),
        "fitted_per_class_iou": [None if np.isnan(v) else float(v) for v in iou_per_class(cms[best])],
    }
