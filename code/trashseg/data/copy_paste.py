"""Copy-paste augmentation: objects of rare classes cut from other training images and pasted onto
the image and its mask (the competition's Battery and Clothing have few examples). Training only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from trashseg.data.classes import CLASSES
from trashseg.data.images import read_rgb
from trashseg.data.masks import read_mask

if TYPE_CHECKING:
    from trashseg.data.items import Item


class CopyPaste:
    """Pastes single objects (connected regions) of chosen classes from other training images, at
    the same relative place, onto the image and its mask: more examples of rare classes (the
    competition's Battery and Clothing). Training only."""

    def __init__(self, items: list[Item], classes: list[int], p: float, max_objects: int):
        self.items, self.classes, self.p, self.max_objects = items, list(classes), p, max_objects
        wanted = set(classes)
        self.donors = [
            (i, int(c))
            for i, item in enumerate(items)
            for c in np.unique(read_mask(item.mask_path))
            if int(c) in wanted
        ]

    def describe(self) -> str:
        """One line for the log: how many images can donate objects, or why nothing is pasted."""
        names = ", ".join(CLASSES[c] for c in self.classes)
        if not self.donors:
            return f"copy-paste: no {names} in the training masks; nothing will be pasted"
        images = len({index for index, _ in self.donors})
        per = f"up to {self.max_objects} object(s) per image"
        return f"copy-paste: {names} from {images} donor image(s), p={self.p}, {per}"

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
