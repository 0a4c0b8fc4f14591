"""The competition's scorer: mIoU from one confusion matrix over the whole set, plus the
per-image mean, per-class IoU and pixel accuracy (the two mIoUs differ; both are reported)."""

from __future__ import annotations

import numpy as np
import torch

from trashseg.data.classes import CLASSES, IGNORE_INDEX, NUM_CLASSES


def confusion_matrix(target, pred, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Rows = truth, columns = prediction; pixels labelled IGNORE_INDEX are skipped."""
    t = torch.as_tensor(target).reshape(-1).long()
    p = torch.as_tensor(pred).reshape(-1).long()
    keep = (t >= 0) & (t < num_classes) & (t != IGNORE_INDEX)
    counts = torch.bincount(t[keep] * num_classes + p[keep], minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes).cpu().numpy().astype(np.int64)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """IoU per class; NaN where the class is absent from both truth and prediction. ``cm`` may be a
    stack (... x C x C): then one row of IoUs a matrix."""
    cm = np.asarray(cm)
    inter = np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float64)
    union = cm.sum(-2) + cm.sum(-1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def mean_iou(cm: np.ndarray) -> float:
    ious = iou_per_class(cm)
    return float(np.nanmean(ious)) if np.isfinite(ious).any() else float("nan")


def mean_ious(cms: np.ndarray) -> np.ndarray:
    """mean_iou of each matrix of a K x C x C stack (NaN where no class is present)."""
    ious = iou_per_class(cms)
    present = np.isfinite(ious).any(-1)
    out = np.full(len(ious), np.nan)
    out[present] = np.nanmean(ious[present], axis=-1)
    return out


class Scorer:
    """Accumulates both mIoU variants over batches of (target, prediction) class maps."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        self.num_classes = num_classes
        self.cm = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.per_image: list[float] = []

    def update(self, target, pred) -> None:
        target = torch.as_tensor(target)
        pred = torch.as_tensor(pred)
        if target.dim() == 2:
            target, pred = target[None], pred[None]
        for t, p in zip(target, pred):
            cm = confusion_matrix(t, p, self.num_classes)
            self.cm += cm
            self.per_image.append(mean_iou(cm))

    def result(self) -> dict:
        ious = iou_per_class(self.cm)
        total = self.cm.sum()
        per_image = [v for v in self.per_image if np.isfinite(v)]
        return {
            "miou": mean_iou(self.cm),
            "miou_per_image": float(np.mean(per_image)) if per_image else float("nan"),
            "pixel_accuracy": float(np.diag(self.cm).sum() / total) if total else float("nan"),
            "per_class_iou": {
                name: (None if np.isnan(v) else float(v)) for name, v in zip(CLASSES[: self.num_classes], ious)
            },
            "images": len(self.per_image),
            "predicted_not_in_truth": predicted_not_in_truth(self.cm),
            "confusion_matrix": self.cm.tolist(),  # rows = truth, columns = prediction
        }


def predicted_not_in_truth(cm: np.ndarray) -> list[str]:
    """Classes with no truth pixel but some predicted ones: each scores IoU 0 and so pulls the
    dataset mIoU down by a whole class, however few pixels were predicted (a set holding only a
    few of the 11 classes shows this most)."""
    cm = np.asarray(cm)
    return [CLASSES[c] for c in range(len(cm)) if cm[c].sum() == 0 and cm[:, c].sum() > 0]


def class_note(name: str, result: dict) -> str:
    return "  (not in truth; predicted pixels only)" if name in result.get("predicted_not_in_truth", ()) else ""


def format_table(result: dict) -> str:
    """Per-class IoU table plus both mIoUs, for the terminal."""
    lines = [f"{'class':<14} {'IoU':>7}"]
    for name, v in result["per_class_iou"].items():
        lines.append(f"{name:<14} {'   n/a' if v is None else f'{v:7.4f}'}{class_note(name, result)}")
    lines.append(f"{'mIoU (dataset)':<14} {result['miou']:7.4f}")
    lines.append(f"{'mIoU (image)':<14} {result['miou_per_image']:7.4f}")
    lines.append(f"{'pixel acc':<14} {result['pixel_accuracy']:7.4f}")
    return "\n".join(lines)
