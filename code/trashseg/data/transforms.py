"""Albumentations pipelines built from the config, so the recipe lives in YAML, not in code."""
from __future__ import annotations

import albumentations as A
from albumentations.pytorch import ToTensorV2

from trashseg.errors import TrashsegError


def _build_one(spec, img_size: int):
    if not isinstance(spec, dict) or len(spec) != 1:
        raise TrashsegError(f"augment entry {spec!r}: expected a single {{TransformName: {{args}}}} mapping")
    (name, kwargs), = spec.items()
    kwargs = dict(kwargs or {})
    if name == "Resize":
        return A.Resize(img_size, img_size, **kwargs)
    if name in ("OneOf", "SomeOf", "Sequential"):
        children = [_build_one(s, img_size) for s in kwargs.pop("transforms", [])]
        return getattr(A, name)(children, **kwargs)
    cls = getattr(A, name, None)
    if cls is None:
        raise TrashsegError(f"augment: albumentations has no transform {name!r}")
    try:
        return cls(**kwargs)
    except Exception as exc:
        detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip() and "errors.pydantic" not in line)
        raise TrashsegError(f"augment: {name}({kwargs}) rejected: {detail}") from None


def _tail(cfg: dict) -> list:
    norm = cfg["augment"]["normalize"]
    return [A.Normalize(mean=norm["mean"], std=norm["std"]), ToTensorV2()]


def train_transform(cfg: dict) -> A.Compose:
    size = int(cfg["train"]["img_size"])
    steps = [_build_one(s, size) for s in cfg["augment"]["train"]]
    if not any(isinstance(t, A.Resize) for t in steps):
        steps.append(A.Resize(size, size))
    return A.Compose(steps + _tail(cfg))


def eval_transform(cfg: dict) -> A.Compose:
    size = int(cfg["train"]["img_size"])
    return A.Compose([A.Resize(size, size)] + _tail(cfg))
