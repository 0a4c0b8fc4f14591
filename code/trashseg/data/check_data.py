"""`make check-data`: counts and every problem in a data folder, naming file and entry.

Exit 0 when training can run (repaired annotation problems are listed as warnings), 1 when an
image is missing, unreadable or of another size than its JSON entry, 2 when a JSON is unusable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from trashseg.data.classes import CLASSES
from trashseg.data.coco import CocoSet, load_coco
from trashseg.data.images import read_rgb, size_mismatch
from trashseg.data.masks import MaskCache, read_mask
from trashseg.errors import TrashsegError
from trashseg.settings import Settings


def check_images(cs: CocoSet) -> list[str]:
    problems = []
    for image_id in tqdm(cs.image_ids, desc=f"images {cs.json_path.name}", leave=False):
        info = cs.info(image_id)
        try:
            h, w = read_rgb(cs.image_path(image_id)).shape[:2]
        except TrashsegError as exc:
            problems.append(f"{exc} (image id {image_id} in {cs.json_path.name})")
            continue
        if (h, w) != (info["height"], info["width"]):
            problems.append(
                size_mismatch(cs.image_path(image_id), (h, w), (info["height"], info["width"]), cs.json_path.name)
                + f" (image id {image_id})"
            )
    return problems


def class_counts(cs: CocoSet, cache: MaskCache) -> tuple[np.ndarray, np.ndarray]:
    instances = np.zeros(len(CLASSES), dtype=np.int64)
    for ann in cs.coco.dataset["annotations"]:
        cls = cs.cat_to_class[ann["category_id"]]
        if cls is not None and cls < len(CLASSES):
            instances[cls] += 1
    pixels = np.zeros(len(CLASSES), dtype=np.int64)
    for path in cache.build(cs):
        pixels += np.bincount(read_mask(path).reshape(-1), minlength=256)[: len(CLASSES)]
    return instances, pixels


def check_data(cfg: Settings, data_dir: Path, names: list[str]) -> int:
    """Print the class counts and every problem of each COCO file; 1 when an image is unusable."""
    if not (data_dir / names[0]).is_file():
        raise TrashsegError(
            f"{data_dir / names[0]}: not found; put the competition data in "
            f"{data_dir}/ (batch_*/ folders, train_all.json, test.json) or run on the "
            "bundled sample: make check-data DATA_DIR=data/sample"
        )
    cache = MaskCache(cfg.data.cache_dir)
    fatal = 0
    for name in names:
        path = data_dir / name
        if not path.is_file():
            print(f"{path}: not present, skipped")
            continue
        cs = load_coco(path, data_dir, cfg.data.class_map)
        image_problems = check_images(cs)
        print(f"\n== {path}: {len(cs)} images, {len(cs.coco.dataset['annotations'])} annotations")
        if cs.coco.dataset["annotations"]:
            instances, pixels = class_counts(cs, cache)
            total = max(int(pixels.sum()), 1)
            print(f"{'class':<14} {'instances':>9} {'pixels':>12} {'share':>7}")
            for name_, n, p in zip(CLASSES, instances, pixels):
                print(f"{name_:<14} {n:>9} {p:>12} {100 * p / total:6.2f}%")
        for p in cs.problems:
            print(f"warning: {p}")
        for p in image_problems:
            print(f"problem: {p}")
        fatal += len(image_problems)
        print(f"{len(image_problems)} problem(s), {len(cs.problems)} warning(s) in {path.name}")
    return 1 if fatal else 0
