"""`make fit-ensemble`: ensemble weights that maximise out-of-fold mIoU, searched on the simplex.

One streaming pass over the OOF images scores every candidate weighting at once (one confusion
matrix each), so the search never holds more than one image per model in memory. The test set is
never looked at. The weights file is what `make ensemble` then uses.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from tqdm import tqdm

from trashseg.data.classes import NUM_CLASSES
from trashseg.data.loaders import load_set
from trashseg.evaluation.metrics import confusion_matrix, iou_per_class, mean_iou
from trashseg.evaluation.oof import Truth, covered, index_rows, oof_readers
from trashseg.runs import Layout, data_dir
from trashseg.settings import Settings


def simplex_grid(n: int, step: float) -> list[tuple[float, ...]]:
    """All weightings of n models in multiples of ``step`` summing to 1, plus the equal mean."""
    k = int(round(1 / step))
    grid = {tuple(c / k for c in combo) for combo in itertools.product(range(k + 1), repeat=n) if sum(combo) == k}
    grid.add(tuple([1.0 / n] * n))
    return sorted(grid, reverse=True)


def fit(cfg: Settings, models: list[str], step: float, train_all: str) -> dict:
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
    for name in tqdm(names, desc="fit-ensemble", leave=False):
        stack = torch.stack(
            [torch.from_numpy(per_model[m][name][0].row(per_model[m][name][1]).astype(np.float32)) for m in models]
        )  # M x C x H x W
        preds = torch.einsum("km,mchw->kchw", weights, stack).argmax(1)  # K x H x W
        target = torch.from_numpy(truth(name))
        for k in range(len(candidates)):
            cm = confusion_matrix(target, preds[k])
            cms[k] += cm
            per_image[k] += mean_iou(cm)
    mious = np.array([mean_iou(cm) for cm in cms])
    best = int(np.nanargmax(mious))

    def summary(k: int) -> dict:
        return {
            "weights": dict(zip(models, candidates[k])),
            "oof_miou": float(mious[k]),
            "oof_miou_per_image": float(per_image[k] / len(names)),
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
        "per_model": one_hot,
        "equal_mean": equal,
        "fitted": summary(best),
        "fitted_per_class_iou": [None if np.isnan(v) else float(v) for v in iou_per_class(cms[best])],
    }
