"""`make predict`: a run's best checkpoint on any folder of photos (no annotations needed), as
overlay PNGs (photo | prediction) plus a colour legend, through the same predictor as every stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trashseg.data.images import read_rgb
from trashseg.drawing import blend, legend_png, save_png
from trashseg.errors import TrashsegError
from trashseg.inference.predictor import Predictor
from trashseg.paths import contained
from trashseg.runs import load_run

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def predict_folder(run: Path, images: Path, out: Path) -> list[Path]:
    found = sorted(p for p in Path(images).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    files = [contained(images, str(p.relative_to(images)), f"IMAGES={images}") for p in found]
    if not files:
        raise TrashsegError(f"{images}: no .jpg/.png images found")
    cfg, ckpt = load_run(run)
    predictor = Predictor(ckpt, cfg)
    written = []
    for path in files:
        image = read_rgb(path)
        label = predictor.predict_image(image).argmax(0).astype("uint8")
        target = out / f"{path.stem}_overlay.png"
        save_png(target, np.concatenate([image, blend(image, label)], 1))
        written.append(target)
    legend_png(out / "legend.png")
    return written
