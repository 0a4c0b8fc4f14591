"""The competition CSV: ``image_id,PredictionString``, one row per test image in test.json order,
each holding SIZE*SIZE space-separated class ids. Written streaming and atomically; validated the
same streaming way."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from trashseg.atomic import atomic_open
from trashseg.data.classes import NUM_CLASSES
from trashseg.errors import TrashsegError
from trashseg.paths import check_name

HEADER = ["image_id", "PredictionString"]
SUBMISSION_SIZE = 256


class SubmissionWriter:
    """Append rows to a temp CSV; ``close`` renames it into place."""

    def __init__(self, path: Path):
        self._ctx = atomic_open(path, "w", newline="")
        self._fh = self._ctx.__enter__()
        self._fh.write(",".join(HEADER) + "\n")

    def add(self, image_id: str, classes: np.ndarray) -> None:
        line = " ".join(map(str, np.asarray(classes, dtype=np.uint8).reshape(-1).tolist()))
        self._fh.write(f"{_quote(image_id)},{line}\n")

    def close(self, exc: BaseException | None = None) -> None:
        if exc is None:
            self._ctx.__exit__(None, None, None)
        else:
            self._ctx.__exit__(type(exc), exc, None)


def _quote(value: str) -> str:
    return f'"{value}"' if any(c in value for c in ',"\n') else value


def validate_submission(csv_path: Path, expected_ids: list[str], size: int = SUBMISSION_SIZE) -> int:
    """Raise TrashsegError naming the first problem; return the number of rows checked."""
    rows = 0
    for _ in read_rows(csv_path, expected_ids, size):
        rows += 1
    return rows


def read_rows(csv_path: Path, expected_ids: list[str], size: int = SUBMISSION_SIZE):
    """Yield (image_id, class ids as a flat int64 array) row by row, checking each as it goes (header,
    order against ``expected_ids``, integers, count, range) and the row count at the end."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise TrashsegError(f"{csv_path}: submission file not found")
    n_pixels = size * size
    csv.field_size_limit(max(csv.field_size_limit(), 8 * n_pixels))
    rows = 0
    try:
        for row in _rows(csv_path, expected_ids, n_pixels, size):
            rows += 1
            yield row
    except UnicodeDecodeError as exc:
        raise TrashsegError(f"{csv_path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except csv.Error as exc:
        raise TrashsegError(f"{csv_path}: not a readable CSV ({exc})") from None
    if rows != len(expected_ids):
        raise TrashsegError(f"{csv_path}: {rows} rows, expected {len(expected_ids)} (one per test image)")


def _rows(csv_path: Path, expected_ids: list[str], n_pixels: int, size: int):
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header != HEADER:
            raise TrashsegError(f"{csv_path}: header is {header!r}, expected {','.join(HEADER)}")
        for line_no, row in enumerate(reader, start=2):
            index = line_no - 2
            if len(row) != 2:
                raise TrashsegError(f"{csv_path}: line {line_no} has {len(row)} columns, expected 2")
            if index >= len(expected_ids):
                raise TrashsegError(f"{csv_path}: line {line_no}: more rows than the {len(expected_ids)} test images")
            image_id, pred = row
            if image_id != expected_ids[index]:
                raise TrashsegError(
                    f"{csv_path}: line {line_no}: image_id {image_id!r}, expected "
                    f"{expected_ids[index]!r} (rows must follow test.json order)"
                )
            try:
                if not pred.isascii():
                    raise ValueError(pred)
                values = np.array(pred.split(), dtype=np.int64)
            except (ValueError, OverflowError):
                raise TrashsegError(
                    f"{csv_path}: line {line_no} ({image_id}): PredictionString holds a non-integer"
                ) from None
            if values.size != n_pixels:
                raise TrashsegError(
                    f"{csv_path}: line {line_no} ({image_id}): {values.size} values, "
                    f"expected {n_pixels} ({size}x{size})"
                )
            if values.size and (values.min() < 0 or values.max() >= NUM_CLASSES):
                raise TrashsegError(
                    f"{csv_path}: line {line_no} ({image_id}): class id out of range 0..{NUM_CLASSES - 1}"
                )
            yield image_id, values


def expected_ids_from_test_json(test_json: Path) -> list[str]:
    from trashseg.data.coco import read_json

    return [
        check_name(str(img["file_name"]), f"{test_json}: file_name") for img in read_json(Path(test_json))["images"]
    ]
