"""Exponential moving average of the weights (timm's ModelEmaV3), updated after every optimizer step.

With ``ema.enabled`` the averaged copy is what validation scores, what best.pt holds and so what
inference, OOF and the ensemble use; last.pt keeps both the raw weights (to go on training) and the
average. The decay warms up (timm's rule, power 3/4) so that a run of a few hundred steps averages a
short recent window instead of the random init: decay(step) = min(decay, 1 - (1 + step) ** -0.75).
"""

from __future__ import annotations

import torch

from trashseg.settings import Settings


def build_ema(model: torch.nn.Module, cfg: Settings):
    """The EMA holder for ``model`` (unwrapped, on its device), or None when off."""
    ec = cfg.ema
    if not ec.enabled:
        return None
    from timm.utils import ModelEmaV3

    return ModelEmaV3(model, decay=ec.decay, use_warmup=ec.warmup, warmup_power=3 / 4)
