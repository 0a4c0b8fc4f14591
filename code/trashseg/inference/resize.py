"""Probabilities at the scoring size, one way for every scoring path (training validation, eval, OOF,
test, imported outputs): resized (bilinear) *before* the argmax, never argmax-then-nearest, so the
same checkpoint scores the same wherever it is scored."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of N,C,H,W to size x size (no-op when already there)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def scoring_probs(logits: torch.Tensor, size: int) -> torch.Tensor:
    """Model output -> softmax probabilities (float32) at the scoring size."""
    return resize(logits.float().softmax(dim=1), size)
