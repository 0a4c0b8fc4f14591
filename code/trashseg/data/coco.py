"""Read a COCO JSON into a validated, indexed set of images and annotations.

pycocotools does the indexing and rasterisation; this module adds what it lacks: errors that name
the file and entry, category matching by name, and a list of repairable problems (degenerate
polygons) that ``check-data`` reports and training logs instead of crashing on.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from pycocotools.coco import COCO

from trashseg.data.classes import resolve_category_ids
from trashseg.errors import TrashsegError
from trashseg.paths import check_name, contained

REQUIRED_KEYS = ("images",)


def read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise TrashsegError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrashsegError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise TrashsegError(f"{path}: expected a JSON object with images/annotations/categories")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise TrashsegError(f"{path}: missing top-level key(s) {', '.join(missing)}")
    data.setdefault("annotations", [])
    data.setdefault("categories", [])
    return data


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _clean_polygons(seg: list, where: str, problems: list[str], w: int, h: int) -> list:
    """Keep polygon parts with >= 3 finite points inside a generous frame around the image;
    record every dropped part as a problem (a repair, reported by check-data)."""
    kept = []
    for part_no, poly in enumerate(seg):
        if not isinstance(poly, list) or len(poly) % 2 or len(poly) < 6:
            n = len(poly) // 2 if isinstance(poly, list) else 0
            problems.append(f"{where}: polygon part {part_no} has {n} point(s), needs >= 3; dropped")
            continue
        if not all(_is_number(v) for v in poly):
            problems.append(f"{where}: polygon part {part_no} has non-numeric or NaN/inf coordinates; dropped")
            continue
        xs, ys = poly[0::2], poly[1::2]
        if min(xs) < -w or max(xs) > 2 * w or min(ys) < -h or max(ys) > 2 * h:
            problems.append(f"{where}: polygon part {part_no} lies far outside the {w}x{h} image; dropped")
            continue
        kept.append([float(v) for v in poly])
    return kept


def compressed_rle_counts(text: str) -> list[int] | None:
    """Run lengths of a COCO-compressed RLE string, or None if it is malformed. pycocotools trusts
    these counts without bounds checks, so they are verified here before it ever sees them."""
    counts, p = [], 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more:
            if p >= len(text):
                return None
            c = ord(text[p]) - 48
            if not 0 <= c < 64:
                return None
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def _check_rle(seg: dict, where: str, w: int, h: int) -> dict:
    size, counts = seg.get("size"), seg.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)):
        raise TrashsegError(f"{where}: RLE segmentation needs 'size': [height, width]")
    if size != [h, w]:
        raise TrashsegError(f"{where}: RLE size {size} differs from the image's [height, width] {[h, w]}")
    if isinstance(counts, list):
        if not all(_is_int(v) and v >= 0 for v in counts) or sum(counts) != h * w:
            raise TrashsegError(f"{where}: uncompressed RLE counts must be non-negative integers summing to {h * w}")
    elif isinstance(counts, str):
        decoded = compressed_rle_counts(counts)
        if decoded is None or any(v < 0 for v in decoded) or sum(decoded) != h * w:
            raise TrashsegError(f"{where}: compressed RLE 'counts' is malformed or does not cover {h}x{w} pixels")
    else:
        raise TrashsegError(f"{where}: RLE 'counts' must be a COCO-compressed string or a list of integers")
    return {"size": size, "counts": counts}


def _check_images(images, json_path: Path) -> dict:
    if not isinstance(images, list):
        raise TrashsegError(f"{json_path}: 'images' must be a list")
    by_id: dict = {}
    for i, img in enumerate(images):
        if (
            not isinstance(img, dict)
            or not _is_int(img.get("id"))
            or not isinstance(img.get("file_name"), str)
            or not img["file_name"]
        ):
            raise TrashsegError(f"{json_path}: images[{i}] needs an integer 'id' and a 'file_name'")
        if img["id"] in by_id:
            raise TrashsegError(f"{json_path}: duplicate image id {img['id']} (images[{i}], {img['file_name']})")
        for key in ("width", "height"):
            if not _is_int(img.get(key)) or img[key] <= 0:
                raise TrashsegError(f"{json_path}: images[{i}] ({img['file_name']}) has no valid {key}")
        check_name(img["file_name"], f"{json_path}: images[{i}] file_name")
        by_id[img["id"]] = img
    return by_id


def _check_categories(categories, json_path: Path) -> None:
    if not isinstance(categories, list):
        raise TrashsegError(f"{json_path}: 'categories' must be a list")
    ids = set()
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or not _is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise TrashsegError(f"{json_path}: categories[{i}] needs an integer 'id' and a string 'name'")
        if cat["id"] in ids:
            raise TrashsegError(f"{json_path}: duplicate category id {cat['id']} (categories[{i}])")
        ids.add(cat["id"])


def clean_annotations(data: dict, json_path: Path, images: dict, cat_to_class: dict, problems: list[str]) -> list[dict]:
    """Validated annotations: errors for what cannot be trusted, logged repairs for the rest."""
    from pycocotools import mask as mask_utils

    if not isinstance(data["annotations"], list):
        raise TrashsegError(f"{json_path}: 'annotations' must be a list")
    clean = []
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise TrashsegError(f"{json_path}: annotations[{i}] is not an object")
        where = f"{json_path}: annotations[{i}] (id {ann.get('id')!r}, image {ann.get('image_id')!r})"
        image_id, category_id = ann.get("image_id"), ann.get("category_id")
        if not _is_int(image_id) or image_id not in images:
            raise TrashsegError(f"{where}: points at an image id that is not in 'images'")
        if not _is_int(category_id) or category_id not in cat_to_class:
            raise TrashsegError(f"{where}: category_id {category_id!r} is not in 'categories'")
        w, h = images[image_id]["width"], images[image_id]["height"]
        seg = ann.get("segmentation")
        if isinstance(seg, list):
            seg = _clean_polygons(seg, where, problems, w, h)
            if not seg:
                problems.append(f"{where}: no usable polygon left; annotation skipped")
                continue
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        elif isinstance(seg, dict):
            seg = _check_rle(seg, where, w, h)
            rle = (
                mask_utils.frPyObjects(seg, h, w)
                if isinstance(seg["counts"], list)
                else {"size": seg["size"], "counts": seg["counts"].encode()}
            )
        else:
            raise TrashsegError(f"{where}: segmentation must be a polygon list or an RLE object")
        area = ann.get("area")
        if not _is_number(area):
            area = float(mask_utils.area(rle))
            problems.append(f"{where}: 'area' missing or not a number; computed from the mask ({area:.0f})")
        kept = {
            "id": ann.get("id", i),
            "image_id": image_id,
            "category_id": category_id,
            "segmentation": seg,
            "area": float(area),
            "iscrowd": 1 if ann.get("iscrowd") else 0,
        }
        if "pseudo_weight" in ann:  # a soft pseudo-label's confidence (make pseudo with pseudo.soft)
            weight = ann["pseudo_weight"]
            if not _is_number(weight) or not 0 < weight <= 1:
                raise TrashsegError(f"{where}: pseudo_weight {weight!r} must be a number in (0, 1]")
            kept["pseudo_weight"] = float(weight)
        clean.append(kept)
    return clean


@dataclass
class CocoSet:
    """A COCO file resolved against an image folder and the kit's classes."""

    json_path: Path
    image_root: Path
    coco: COCO
    image_ids: list[int]  # in file order: the order of submissions
    cat_to_class: dict[int, int | None]
    problems: list[str] = field(default_factory=list)

    def info(self, image_id: int) -> dict:
        return self.coco.imgs[image_id]

    def file_name(self, image_id: int) -> str:
        return self.coco.imgs[image_id]["file_name"]

    def image_path(self, image_id: int) -> Path:
        return contained(self.image_root, self.file_name(image_id), f"{self.json_path}: file_name")

    def annotations(self, image_id: int) -> list[dict]:
        return self.coco.imgToAnns.get(image_id, [])

    def __len__(self) -> int:
        return len(self.image_ids)


def load_coco(json_path: str | Path, image_root: str | Path | None = None, class_map: dict | None = None) -> CocoSet:
    """Load and validate ``json_path``; images resolve under ``image_root`` (default: its folder)."""
    json_path = Path(json_path)
    image_root = Path(image_root) if image_root is not None else json_path.parent
    data = read_json(json_path)
    problems: list[str] = []

    images = _check_images(data["images"], json_path)
    _check_categories(data["categories"], json_path)
    cat_to_class = resolve_category_ids(data["categories"], class_map or {}, str(json_path))
    clean_anns = clean_annotations(data, json_path, images, cat_to_class, problems)

    coco = COCO()
    coco.dataset = {**data, "annotations": clean_anns}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress chatter
        coco.createIndex()
    image_ids = [img["id"] for img in data["images"]]
    return CocoSet(json_path, image_root, coco, image_ids, cat_to_class, problems)


def subset(data: dict, image_ids: list[int]) -> dict:
    """A COCO dict restricted to ``image_ids`` (images and their annotations), keeping other keys."""
    keep = set(image_ids)
    return {
        **data,
        "images": [img for img in data["images"] if img["id"] in keep],
        "annotations": [a for a in data.get("annotations", []) if a["image_id"] in keep],
    }
