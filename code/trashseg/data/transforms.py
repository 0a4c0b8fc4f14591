"""Albumentations pipelines built from the config, so the recipe lives in YAML, not in code.

Two kit names stand for size steps that depend on ``train.img_size``: ``Resize: {}`` (to img_size)
and ``ScaleCrop: {scale: [0.5, 2.0]}``, multi-scale training: resize to img_size x a random factor
in that range, pad with ignored pixels where smaller, crop img_size (albumentations' RandomScale,
PadIfNeeded, RandomCrop). Validation and inference always see img_size."""

from __future__ import annotations

import albumentations as A
from albumentations.pytorch import ToTensorV2

from trashseg.data.classes import IGNORE_INDEX
from trashseg.errors import TrashsegError
from trashseg.settings import Settings


def _build_one(spec, img_size: int):
    if not isinstance(spec, dict) or len(spec) != 1:
        raise TrashsegError(f"augment entry {spec!r}: expected a single {{TransformName: {{args}}}} mapping")
    ((name, kwargs),) = spec.items()
    kwargs = dict(kwargs or {})
    if name == "Resize":
        return A.Resize(img_size, img_size, **kwargs)
    if name == "ScaleCrop":
        return scale_crop(img_size, **kwargs)
    if name in ("OneOf", "SomeOf", "Sequential"):
        children = [_build_one(s, img_size) for s in kwargs.pop("transforms", [])]
        return getattr(A, name)(children, **kwargs)
    cls = getattr(A, name, None)
    if cls is None:
        raise TrashsegError(f"augment: albumentations has no transform {name!r}")
    try:
        return cls(**kwargs)
    except Exception as exc:
        detail = "; ".join(
            line.strip() for line in str(exc).splitlines() if line.strip() and "errors.pydantic" not in line
        )
        raise TrashsegError(f"augment: {name}({kwargs}) rejected: {detail}") from None


def scale_crop(img_size: int, scale=(0.5, 2.0)) -> A.Sequential:
    import cv2

    try:
        low, high = (float(v) for v in scale)
    except (TypeError, ValueError):
        raise TrashsegError(f"augment: ScaleCrop scale={scale!r}: give [low, high], e.g. [0.5, 2.0]") from None
    if not 0 < low <= high:
        raise TrashsegError(f"augment: ScaleCrop scale={scale!r}: need 0 < low <= high")
    return A.Sequential(
        [
            A.Resize(img_size, img_size),
            A.RandomScale(scale_limit=(low - 1, high - 1), p=1.0),
            A.PadIfNeeded(img_size, img_size, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=IGNORE_INDEX),
            A.RandomCrop(img_size, img_size),
        ],
        p=1.0,
    )


def _sizes(step) -> bool:
    return isinstance(step, A.Resize) or (
        isinstance(step, A.Sequential) and any(isinstance(t, A.RandomCrop) for t in step)
    )


def _tail(cfg: Settings) -> list:
    norm = cfg.augment.normalize
    return [A.Normalize(mean=norm.mean, std=norm.std), ToTensorV2()]


def train_transform(cfg: Settings) -> A.Compose:
    size = cfg.train.img_size
    steps = [_build_one(s, size) for s in cfg.augment.train]
    if not any(_sizes(t) for t in steps):
        steps.append(A.Resize(size, size))
    return A.Compose(steps + _tail(cfg))


def eval_transform(cfg: Settings) -> A.Compose:
    size = cfg.train.img_size
    return A.Compose([A.Resize(size, size)] + _tail(cfg))
