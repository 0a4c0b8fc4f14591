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

from .classes import resolve_category_ids
from .errors import TrashsegError

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


def _clean_polygons(seg, where: str, problems: list[str]):
    """Keep polygon parts with >= 3 finite points; record the rest as problems."""
    kept = []
    for part_no, poly in enumerate(seg):
        if not isinstance(poly, list) or len(poly) % 2 or len(poly) < 6:
            n = len(poly) // 2 if isinstance(poly, list) else 0
            problems.append(f"{where}: polygon part {part_no} has {n} point(s), needs >= 3; dropped")
            continue
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in poly):
            problems.append(f"{where}: polygon part {part_no} has non-numeric or NaN/inf coordinates; dropped")
            continue
        kept.append([float(v) for v in poly])
    return kept


@dataclass
class CocoSet:
    """A COCO file resolved against an image folder and the kit's classes."""

    json_path: Path
    image_root: Path
    coco: COCO
    image_ids: list[int]                      # in file order: the order of submissions
    cat_to_class: dict[int, int | None]
    problems: list[str] = field(default_factory=list)

    def info(self, image_id: int) -> dict:
        return self.coco.imgs[image_id]

    def file_name(self, image_id: int) -> str:
        return self.coco.imgs[image_id]["file_name"]

    def image_path(self, image_id: int) -> Path:
        return self.image_root / self.file_name(image_id)

    def annotations(self, image_id: int) -> list[dict]:
        return self.coco.imgToAnns.get(image_id, [])

    def __len__(self) -> int:
        return len(self.image_ids)


def load_coco(json_path: str | Path, image_root: str | Path | None = None,
              class_map: dict | None = None) -> CocoSet:
    """Load and validate ``json_path``; images resolve under ``image_root`` (default: its folder)."""
    json_path = Path(json_path)
    image_root = Path(image_root) if image_root is not None else json_path.parent
    data = read_json(json_path)
    problems: list[str] = []

    seen: set = set()
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise TrashsegError(f"{json_path}: images[{i}] needs at least 'id' and 'file_name'")
        if img["id"] in seen:
            raise TrashsegError(f"{json_path}: duplicate image id {img['id']} (images[{i}], {img['file_name']})")
        seen.add(img["id"])
        for key in ("width", "height"):
            if not isinstance(img.get(key), int) or img[key] <= 0:
                raise TrashsegError(f"{json_path}: images[{i}] ({img['file_name']}) has no valid {key}")
        name = str(img["file_name"])
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise TrashsegError(f"{json_path}: images[{i}] file_name {name!r} escapes the data folder")

    cat_to_class = resolve_category_ids(data["categories"], class_map or {}, str(json_path))

    clean_anns = []
    for i, ann in enumerate(data["annotations"]):
        where = f"{json_path}: annotations[{i}] (id {ann.get('id')}, image {ann.get('image_id')})"
        if ann.get("image_id") not in seen:
            raise TrashsegError(f"{where}: points at an image id that is not in 'images'")
        if ann.get("category_id") not in cat_to_class:
            raise TrashsegError(f"{where}: category_id {ann.get('category_id')} is not in 'categories'")
        seg = ann.get("segmentation")
        if isinstance(seg, list):
            seg = _clean_polygons(seg, where, problems)
            if not seg:
                problems.append(f"{where}: no usable polygon left; annotation skipped")
                continue
        elif isinstance(seg, dict):
            if "counts" not in seg or "size" not in seg:
                raise TrashsegError(f"{where}: RLE segmentation needs 'counts' and 'size'")
        else:
            raise TrashsegError(f"{where}: segmentation must be a polygon list or an RLE object")
        clean_anns.append({**ann, "segmentation": seg})

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
