"""bench-data: the kit's loader against one written the original way, on real photos.

Original way (the competition baseline): per item, pycocotools annToMask for every annotation and a
linear search of the category list for each class name. Kit: masks rasterised once into a PNG cache,
read back per item. Same images, same augmentation pipeline, one process, same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import ROOT, keep, require_woosong, results_path
from trashseg.config import load_config
from trashseg.data.classes import CLASSES
from trashseg.data.coco import load_coco
from trashseg.data.dataset import SegDataset
from trashseg.data.images import read_rgb
from trashseg.data.items import make_items
from trashseg.data.masks import MaskCache, read_mask
from trashseg.data.transforms import train_transform

SAMPLE = ROOT / "data" / "sample"


class OriginalStyleMasks:
    """The baseline's mask building, kept as it was (minus removed numpy APIs)."""

    def __init__(self, coco, class_map):
        self.coco = coco
        self.cats = coco.loadCats(coco.getCatIds())
        self.class_map = class_map

    def class_name(self, cat_id):
        for cat in self.cats:  # linear lookup, as the original get_classname
            if cat["id"] == cat_id:
                return self.class_map.get(cat["name"], cat["name"])
        return "None"

    def mask(self, image_id):
        info = self.coco.loadImgs(image_id)[0]
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=info["id"], iscrowd=None))
        masks = np.zeros((info["height"], info["width"]))
        for ann in sorted(anns, key=lambda a: a["area"], reverse=True):
            pixel_value = list(CLASSES).index(self.class_name(ann["category_id"]))
            masks[self.coco.annToMask(ann) == 1] = pixel_value
        return masks.astype(np.int64)


def per_item(fn, n: int, repeats: int) -> float:
    """Items per second of ``fn(i)`` over ``n`` items, best of ``repeats`` passes."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, time.perf_counter() - start)
    return n / best


def main():
    from trashseg.cli import restart_tuned

    restart_tuned([sys.executable, __file__, *sys.argv[1:]], sys.argv[1:])  # as every verb runs on CPU
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--img-size", type=int, default=512)
    parser.add_argument("--smoke", action="store_true", help="4 photos of data/sample at 64 px: that it runs")
    parser.add_argument("--out", type=Path, default=None, help="result JSON (default bench/results/data.json)")
    args = parser.parse_args()
    if args.smoke:
        src, annotations, args.images, args.repeats, args.img_size = SAMPLE, "train_all.json", 4, 1, 64
    else:
        src, annotations = require_woosong(), "annotations.json"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(None, [f"data.cache_dir={tmp}/cache", f"train.img_size={args.img_size}"])
        cs = load_coco(src / annotations, src, cfg.data.class_map)
        cs.image_ids = cs.image_ids[: args.images]
        transform = train_transform(cfg)
        original = OriginalStyleMasks(cs.coco, {k: v for k, v in cfg.data.class_map.items()})

        start = time.perf_counter()
        items = make_items(cs, MaskCache(cfg.data.cache_dir), progress=False)
        cache_build_s = time.perf_counter() - start
        kit = SegDataset(items, transform)
        ids = cs.image_ids

        # correctness first: both ways give the same masks
        for i in range(min(10, len(ids))):
            assert np.array_equal(original.mask(ids[i]), read_mask(items[i].mask_path)), ids[i]

        def original_item(i):
            image = read_rgb(cs.image_path(ids[i]))
            out = transform(image=image, mask=original.mask(ids[i]).astype(np.uint8))
            return out["image"], out["mask"]

        n = len(ids)
        mask_orig = per_item(lambda i: original.mask(ids[i]), n, args.repeats)
        mask_kit = per_item(lambda i: read_mask(items[i].mask_path), n, args.repeats)
        item_orig = per_item(original_item, n, args.repeats)
        item_kit = per_item(lambda i: kit[i], n, args.repeats)

    print(f"real photos: {n} images of {src}, train pipeline at {args.img_size}px, 1 process")
    print(f"mask stage   original-style {mask_orig:8.1f} items/s   kit (PNG cache) {mask_kit:8.1f} items/s")
    print(f"whole item   original-style {item_orig:8.1f} items/s   kit             {item_kit:8.1f} items/s")
    print(f"one-off cache build: {cache_build_s:.1f} s for {n} images")
    print(f"mask_items_per_s_original={mask_orig:.1f}")
    print(f"mask_items_per_s_kit={mask_kit:.1f}")
    print(f"item_items_per_s_original={item_orig:.1f}")
    print(f"item_items_per_s_kit={item_kit:.1f}")
    print(f"mask_speedup={mask_kit / mask_orig:.2f}")
    print(f"item_speedup={item_kit / item_orig:.2f}")
    figures = {
        "mask_items_per_s_original": round(mask_orig, 1),
        "mask_items_per_s_kit": round(mask_kit, 1),
        "item_items_per_s_original": round(item_orig, 1),
        "item_items_per_s_kit": round(item_kit, 1),
        "mask_speedup": round(mask_kit / mask_orig, 2),
        "item_speedup": round(item_kit / item_orig, 2),
        "cache_build_s": round(cache_build_s, 1),
    }
    settings = {"images": n, "img_size": args.img_size, "repeats": args.repeats, "source": str(src.name)}
    keep("bench-data", figures, settings, args.out or (None if args.smoke else results_path("data")))


if __name__ == "__main__":
    main()
