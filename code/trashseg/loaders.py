"""COCO file -> items -> DataLoader, the same way for training, validation, evaluation and test."""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from .coco import CocoSet, load_coco
from .dataset import SegDataset, make_items
from .masks import MaskCache
from .seeding import seed_worker


def load_set(cfg: dict, json_path: Path, image_root: Path | None = None) -> CocoSet:
    cs = load_coco(json_path, image_root if image_root is not None else cfg["data"]["data_dir"],
                   cfg["data"]["class_map"])
    if cs.problems:
        print(f"warning: {json_path}: {len(cs.problems)} annotation problem(s) repaired; first: {cs.problems[0]}"
              " (run `make check-data` for all)")
    return cs


def make_loader(cfg: dict, cs: CocoSet, transform, *, with_masks: bool, train: bool = False,
                batch_size: int | None = None, generator: torch.Generator | None = None,
                mask_size: int | None = None) -> DataLoader:
    cache = MaskCache(cfg["data"]["cache_dir"]) if with_masks else None
    dataset = SegDataset(make_items(cs, cache), transform, mask_size=mask_size)
    workers = int(cfg["data"]["num_workers"])
    return DataLoader(
        dataset,
        batch_size=batch_size or int(cfg["train"]["batch_size"]),
        shuffle=train,
        drop_last=train,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        worker_init_fn=seed_worker,
        generator=generator,
        persistent_workers=train and workers > 0,
    )
