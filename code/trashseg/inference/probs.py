"""Saved probabilities: an (N, C, S, S) float16 ``.npy`` plus a JSON manifest beside it.

The manifest says which images (in order), which model/fold/checkpoint and which resolution the
rows hold, so the ensemble can refuse files that do not line up instead of averaging nonsense.
Rows are read one image at a time with plain file reads, so memory stays flat however many
images the file holds. What decides a file's values (``making``) and whether a saved file still holds
them (``probs_current``) live here too, with no torch, so cv and the pipeline plan without it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from trashseg.atomic import atomic_path, write_json
from trashseg.data.classes import CLASSES
from trashseg.errors import TrashsegError
from trashseg.settings import Settings

DTYPE = np.float16


def manifest_path(npy: Path) -> Path:
    return Path(npy).with_suffix(".json")


class ProbsWriter:
    """Fill an ``.npy`` row by row through a memmap of a temp file; publish it on ``close``."""

    def __init__(self, path: Path, n: int, num_classes: int, size: int, manifest: dict):
        self.path = Path(path)
        self.manifest = {**manifest, "shape": [n, num_classes, size, size], "dtype": "float16"}
        self._ctx = atomic_path(self.path, suffix=".npy")
        tmp = self._ctx.__enter__()
        self._array = np.lib.format.open_memmap(tmp, mode="w+", dtype=DTYPE, shape=(n, num_classes, size, size))

    def write(self, index: int, probs: np.ndarray) -> None:
        self._array[index] = probs.astype(DTYPE)

    def close(self) -> None:
        self._array.flush()
        del self._array
        self._ctx.__exit__(None, None, None)
        write_json(manifest_path(self.path), self.manifest)

    def abort(self, exc) -> None:
        del self._array
        self._ctx.__exit__(type(exc), exc, None)


class ProbsReader:
    """Random access to rows of a saved probability file without mapping the whole file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        mpath = manifest_path(self.path)
        if not self.path.is_file():
            raise TrashsegError(f"{self.path}: probability file not found")
        if not mpath.is_file():
            raise TrashsegError(f"{self.path}: manifest {mpath.name} missing beside it")
        try:
            self.manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise TrashsegError(f"{mpath}: manifest is not valid JSON ({exc})") from None
        with open(self.path, "rb") as fh:
            try:
                version = np.lib.format.read_magic(fh)
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(fh)
            except ValueError as exc:
                raise TrashsegError(f"{self.path}: not a .npy file ({exc})") from None
            self.offset = fh.tell()
        if fortran or dtype != np.dtype(DTYPE) or len(shape) != 4:
            raise TrashsegError(f"{self.path}: expected a C-ordered float16 N,C,H,W array, got {dtype} {shape}")
        if list(shape) != self.manifest.get("shape"):
            raise TrashsegError(
                f"{self.path}: array shape {list(shape)} differs from its manifest {self.manifest.get('shape')}"
            )
        self.shape = shape
        self.row_items = int(np.prod(shape[1:]))
        expected = self.offset + shape[0] * self.row_items * 2
        if self.path.stat().st_size != expected:
            raise TrashsegError(
                f"{self.path}: file is {self.path.stat().st_size} bytes, expected {expected} (truncated?)"
            )
        self._fh = open(self.path, "rb")

    @property
    def image_ids(self) -> list:
        return self.manifest["image_ids"]

    def __len__(self) -> int:
        return self.shape[0]

    def row(self, index: int) -> np.ndarray:
        self._fh.seek(self.offset + index * self.row_items * 2)
        data = np.fromfile(self._fh, dtype=DTYPE, count=self.row_items)
        return data.reshape(self.shape[1:])

    def close(self) -> None:
        self._fh.close()


def tta_views(cfg: Settings) -> dict:
    """Keyword arguments for ``probabilities`` from the config's ``tta`` section."""
    tta = cfg.tta
    if not tta.enabled:
        return {}
    return {"hflip": tta.hflip, "scales": tuple(float(s) for s in tta.scales)}


def making(cfg: Settings, checkpoint_sha256: str) -> dict:
    """The manifest keys that decide a probability file's values (the checkpoint's content, scoring
    size, TTA views, CRF, classes), as JSON reads them back: what infer writes and what a reader
    compares against to know whether a saved file is still current."""
    views = {
        "checkpoint_sha256": checkpoint_sha256,
        "resolution": cfg.eval.score_size,
        "tta": tta_views(cfg),
        "crf": cfg.crf.model_dump() if cfg.crf.enabled else None,
        "classes": list(CLASSES),
    }
    return json.loads(json.dumps(views))  # tuples as JSON lists


def probs_current(path: Path, now: dict, image_names: list[str]) -> bool:
    """Whether the probability file at ``path`` holds what infer would write now (``now``: making()
    of today's settings and checkpoint) for these images, in this order."""
    mpath = manifest_path(path)
    if not (Path(path).is_file() and mpath.is_file()):
        return False
    try:
        saved = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return all(saved.get(key) == value for key, value in now.items()) and saved.get("image_ids") == image_names
