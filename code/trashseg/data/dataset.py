"""Torch datasets over a COCO set: image + cached mask for training/validation, image only for test."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from trashseg.data.images import read_rgb, size_mismatch
from trashseg.data.items import Item
from trashseg.data.masks import read_mask
from trashseg.errors import TrashsegError

if TYPE_CHECKING:
    from trashseg.data.copy_paste import CopyPaste


class SegDataset(Dataset):
    """Yields dicts with 'image' (3xHxW float), 'index' and, when masks exist, 'mask' (HxW int64)."""

    def __init__(self, items: list[Item], transform, mask_size: int | None = None, copy_paste: CopyPaste | None = None):
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
        return {"image": out["image"], "mask": torch.as_tensor(np.asarray(mask), dtype=torch.long), "index": index}
