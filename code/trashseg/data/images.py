"""Image reading with errors that name the file (cv2 returns None and says nothing, and decodes a
truncated JPEG into a half-grey picture with only a warning on stderr)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from trashseg.errors import TrashsegError

JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
PNG_START, PNG_END = b"\x89PNG", b"IEND\xaeB`\x82"


def check_complete(path: Path, data: bytes) -> None:
    """Refuse JPEG/PNG files whose end marker is missing (a cut-off download or copy)."""
    tail = data[-64:].rstrip(b"\x00")
    if data.startswith(JPEG_START) and not tail.endswith(JPEG_END):
        raise TrashsegError(f"{path}: truncated JPEG (no end-of-image marker)")
    if data.startswith(PNG_START) and not tail.endswith(PNG_END):
        raise TrashsegError(f"{path}: truncated PNG (no IEND chunk)")


def read_rgb(path: str | Path) -> np.ndarray:
    """HxWx3 uint8 RGB; grayscale, RGBA and 16-bit files are converted, EXIF rotation applied."""
    path = Path(path)
    if not path.is_file():
        raise TrashsegError(f"{path}: image file missing")
    data = path.read_bytes()
    check_complete(path, data)
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise TrashsegError(f"{path}: unreadable or not an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def size_mismatch(path: Path, actual_hw: tuple[int, int], json_hw: tuple[int, int], source: str) -> str:
    msg = f"{path}: image is {actual_hw[1]}x{actual_hw[0]} but {source} says {json_hw[1]}x{json_hw[0]}"
    if actual_hw == json_hw[::-1]:
        msg += " (width and height swapped: the file's EXIF orientation rotates it; re-export it upright)"
    return msg
