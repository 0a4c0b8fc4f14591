"""Model outputs at the competition's scoring size: probabilities are resized *before* argmax.
Test-time augmentation (horizontal flip, several input scales) averages probabilities, and is
applied identically to out-of-fold and test predictions so its effect is judged on OOF."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def probabilities(model: torch.nn.Module, images: torch.Tensor, size: int, hflip: bool = False,
                  scales: tuple[float, ...] = (1.0,)) -> torch.Tensor:
    """Softmax probabilities N,C,size,size (float32), averaged over the TTA views."""
    base = images.shape[-1]
    total, views = None, 0
    for scale in scales:
        side = max(32, int(round(base * scale / 32)) * 32)  # encoders need multiples of 32
        scaled = _resize(images, side)
        flips = (False, True) if hflip else (False,)
        for flip in flips:
            x = scaled.flip(-1) if flip else scaled
            probs = model(x).float().softmax(dim=1)
            if flip:
                probs = probs.flip(-1)
            probs = _resize(probs, size)
            total = probs if total is None else total + probs
            views += 1
    return total / views


def tta_views(cfg: dict) -> dict:
    """Keyword arguments for ``probabilities`` from the config's ``tta`` section."""
    tta = cfg["tta"]
    if not tta["enabled"]:
        return {}
    return {"hflip": bool(tta["hflip"]), "scales": tuple(float(s) for s in tta["scales"])}


def probs_suffix(cfg: dict) -> str:
    """'', '_tta', '_crf' or '_tta_crf': which post-processing a probability file holds."""
    return ("_tta" if cfg["tta"]["enabled"] else "") + ("_crf" if cfg["crf"]["enabled"] else "")


def probs_name(split: str, cfg: dict) -> str:
    return f"probs_{split}{probs_suffix(cfg)}.npy"


def logits_at(logits: torch.Tensor, size: int) -> torch.Tensor:
    return _resize(logits, size)
