"""Drawing helpers shared by `make report` and `make predict`: the class palette, mask overlays,
PNG writing and matplotlib figures, all written atomically."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from trashseg.atomic import atomic_open, atomic_path
from trashseg.data.classes import CLASSES
from trashseg.errors import TrashsegError

PALETTE = np.array(
    [
        [0, 0, 0],
        [192, 0, 128],
        [0, 128, 192],
        [0, 128, 64],
        [128, 0, 0],
        [64, 0, 128],
        [64, 0, 192],
        [192, 128, 64],
        [192, 192, 128],
        [64, 64, 128],
        [128, 0, 192],
    ],
    dtype=np.uint8,
)


def colorize(mask: np.ndarray) -> np.ndarray:
    out = np.full(mask.shape + (3,), 255, dtype=np.uint8)  # ignore (255) shows white
    valid = mask < len(CLASSES)
    out[valid] = PALETTE[mask[valid]]
    return out


def blend(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return cv2.addWeighted(image, 0.45, colorize(mask), 0.55, 0)


def truth_prediction_panel(image_path: Path, truth: np.ndarray, pred: np.ndarray, size: int) -> np.ndarray:
    """image | truth | prediction side by side, the photo resized to the scoring size of the masks."""
    from trashseg.data.images import read_rgb

    image = cv2.resize(read_rgb(image_path), (size, size), interpolation=cv2.INTER_AREA)
    return np.concatenate([image, blend(image, truth.astype(np.uint8)), blend(image, pred.astype(np.uint8))], 1)


def save_png(path: Path, rgb: np.ndarray) -> None:
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise TrashsegError(f"{path}: could not encode PNG")
    with atomic_open(path, "wb") as fh:
        fh.write(png.tobytes())


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """Write the figure atomically, then free it."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)


def legend_png(path: Path) -> None:
    plt = pyplot()
    from matplotlib.patches import Patch

    fig = plt.figure(figsize=(3.2, 3.4))
    fig.legend(
        handles=[Patch(color=PALETTE[i] / 255, label=f"{i} {n}") for i, n in enumerate(CLASSES)],
        loc="center",
        frameon=False,
    )
    save_figure(fig, path)
