"""COCO file -> items -> DataLoader, the same way for training, validation, evaluation and test."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler, Subset

from trashseg.data.classes import class_index
from trashseg.data.coco import CocoSet, load_coco
from trashseg.data.copy_paste import CopyPaste
from trashseg.data.dataset import SegDataset
from trashseg.data.items import make_items
from trashseg.data.masks import MaskCache
from trashseg.runtime.distributed import Context
from trashseg.runtime.seeding import seed_worker
from trashseg.settings import Settings


def load_set(cfg: Settings, json_path: Path, image_root: Path | None = None, quiet: bool = False) -> CocoSet:
    cs = load_coco(json_path, image_root if image_root is not None else cfg.data.data_dir, cfg.data.class_map)
    if cs.problems and not quiet:
        print(
            f"warning: {json_path}: {len(cs.problems)} annotation problem(s) repaired; first: {cs.problems[0]}"
            " (run `make check-data` for all)"
        )
    return cs


def loader_workers(cfg: Settings) -> int:
    """``data.num_workers``, with auto resolved: 2 processes feeding a GPU; 1 on a CPU run, whose
    intra-op threads already use every core: on 2 cores 0, 1 and 2 workers were within 5% of each
    other on both kinds of CPU measured, and one keeps the decoding off the step without a second
    process competing for the cores (`make bench-cpu-speed`, docs/results.md)."""
    workers = cfg.data.num_workers
    if workers != "auto":
        return workers
    from trashseg.runtime.devices import resolve_device

    return 2 if resolve_device(cfg.train.device).type == "cuda" else 1


def make_loader(
    cfg: Settings,
    cs: CocoSet,
    transform,
    *,
    with_masks: bool,
    train: bool = False,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    mask_size: int | None = None,
    ctx: Context | None = None,
    progress: bool = True,
) -> DataLoader:
    """Training loaders shuffle, drop the last partial batch and, under DDP, use a
    DistributedSampler; evaluation loaders under DDP take every world-th image (no padding, so
    no image is scored twice)."""
    ctx = ctx or Context()
    cache = MaskCache(cfg.data.cache_dir) if with_masks else None
    items = make_items(cs, cache, progress=progress)
    cp = cfg.augment.copy_paste
    copy_paste = None
    if train and cp.p > 0:
        copy_paste = CopyPaste(items, [class_index(c) for c in cp.classes], cp.p, cp.max_objects)
        if ctx.is_main and progress:
            print(copy_paste.describe())
    dataset = SegDataset(items, transform, mask_size=mask_size, copy_paste=copy_paste)
    sampler = None
    if ctx.distributed and train:
        sampler = DistributedSampler(
            dataset, num_replicas=ctx.world, rank=ctx.rank, shuffle=True, seed=cfg.train.seed, drop_last=True
        )
    elif ctx.distributed:
        dataset = Subset(dataset, range(ctx.rank, len(dataset), ctx.world))
    workers = loader_workers(cfg)
    speed = cfg.speed
    return DataLoader(
        dataset,
        batch_size=batch_size or cfg.train.batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        drop_last=train,
        num_workers=workers,
        pin_memory=speed.pin_memory and torch.cuda.is_available(),
        worker_init_fn=seed_worker,
        generator=generator,
        persistent_workers=train and workers > 0 and speed.persistent_workers,
    )
