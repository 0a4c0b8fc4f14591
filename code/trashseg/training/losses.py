"""Training losses, a weighted sum of SMP's terms: the original 0.6 x soft cross-entropy +
0.4 x (1 - Dice), plus optional Lovasz-softmax (a direct surrogate of IoU) and focal terms.

Class weights (``loss.class_weights``) weight the cross-entropy term: a list of 11 numbers, or
``auto`` = median-frequency balancing over the training set's pixels (median class frequency /
class frequency, at most ``class_weight_cap``; classes absent from the set keep 1, as they never
appear as a target). With class weights the cross-entropy is torch's own (which takes weights and
label smoothing); without, it stays SMP's SoftCrossEntropyLoss of the original recipe.

Soft pseudo-labels (``pseudo.soft``) reach the loss painted as class + 16 x weight level (data/masks.py):
the sum reads each pixel's class and weight back, gives every term the classes and weights the
cross-entropy term's pixels by their weight (a weighted mean over the pixels not ignored). A batch of
true labels only has no level above 0 and runs the terms as before.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from trashseg.data.classes import CLASSES, IGNORE_INDEX
from trashseg.modeling.smp_lib import smp
from trashseg.settings import Settings


def split_target(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(classes, per-pixel weights) of a painted target; weights None when no pixel is a soft label."""
    from trashseg.data.masks import WEIGHT_SHIFT, level_weight

    soft = (target != IGNORE_INDEX) & (target >= WEIGHT_SHIFT)
    if not bool(soft.any()):
        return target, None
    level = torch.where(soft, target // WEIGHT_SHIFT, torch.zeros_like(target))
    classes = torch.where(soft, target % WEIGHT_SHIFT, target)
    return classes, level_weight(level.float())


def pixel_weighted_ce(logits, target, weight, class_weights=None, smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy of each pixel times its weight, averaged over the pixels not ignored."""
    per_pixel = F.cross_entropy(
        logits,
        target,
        weight=None if class_weights is None else class_weights.to(logits.device),
        ignore_index=IGNORE_INDEX,
        reduction="none",
        label_smoothing=smoothing,
    )
    valid = (target != IGNORE_INDEX).float()
    return (per_pixel * weight * valid).sum() / valid.sum().clamp(min=1)


class WeightedSum(nn.Module):
    """Sum of weighted loss terms; all take (logits N,C,H,W, target N,H,W int64). ``ce`` is the index
    of the cross-entropy term, the one soft pseudo-labels' weights apply to (None: no such term)."""

    def __init__(self, terms: list[tuple[float, nn.Module]], ce: int | None = None, smoothing: float = 0.0):
        super().__init__()
        self.weights = [w for w, _ in terms]
        self.terms = nn.ModuleList([t for _, t in terms])
        self.ce, self.smoothing = ce, smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        target, pixel_weight = split_target(target)
        total = 0.0
        for i, (w, term) in enumerate(zip(self.weights, self.terms)):
            if pixel_weight is not None and i == self.ce:
                total = total + w * pixel_weighted_ce(
                    logits, target, pixel_weight, getattr(term, "class_weights", None), self.smoothing
                )
            else:
                total = total + w * term(logits, target)
        return total


class OneHotBCE(nn.Module):
    """Binary cross-entropy of every class channel against the one-hot target, ignoring 255;
    ``class_weights`` weight each channel."""

    def __init__(self, class_weights: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = target != IGNORE_INDEX
        onehot = F.one_hot(target.clamp(max=logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2)
        loss = F.binary_cross_entropy_with_logits(logits, onehot.to(logits.dtype), reduction="none")
        if self.class_weights is not None:
            loss = loss * self.class_weights.to(loss.device).view(1, -1, 1, 1)
        weight = valid.unsqueeze(1).to(logits.dtype)
        return (loss * weight).sum() / (weight.sum() * logits.shape[1]).clamp(min=1)


class WeightedCE(nn.Module):
    """torch's cross-entropy with class weights, label smoothing and the ignore index."""

    def __init__(self, class_weights: torch.Tensor, smoothing: float):
        super().__init__()
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.smoothing = smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits,
            target,
            weight=self.class_weights.to(logits.device),
            ignore_index=IGNORE_INDEX,
            label_smoothing=self.smoothing,
        )


def pixel_counts(cfg: Settings, cs) -> np.ndarray:
    """Pixels of each class over a COCO set's masks (from the mask cache; 255 not counted)."""
    from trashseg.data.masks import WEIGHT_SHIFT, MaskCache, read_mask

    counts = np.zeros(256, dtype=np.int64)
    for path in MaskCache(cfg.data.cache_dir).build(cs, progress=False):
        counts += np.bincount(read_mask(path).ravel(), minlength=256)
    classes = counts[:WEIGHT_SHIFT].copy()
    for value in range(WEIGHT_SHIFT, IGNORE_INDEX):  # soft pseudo-labels: their class is the lower bits
        classes[value % WEIGHT_SHIFT] += counts[value]
    return classes[: len(CLASSES)]


def auto_class_weights(counts: np.ndarray, cap: float) -> np.ndarray:
    """Median-frequency balancing: median(present frequencies) / frequency, capped; absent -> 1."""
    counts = np.asarray(counts, dtype=np.float64)
    weights = np.ones(len(counts))
    present = counts > 0
    if present.any():
        freq = counts / counts.sum()
        weights[present] = np.minimum(cap, np.median(freq[present]) / freq[present])
    return weights


def class_weights(cfg: Settings, train_set=None, quiet: bool = False) -> torch.Tensor | None:
    lc = cfg.loss
    spec = lc.class_weights
    if spec is None:
        return None
    if spec == "auto":
        if train_set is None:
            return None  # no training set (a loss built to score validation only): unweighted
        weights = auto_class_weights(pixel_counts(cfg, train_set), lc.class_weight_cap)
        if not quiet:
            shown = ", ".join(f"{name} {w:.2f}" for name, w in zip(CLASSES, weights))
            print(f"class weights (auto, cap {lc.class_weight_cap:g}): {shown}")
    else:
        weights = np.asarray(spec, dtype=np.float64)
    return torch.tensor(weights, dtype=torch.float32)


def build_loss(cfg: Settings, train_set=None, quiet: bool = False) -> nn.Module:
    lc = cfg.loss
    weights = class_weights(cfg, train_set, quiet)
    terms, ce = [], None
    if lc.ce_weight > 0:
        ce = None if lc.name == "bce_dice" else 0  # soft pseudo-labels weight the cross-entropy, not BCE
        if lc.name == "bce_dice":
            first = OneHotBCE(weights)
        elif weights is not None:
            first = WeightedCE(weights, lc.smoothing)
        else:
            first = smp.losses.SoftCrossEntropyLoss(smooth_factor=lc.smoothing, ignore_index=IGNORE_INDEX)
        terms.append((lc.ce_weight, first))
    if lc.dice_weight > 0:
        dice = smp.losses.DiceLoss(mode="multiclass", from_logits=True, ignore_index=IGNORE_INDEX)
        terms.append((lc.dice_weight, dice))
    if lc.lovasz_weight > 0:
        terms.append((lc.lovasz_weight, smp.losses.LovaszLoss(mode="multiclass", ignore_index=IGNORE_INDEX)))
    if lc.focal_weight > 0:
        focal = smp.losses.FocalLoss(mode="multiclass", gamma=lc.focal_gamma, ignore_index=IGNORE_INDEX)
        terms.append((lc.focal_weight, focal))
    return WeightedSum(terms, ce, lc.smoothing)
