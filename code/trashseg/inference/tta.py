"""Test-time augmentation: the model's probabilities averaged over a horizontal flip and several
input scales, each brought to the scoring size (inference/resize.py) before they are averaged. TTA
is applied identically to out-of-fold and test predictions, so its effect is judged on OOF."""

from __future__ import annotations

from collections.abc import Callable

import torch

from trashseg.inference.resize import resize, scoring_probs


def probabilities(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    size: int,
    hflip: bool = False,
    scales: tuple[float, ...] = (1.0,),
    multiple: int = 32,
) -> torch.Tensor:
    """Softmax probabilities N,C,size,size (float32), averaged over the TTA views. Scaled inputs
    are rounded to ``multiple`` (what the encoder's strides need)."""
    base = images.shape[-1]
    total, views = None, 0
    for scale in scales:
        side = max(multiple, int(round(base * scale / multiple)) * multiple)
        scaled = resize(images, side)
        for flip in (False, True) if hflip else (False,):
            x = scaled.flip(-1) if flip else scaled
            probs = scoring_probs(model(x), size)
            if flip:
                probs = probs.flip(-1)
            total = probs if total is None else total + probs
            views += 1
    return total / views
