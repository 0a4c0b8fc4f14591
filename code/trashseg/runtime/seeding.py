"""Seed every RNG the run touches, DataLoader workers and albumentations included.

albumentations 2 keeps its own generator per pipeline (the global seeds do not reach it): in the
main process the trainer seeds it each epoch from (seed, epoch, rank); in a worker process, from
the worker's torch seed, which the loader draws from the run's generator (saved in last.pt). So a
run is repeatable, and a resumed one continues with the augmentations it would have drawn."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def seed_transform(dataset, seed: int) -> None:
    transform = getattr(getattr(dataset, "dataset", dataset), "transform", None)
    if hasattr(transform, "set_random_seed"):
        transform.set_random_seed(seed % 2**32)


def seed_epoch(dataset, seed: int, epoch: int, rank: int) -> None:
    """The main process's augmentation draws for one epoch (workers reseed their own copy)."""
    seed_transform(dataset, seed * 1_000_003 + epoch * 1009 + rank)


def seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    info = torch.utils.data.get_worker_info()
    if info is not None:
        seed_transform(info.dataset, seed)
