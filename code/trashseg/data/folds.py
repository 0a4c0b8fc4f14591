"""K folds over train_all.json, written in the original names train_data{k}.json / valid_data{k}.json.

Stratified on which classes each image contains (multilabel, iterative stratification), or, with a
group pattern, whole groups (e.g. a recording date in the file name) kept in one fold so that
look-alike neighbouring frames cannot leak between training and validation.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from trashseg.atomic import write_json
from trashseg.data.classes import CLASSES, resolve_category_ids
from trashseg.data.coco import read_json, subset
from trashseg.errors import TrashsegError
from trashseg.settings import Settings


def presence_matrix(data: dict, class_map: dict, source: str) -> np.ndarray:
    """images x classes 0/1: which kit classes each image contains (background excluded)."""
    cat_to_class = resolve_category_ids(data["categories"], class_map, source)
    row = {img["id"]: i for i, img in enumerate(data["images"])}
    y = np.zeros((len(data["images"]), len(CLASSES)), dtype=np.int64)
    for ann in data["annotations"]:
        cls = cat_to_class.get(ann["category_id"])
        if cls is not None and cls < len(CLASSES) and ann["image_id"] in row:
            y[row[ann["image_id"]], cls] = 1
    return y[:, 1:]


def stratified_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number per image by multilabel iterative stratification."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    fold_of = np.full(len(y), -1, dtype=np.int64)
    splitter = MultilabelStratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, valid) in enumerate(splitter.split(np.zeros(len(y)), y)):
        fold_of[valid] = fold
    return fold_of


def group_folds(groups: list[str], k: int, seed: int) -> np.ndarray:
    """Fold number per image, whole groups per fold, largest groups first onto the smallest fold."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    if len(members) < k:
        raise TrashsegError(
            f"K={k}: GROUP finds only {len(members)} groups ({', '.join(sorted(members))}), one or more a fold: "
            f"K={len(members)} keeps each group a fold, or leave GROUP out for {k} multilabel-stratified folds"
        )
    rng = np.random.default_rng(seed)
    names = sorted(members)
    rng.shuffle(names)
    names.sort(key=lambda g: -len(members[g]))  # stable: ties keep the seeded order
    sizes = [0] * k
    fold_of = np.full(len(groups), -1, dtype=np.int64)
    for g in names:
        fold = int(np.argmin(sizes))
        fold_of[members[g]] = fold
        sizes[fold] += len(members[g])
    return fold_of


def group_of(file_name: str, pattern: re.Pattern) -> str:
    match = pattern.search(file_name)
    if not match:
        return "(no match)"
    return "".join(match.groups()) if match.groups() else match.group(0)


def make_folds(
    train_all: Path, out_dir: Path, k: int, seed: int, class_map: dict, group_pattern: str | None = None
) -> list[tuple[int, int]]:
    if k < 2:
        raise TrashsegError(f"K={k}: need at least 2 folds")
    data = read_json(train_all)
    images = data["images"]
    if len(images) < k:
        raise TrashsegError(f"{train_all}: {len(images)} images cannot fill {k} folds")
    if group_pattern:
        pattern = re.compile(group_pattern)
        fold_of = group_folds([group_of(str(img["file_name"]), pattern) for img in images], k, seed)
    else:
        fold_of = stratified_folds(presence_matrix(data, class_map, str(train_all)), k, seed)
    sizes = []
    for fold in range(k):
        valid_ids = [img["id"] for img, f in zip(images, fold_of) if f == fold]
        train_ids = [img["id"] for img, f in zip(images, fold_of) if f != fold]
        write_json(out_dir / f"train_data{fold}.json", subset(data, train_ids))
        write_json(out_dir / f"valid_data{fold}.json", subset(data, valid_ids))
        sizes.append((len(train_ids), len(valid_ids)))
    return sizes


def write_folds(cfg: Settings, data_dir: Path, k: int, seed: int, group_pattern: str | None) -> None:
    """K fold files beside train_all.json, with a line per fold."""
    train_all = data_dir / "train_all.json"
    if not train_all.is_file():
        raise TrashsegError(
            f"{train_all}: not found; put the competition data in {data_dir}/ "
            "or use the bundled sample: DATA_DIR=data/sample"
        )
    sizes = make_folds(train_all, data_dir, k, seed, cfg.data.class_map, group_pattern)
    for fold, (n_train, n_valid) in enumerate(sizes):
        print(
            f"fold {fold}: {n_train} train / {n_valid} valid -> {data_dir}/train_data{fold}.json, valid_data{fold}.json"
        )
