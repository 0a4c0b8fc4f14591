"""Image reading with errors that name the file (cv2 returns None and says nothing)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .errors import TrashsegError


def read_rgb(path: str | Path) -> np.ndarray:
    """HxWx3 uint8 RGB; grayscale, RGBA and 16-bit files are converted, EXIF rotation applied."""
    path = Path(path)
    if not path.is_file():
        raise TrashsegError(f"{path}: image file missing")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise TrashsegError(f"{path}: unreadable or not an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
