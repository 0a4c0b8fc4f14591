"""K folds over train_all.json, written in the original names train_data{k}.json / valid_data{k}.json.

Stratified on which classes each image contains (multilabel, iterative stratification), or, with a
group pattern, whole groups (e.g. a recording date in the file name) kept in one fold so that
look-alike neighbouring frames cannot leak between training and validation.

Beside them, folds.json records how they were made (K, seed, group pattern, the train_all.json they
split, by content hash): a training or `make cv` on fold files of another K or another train_all.json
stops with one line instead of judging on stale folds. Fold files from elsewhere (the competition's
own) have no record and are taken as they are.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from trashseg.atomic import write_json
from trashseg.data.classes import CLASSES, resolve_category_ids
from trashseg.data.coco import read_json, subset
from trashseg.errors import TrashsegError
from trashseg.hashing import file_sha256
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
    (out_dir / RECORD).unlink(missing_ok=True)  # no record of the old folds while the new ones are written
    for fold in range(k):
        valid_ids = [img["id"] for img, f in zip(images, fold_of) if f == fold]
        train_ids = [img["id"] for img, f in zip(images, fold_of) if f != fold]
        write_json(out_dir / f"train_data{fold}.json", subset(data, train_ids))
        write_json(out_dir / f"valid_data{fold}.json", subset(data, valid_ids))
        sizes.append((len(train_ids), len(valid_ids)))
    stale = k
    while (out_dir / f"train_data{stale}.json").is_file() or (out_dir / f"valid_data{stale}.json").is_file():
        for name in (f"train_data{stale}.json", f"valid_data{stale}.json"):  # folds of an earlier, larger K
            (out_dir / name).unlink(missing_ok=True)
        print(f"removed {out_dir}/train_data{stale}.json, valid_data{stale}.json (an earlier K's fold)")
        stale += 1
    record = {"k": k, "seed": seed, "group": group_pattern, "train_all": train_all.name}
    write_json(out_dir / RECORD, {**record, "train_all_sha256": file_sha256(train_all)})
    return sizes


RECORD = "folds.json"


def check_folds(data_dir: Path, fold: int | None = None, k: int | None = None) -> None:
    """Stop with one line when the kit's fold files in ``data_dir`` were made with another K than
    ``k`` (cv), hold no fold ``fold`` (train), or split another train_all.json than today's."""
    path = Path(data_dir) / RECORD
    if not path.is_file():
        return  # fold files the kit did not write (the competition's): nothing recorded to hold them to
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrashsegError(f"{path}: unreadable ({exc}); run make folds again") from None
    made = f"made by `make folds K={record.get('k')}`"
    if k is not None and record.get("k") != k:
        raise TrashsegError(f"K={k}: the fold files in {data_dir} were {made} ({path}): run make folds K={k} first")
    if fold is not None and not 0 <= fold < int(record.get("k") or 0):
        raise TrashsegError(f"FOLD={fold}: the fold files in {data_dir} were {made}: folds 0..{record.get('k', 0) - 1}")
    train_all = Path(data_dir) / str(record.get("train_all") or "train_all.json")
    if train_all.is_file() and file_sha256(train_all) != record.get("train_all_sha256"):
        raise TrashsegError(
            f"{train_all} changed since the fold files were {made} ({path}): run make folds again "
            "so that no image is judged on stale folds"
        )


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
