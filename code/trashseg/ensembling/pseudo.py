"""`make pseudo`: the ensemble's test probabilities as COCO pseudo-labels (RLE), one file per fold.

Pixels whose ensemble confidence is below ``pseudo.threshold`` are labelled with the category
``__ignore__`` (painted 255, skipped by the loss and the metric), so only confident pixels teach.
With ``pseudo.soft`` the confident pixels are soft labels instead of hard ones: each keeps its class
and its confidence (``pseudo_weight``, in 1/15 steps; background included), and the loss weights
their cross-entropy by it, so a pixel the ensemble was 0.55 sure of teaches about half as much as a
sure one. Writes train_data_pseudo{k}.json = fold k's training images + the pseudo-labelled test
images; train on it with `make train-fpn FOLD=k PSEUDO=1` (the original's "pesudo" spelling is read too).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from trashseg.atomic import write_json
from trashseg.data.classes import CLASSES, IGNORE_CATEGORY, resolve_category_ids
from trashseg.data.coco import read_json
from trashseg.ensembling.ensemble import check_manifests, normalise_weights, weights_from_file
from trashseg.inference.probs import ProbsReader
from trashseg.paths import check_name
from trashseg.settings import Settings


def _rle(binary: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(binary.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def pseudo_annotations(
    probs: np.ndarray, height: int, width: int, threshold: float, soft: bool = False
) -> list[tuple[int, dict, float, float | None]]:
    """(class index or 255, RLE, area, weight) for each class with confident pixels and for the unsure
    ones; hard labels have weight None, soft ones one region a class and weight level (background too)."""
    from trashseg.data.masks import level_weight, weight_level

    full = np.stack([cv2.resize(p, (width, height), interpolation=cv2.INTER_LINEAR) for p in probs])
    label, confidence = full.argmax(0), full.max(0)
    out = []
    sure = confidence >= threshold
    levels = weight_level(confidence) if soft else None
    for cls in range(0 if soft else 1, len(CLASSES)):
        region = (label == cls) & sure
        if levels is None:
            if region.any():
                out.append((cls, _rle(region), float(region.sum()), None))
            continue
        for level in np.unique(levels[region]):
            part = region & (levels == level)
            out.append((cls, _rle(part), float(part.sum()), round(float(level_weight(level)), 6)))
    unsure = ~sure
    if unsure.any():
        out.append((255, _rle(unsure), float(unsure.sum()), None))
    return out


def category_ids(
    train: dict, class_map: dict, source: str, background: bool = False
) -> tuple[list[dict], dict[int, int]]:
    """Categories extended with any missing kit class (Background too for soft labels) and __ignore__;
    class index -> category id."""
    categories = [dict(c) for c in train["categories"]]
    resolved = resolve_category_ids(categories, class_map, source)
    by_class = {}
    for cat_id, cls in resolved.items():
        if cls is not None:
            by_class.setdefault(cls, cat_id)
    next_id = max([c["id"] for c in categories] + [0]) + 1
    first = 0 if background else 1
    for cls, name in [(c, CLASSES[c]) for c in range(first, len(CLASSES))] + [(255, IGNORE_CATEGORY)]:
        if cls not in by_class:
            categories.append({"id": next_id, "name": name})
            by_class[cls] = next_id
            next_id += 1
    return categories, by_class


def confident_labels(
    readers: list[ProbsReader], weights: list[float], images: list[dict], threshold: float, soft: bool = False
) -> list:
    """Each image's pseudo-annotations from the weighted merge of the readers' rows (in ``images`` order)."""
    labels = []
    for i, img in enumerate(tqdm(images, desc="pseudo-labels", leave=False)):
        probs = sum(r.row(i).astype(np.float32) * wk for r, wk in zip(readers, weights))
        labels.append(pseudo_annotations(probs, img["height"], img["width"], threshold, soft))
    return labels


def with_pseudo(train: dict, source: str, class_map: dict, images: list[dict], labels: list) -> dict:
    """A training set plus ``images`` labelled by ``labels`` (new image and annotation ids after the
    set's own, flagged ``pseudo``); their own annotations, if any, are never copied."""
    background = any(cls == 0 for found in labels for cls, *_ in found)  # soft labels paint background too
    categories, cat_of = category_ids(train, class_map, source, background)
    image_offset = max([im["id"] for im in train["images"]] + [-1]) + 1
    ann_id = max([a.get("id", 0) for a in train["annotations"]] + [0]) + 1
    out_images, anns = list(train["images"]), list(train["annotations"])
    for i, (img, found) in enumerate(zip(images, labels)):
        new_id = image_offset + i
        out_images.append({**img, "id": new_id, "pseudo": True})
        for cls, rle, area, weight in found:
            ann = {
                "id": ann_id,
                "image_id": new_id,
                "category_id": cat_of[cls],
                "segmentation": rle,
                "area": area,
                "iscrowd": 0,
                "pseudo": True,
            }
            anns.append(ann if weight is None else {**ann, "pseudo_weight": weight})
            ann_id += 1
    return {**train, "images": out_images, "annotations": anns, "categories": categories}


def make_pseudo(
    cfg: Settings,
    prob_files: list[Path],
    weights_file: Path | None,
    threshold: float,
    k: int,
    out_dir: Path | None = None,
    soft: bool = False,
) -> list[Path]:
    data_dir = Path(cfg.data.data_dir)
    out_dir = out_dir or data_dir
    test = read_json(data_dir / cfg.data.test_json)
    readers = [ProbsReader(p) for p in prob_files]
    source = f"{data_dir / cfg.data.test_json}: file_name"
    check_manifests(readers, [check_name(str(img["file_name"]), source) for img in test["images"]])
    w = normalise_weights(weights_from_file(weights_file, readers) if weights_file else None, len(readers))
    labels = confident_labels(readers, w, test["images"], threshold, soft)
    written = []
    for fold in range(k):
        src = data_dir / cfg.data.train_json.format(fold=fold)
        out = out_dir / f"train_data_pseudo{fold}.json"
        write_json(out, with_pseudo(read_json(src), str(src), cfg.data.class_map, test["images"], labels))
        written.append(out)
    for r in readers:
        r.close()
    return written
