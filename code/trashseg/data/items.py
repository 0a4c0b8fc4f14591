"""What one example of a set is made of: its image's path, its cached mask's path (none for test
images) and the size its JSON states, resolved once for the dataset and the copy-paste donors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trashseg.data.coco import CocoSet
from trashseg.data.masks import MaskCache


@dataclass(frozen=True)
class Item:
    image_path: Path
    mask_path: Path | None
    size: tuple[int, int]  # (height, width) as the JSON states it


def make_items(cs: CocoSet, cache: MaskCache | None, progress: bool = True) -> list[Item]:
    """Resolve image paths and (when ``cache`` is given) build the mask cache up front."""
    masks = cache.build(cs, progress=progress) if cache is not None else [None] * len(cs)
    return [Item(cs.image_path(i), m, (cs.info(i)["height"], cs.info(i)["width"])) for i, m in zip(cs.image_ids, masks)]
