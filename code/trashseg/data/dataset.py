"""Torch datasets over a COCO set: image + cached mask for training/validation, image only for test."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from trashseg.data.classes import CLASSES
from trashseg.data.coco import CocoSet
from trashseg.errors import TrashsegError
from trashseg.data.images import read_rgb, size_mismatch
from trashseg.data.masks import MaskCache, read_mask


@dataclass(frozen=True)
class Item:
    image_path: Path
    mask_path: Path | None
    size: tuple[int, int]          # (height, width) as the JSON states it


def make_items(cs: CocoSet, cache: MaskCache | None, progress: bool = True) -> list[Item]:
    """Resolve image paths and (when ``cache`` is given) build the mask cache up front."""
    masks = cache.build(cs, progress=progress) if cache is not None else [None] * len(cs)
    return [Item(cs.image_path(i), m, (cs.info(i)["height"], cs.info(i)["width"]))
            for i, m in zip(cs.image_ids, masks)]


class CopyPaste:
    """Pastes single objects (connected regions) of chosen classes from other training images, at
    the same relative place, onto the image and its mask: more examples of rare classes (the
    competition's Battery and Clothing). Training only."""

    def __init__(self, items: list[Item], classes: list[int], p: float, max_objects: int):
        self.items, self.classes, self.p, self.max_objects = items, list(classes), p, max_objects
        wanted = set(classes)
        self.donors = [(i, int(c)) for i, item in enumerate(items)
                       for c in np.unique(read_mask(item.mask_path)) if int(c) in wanted]

    def describe(self) -> str:
        """One line for the log: how many images can donate objects, or why nothing is pasted."""
        names = ", ".join(CLASSES[c] for c in self.classes)
        if not self.donors:
            return f"copy-paste: no {names} in the training masks; nothing will be pasted"
        images = len({index for index, _ in self.donors})
        return f"copy-paste: {names} from {images} donor image(s), p={self.p}, up to {self.max_objects} object(s) per image"

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.donors or np.random.random() >= self.p:
            return image, mask
        image, mask = image.copy(), mask.copy()
        h, w = mask.shape
        for _ in range(np.random.randint(1, self.max_objects + 1)):
            index, cls = self.donors[np.random.randint(len(self.donors))]
            donor = self.items[index]
            d_mask = cv2.resize(read_mask(donor.mask_path), (w, h), interpolation=cv2.INTER_NEAREST)
            count, parts = cv2.connectedComponents((d_mask == cls).astype(np.uint8))
            if count < 2:
                continue
            region = parts == np.random.randint(1, count)
            d_image = cv2.resize(read_rgb(donor.image_path), (w, h), interpolation=cv2.INTER_LINEAR)
            image[region] = d_image[region]
            mask[region] = cls
        return image, mask


class SegDataset(Dataset):
    """Yields dicts with 'image' (3xHxW float), 'index' and, when masks exist, 'mask' (HxW int64)."""

    def __init__(self, items: list[Item], transform, mask_size: int | None = None,
                 copy_paste: CopyPaste | None = None):
        """``mask_size``: give the truth nearest-resized from the original straight to this size
        (the scoring size) instead of through ``transform``, so scoring never sees a mask that was
        shrunk to a small training size and blown up again."""
        self.items = items
        self.transform = transform
        self.mask_size = mask_size
        self.copy_paste = copy_paste

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        image = read_rgb(item.image_path)
        if image.shape[:2] != item.size:
            raise TrashsegError(size_mismatch(item.image_path, image.shape[:2], item.size, "the JSON"))
        if item.mask_path is None:
            out = self.transform(image=image)
            return {"image": out["image"], "index": index}
        mask = read_mask(item.mask_path)
        if self.mask_size:
            out = self.transform(image=image)
            mask = cv2.resize(mask, (self.mask_size, self.mask_size), interpolation=cv2.INTER_NEAREST)
        else:
            if self.copy_paste is not None:
                image, mask = self.copy_paste(image, mask)
            out = self.transform(image=image, mask=mask)
            mask = out["mask"]
        return {"image": out["image"], "mask": torch.as_tensor(np.asarray(mask), dtype=torch.long),
                "index": index}
