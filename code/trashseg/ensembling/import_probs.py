"""`make import-probs`: another toolkit's per-image outputs as the kit's probability files, so they
take part in OOF scoring, `make fit-ensemble` and `make ensemble` like the kit's own models.

The source folder holds one file per image, named after the image's file_name (its path inside the
data folder, or just its stem) with the extension replaced: ``.npy`` arrays C x H x W of
probabilities or logits (softmax is applied when the values are not probabilities, or with
--kind logits), or ``.png`` label maps H x W of class ids. Channels (or label values) are in the
kit's class order unless --classes names them (matched by name). Every image of the split's COCO
file must be there; each is resized to the scoring size (bilinear for probabilities, nearest for
labels) and written, with a manifest, to <runs>/<model>/fold<k>/probs_<split>.npy.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from trashseg.data.classes import CLASSES, NUM_CLASSES, class_index
from trashseg.data.coco import read_json
from trashseg.errors import TrashsegError
from trashseg.inference.probs import ProbsWriter
from trashseg.inference.resize import resize
from trashseg.paths import check_name, contained
from trashseg.runs import Layout
from trashseg.settings import Settings

SUFFIXES = (".npy", ".png")


def source_file(src: Path, file_name: str, source: str) -> Path | None:
    """The file for one image: <src>/<file_name minus extension>.npy|.png, or <src>/<stem>.npy|.png;
    the name (read from ``source``) must stay inside ``src``, symbolic links followed."""
    rel = Path(check_name(file_name, source, f"SRC={src}")).with_suffix("")
    for base in (rel, Path(rel.name)):
        for suffix in SUFFIXES:
            candidate = contained(src, str(base.with_suffix(suffix)), source)
            if candidate.is_file():
                return candidate
    return None


def channel_order(names: list[str] | None, channels: int) -> list[int]:
    """Kit class index of each source channel."""
    if not names:
        if channels != NUM_CLASSES:
            raise TrashsegError(
                f"{channels} channels, the kit has {NUM_CLASSES} classes: name the source's classes "
                'in channel order with CLASSES="Background,General trash,..."'
            )
        return list(range(NUM_CLASSES))
    order = [class_index(n) for n in names]
    if len(set(order)) != len(order):
        raise TrashsegError(f"CLASSES: a class is named twice in {names}")
    return order


def to_probs(path: Path, kind: str, names: list[str] | None, size: int) -> np.ndarray:
    """One source file -> NUM_CLASSES x size x size float32 probabilities."""
    if path.suffix == ".png":
        labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if labels is None or labels.ndim != 2:
            raise TrashsegError(f"{path}: not a single-channel label map (H x W class ids)")
        order = channel_order(names, len(names)) if names else list(range(NUM_CLASSES))
        if labels.max() >= len(order):
            raise TrashsegError(f"{path}: label {int(labels.max())} has no class (classes 0..{len(order) - 1})")
        labels = cv2.resize(np.asarray(order)[labels].astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
        return np.eye(NUM_CLASSES, dtype=np.float32)[labels].transpose(2, 0, 1)
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise TrashsegError(f"{path}: not a plain .npy array ({exc})") from None
    if array.ndim != 3 or not np.issubdtype(array.dtype, np.floating):
        raise TrashsegError(f"{path}: expected a float C x H x W array, got {array.dtype} {array.shape}")
    order = channel_order(names, array.shape[0])
    if len(order) != array.shape[0]:
        raise TrashsegError(f"{path}: {array.shape[0]} channels, CLASSES names {len(order)}")
    x = torch.from_numpy(array.astype(np.float32))
    is_probs = bool(((x >= 0) & (x <= 1)).all()) and torch.allclose(x.sum(0), torch.ones(1), atol=1e-2)
    if kind == "logits" or (kind == "auto" and not is_probs):
        x = x.softmax(0)
    elif kind == "probs" and not is_probs:
        raise TrashsegError(f"{path}: KIND=probs but the channels are not probabilities (sum to 1 per pixel)")
    out = torch.zeros(NUM_CLASSES, *x.shape[1:])
    out[order] = x
    return resize(out[None], size)[0].numpy()


def import_probs(
    cfg: Settings, src: Path, model: str, split: str, json_path: Path, kind: str, names: list[str] | None
) -> Path:
    if not Path(src).is_dir():
        raise TrashsegError(f"SRC={src}: not a folder")
    images = read_json(json_path)["images"]
    file_names = [str(img["file_name"]) for img in images]
    found = {name: source_file(Path(src), name, f"{json_path}: file_name") for name in file_names}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        raise TrashsegError(
            f"SRC={src}: no .npy/.png for {len(missing)} of the {len(file_names)} images of "
            f"{json_path} (first: {missing[0]} -> expected {Path(missing[0]).with_suffix('.npy')})"
        )
    size = cfg.eval.score_size
    fold = cfg.train.fold
    out = Layout.of(cfg).probs(model, fold, split)
    manifest = {
        "image_ids": file_names,
        "coco_ids": [img["id"] for img in images],
        "source_json": str(json_path),
        "split": split,
        "model": model,
        "arch": "imported",
        "encoder": None,
        "fold": fold,
        "checkpoint": None,
        "imported_from": str(src),
        "kind": kind,
        "resolution": size,
        "tta": {},
        "crf": None,
        "classes": list(CLASSES),
    }
    writer = ProbsWriter(out, len(file_names), NUM_CLASSES, size, manifest)
    try:
        for i, name in enumerate(file_names):
            writer.write(i, to_probs(found[name], kind, names, size))
    except BaseException as exc:
        writer.abort(exc)
        raise
    writer.close()
    return out
