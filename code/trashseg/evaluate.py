"""Score a model on a loader with the competition's scorer (and the mean loss when asked)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .metrics import Scorer
from .predict import logits_at


@torch.no_grad()
def evaluate(model, loader, device, score_size: int, loss_fn=None, progress=None) -> dict:
    """Dataset-level and per-image mIoU at ``score_size``; truth is nearest-resized to it."""
    model.eval()
    scorer = Scorer()
    loss_sum, n = 0.0, 0
    for batch in (progress(loader) if progress else loader):
        images = batch["image"].to(device, non_blocking=True)
        target = batch["mask"].to(device, non_blocking=True)
        logits = logits_at(model(images).float(), score_size)
        if target.shape[-1] != score_size or target.shape[-2] != score_size:
            target = F.interpolate(target[:, None].float(), size=(score_size, score_size),
                                   mode="nearest")[:, 0].long()
        if loss_fn is not None:
            loss_sum += loss_fn(logits, target).item() * images.shape[0]
            n += images.shape[0]
        scorer.update(target.cpu(), logits.argmax(1).cpu())
    result = scorer.result()
    if loss_fn is not None:
        result["loss"] = loss_sum / max(n, 1)
    return result
