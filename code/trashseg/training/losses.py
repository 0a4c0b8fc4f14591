"""Training losses from SMP: default 0.6 x soft cross-entropy + 0.4 x (1 - Dice)."""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
import torch.nn as nn
import torch.nn.functional as F

from trashseg.data.classes import IGNORE_INDEX
from trashseg.errors import TrashsegError


class WeightedSum(nn.Module):
    """Sum of weighted loss terms; all take (logits N,C,H,W, target N,H,W int64)."""

    def __init__(self, terms: list[tuple[float, nn.Module]]):
        super().__init__()
        self.weights = [w for w, _ in terms]
        self.terms = nn.ModuleList([t for _, t in terms])

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        return sum(w * t(logits, target) for w, t in zip(self.weights, self.terms))


class OneHotBCE(nn.Module):
    """Binary cross-entropy of every class channel against the one-hot target, ignoring 255."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = target != IGNORE_INDEX
        onehot = F.one_hot(target.clamp(max=logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2)
        loss = F.binary_cross_entropy_with_logits(logits, onehot.to(logits.dtype), reduction="none")
        weight = valid.unsqueeze(1).to(logits.dtype)
        return (loss * weight).sum() / (weight.sum() * logits.shape[1]).clamp(min=1)


def build_loss(cfg: dict) -> nn.Module:
    lc = cfg["loss"]
    dice = smp.losses.DiceLoss(mode="multiclass", from_logits=True, ignore_index=IGNORE_INDEX)
    if lc["name"] == "ce_dice":
        first = smp.losses.SoftCrossEntropyLoss(smooth_factor=lc["smoothing"], ignore_index=IGNORE_INDEX)
    elif lc["name"] == "bce_dice":
        first = OneHotBCE()
    else:
        raise TrashsegError(f"loss.name {lc['name']!r}: choose ce_dice or bce_dice")
    return WeightedSum([(float(lc["ce_weight"]), first), (float(lc["dice_weight"]), dice)])
