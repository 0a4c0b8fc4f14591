"""Model outputs at the competition's scoring size: probabilities are resized *before* argmax."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def probabilities(model: torch.nn.Module, images: torch.Tensor, size: int) -> torch.Tensor:
    """Softmax probabilities N,C,size,size (float32) from images at the model's input size."""
    logits = model(images).float()
    probs = logits.softmax(dim=1)
    if probs.shape[-1] != size or probs.shape[-2] != size:
        probs = F.interpolate(probs, size=(size, size), mode="bilinear", align_corners=False)
    return probs


def logits_at(logits: torch.Tensor, size: int) -> torch.Tensor:
    if logits.shape[-1] == size and logits.shape[-2] == size:
        return logits
    return F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)
