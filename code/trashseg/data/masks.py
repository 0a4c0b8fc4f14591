"""Rasterise COCO annotations into class-index masks and cache them on disk as PNGs.

Each image's mask is keyed by a hash of exactly what determines it (its size, its annotations, the
category -> class mapping and the painter version), so any edit to the JSON rebuilds just the masks
it changes, and fold files that share images share the cache.

A soft pseudo-label (an annotation with ``pseudo_weight``, written by `make pseudo` with
``pseudo.soft``) is painted as its class plus its weight's level in the upper bits
(class + 16 x level, level = round((1 - weight) x 15)): the mask stays one uint8 plane that every
augmentation moves as it moves the classes, and the loss reads the weight back (level 0, every true
label, is weight 1).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from trashseg.atomic import atomic_open
from trashseg.data.coco import CocoSet
from trashseg.errors import TrashsegError

PAINTER_VERSION = 1
WEIGHT_SHIFT = 16  # class indices fit below it; a soft pseudo-label's weight level is painted above
WEIGHT_LEVELS = 15  # weight = 1 - level / 15; the largest value, 10 + 16 x 15 = 250, stays below 255


def weight_level(weight):
    """The level a soft pseudo-label's weight (0, 1] is painted with (0: full weight); a number or an
    array of them (numpy rounds half to even, as Python's round does)."""
    return np.rint((1.0 - np.asarray(weight, dtype=np.float64)) * WEIGHT_LEVELS).astype(np.int64)


def level_weight(level):
    """The weight a painted level stands for: a number, a numpy array or a torch tensor of levels."""
    return 1.0 - level / WEIGHT_LEVELS


def painted_value(cls: int, ann: dict) -> int:
    """What an annotation paints: its class, plus its weight's level for a soft pseudo-label."""
    weight = ann.get("pseudo_weight")
    return cls if weight is None or cls == 255 else cls + WEIGHT_SHIFT * int(weight_level(weight))


# Unfiltered, lightly compressed PNG: a 512x512 mask is a few KB and decodes ~3x faster than
# OpenCV's default PNG settings (measured by `make bench-data`).
PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]


def _area(ann: dict) -> float:
    area = ann.get("area")
    return float(area) if isinstance(area, (int, float)) else 0.0


def paint_mask(cs: CocoSet, image_id: int) -> np.ndarray:
    """Class-index mask, largest annotation painted first so small objects stay on top."""
    info = cs.info(image_id)
    h, w = info["height"], info["width"]
    mask = np.zeros((h, w), dtype=np.uint8)
    for ann in sorted(cs.annotations(image_id), key=_area, reverse=True):
        cls = cs.cat_to_class[ann["category_id"]]
        if cls is None:
            continue
        seg = ann["segmentation"]
        try:
            if isinstance(seg, list):
                rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
            elif isinstance(seg["counts"], list):
                rle = mask_utils.frPyObjects(seg, h, w)
            else:
                rle = seg
            binary = mask_utils.decode(rle)
        except Exception as exc:  # pycocotools raises bare TypeError/ValueError on malformed input
            raise TrashsegError(
                f"{cs.json_path}: annotation id {ann.get('id')} on {info['file_name']}: "
                f"cannot rasterise segmentation ({exc})"
            ) from None
        if binary.shape != mask.shape:
            raise TrashsegError(
                f"{cs.json_path}: annotation id {ann.get('id')} on {info['file_name']}: RLE size "
                f"{binary.shape} differs from image size {(h, w)}"
            )
        mask[binary.astype(bool)] = painted_value(cls, ann)
    return mask


def mask_key(cs: CocoSet, image_id: int) -> str:
    info = cs.info(image_id)
    payload = {
        "v": PAINTER_VERSION,
        "hw": [info["height"], info["width"]],
        "anns": [
            [a.get("id"), cs.cat_to_class[a["category_id"]], a["segmentation"], _area(a)]
            + ([a["pseudo_weight"]] if "pseudo_weight" in a else [])  # keys of every other mask unchanged
            for a in cs.annotations(image_id)
        ],
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha1(blob).hexdigest()


class MaskCache:
    """PNG masks under ``root``, named by their content key."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.png"

    def ensure(self, cs: CocoSet, image_id: int) -> Path:
        """Path of the cached mask, painting and writing it first if absent."""
        path = self.path_for(mask_key(cs, image_id))
        if not path.exists():
            mask = paint_mask(cs, image_id)
            ok, png = cv2.imencode(".png", mask, PNG_FAST)
            if not ok:
                raise TrashsegError(f"{path}: could not encode mask as PNG")
            with atomic_open(path, "wb") as fh:
                fh.write(png.tobytes())
        return path

    def build(self, cs: CocoSet, progress: bool = True) -> list[Path]:
        """Ensure every image of ``cs`` has a cached mask; returns their paths in image order."""
        ids = cs.image_ids
        if progress:
            from tqdm import tqdm

            ids = tqdm(ids, desc=f"masks {cs.json_path.name}", leave=False)
        return [self.ensure(cs, image_id) for image_id in ids]


def read_mask(path: str | Path) -> np.ndarray:
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise TrashsegError(f"{path}: cached mask unreadable; delete the cache folder to rebuild it")
    return mask
