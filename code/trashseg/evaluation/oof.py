"""Out-of-fold scoring: every fold's validation probabilities, gathered, against train_all.json.

Each training image was predicted by the one model that never saw it, so this is the honest score
of a recipe, and the only one the kit fits or compares ensembles and tricks on (never the test set).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from trashseg.atomic import write_json
from trashseg.data.coco import CocoSet, read_json
from trashseg.data.masks import MaskCache, read_mask
from trashseg.errors import TrashsegError
from trashseg.evaluation.metrics import Scorer, format_table
from trashseg.inference.probs import ProbsReader
from trashseg.runs import Layout
from trashseg.settings import Settings


def oof_readers(layout: Layout, model: str) -> list[ProbsReader]:
    return [ProbsReader(f) for f in layout.require_fold_probs(model, "valid")]


def index_rows(readers: list[ProbsReader]) -> dict[str, tuple[ProbsReader, int]]:
    """file_name -> (reader, row); an image predicted by two folds is an error (leaky folds)."""
    rows: dict[str, tuple[ProbsReader, int]] = {}
    for r in readers:
        for i, name in enumerate(r.image_ids):
            if name in rows:
                raise TrashsegError(f"{name} is in the validation split of both {rows[name][0].path} and {r.path}")
            rows[name] = (r, i)
    return rows


class Truth:
    """Ground-truth masks of train_all.json at the scoring size, by file_name."""

    def __init__(self, cfg: Settings, train_all: CocoSet, size: int):
        self.size = size
        cache = MaskCache(cfg.data.cache_dir)
        self.paths = dict(zip((train_all.file_name(i) for i in train_all.image_ids), cache.build(train_all)))

    def names(self) -> list[str]:
        return list(self.paths)

    def __call__(self, name: str) -> np.ndarray:
        return cv2.resize(read_mask(self.paths[name]), (self.size, self.size), interpolation=cv2.INTER_NEAREST)


def covered(truth: Truth, rows: dict, what: str) -> list[str]:
    names = [n for n in truth.names() if n in rows]
    missing = len(truth.names()) - len(names)
    if not names:
        raise TrashsegError(f"{what}: none of the train_all.json images has an out-of-fold prediction")
    if missing:
        print(
            f"warning: {what}: {missing} of {len(truth.names())} train_all.json images have no out-of-fold "
            "prediction (folds not all inferred?); scoring the rest"
        )
    return names


def score_model(layout: Layout, truth: Truth, model: str) -> dict:
    readers = oof_readers(layout, model)
    rows = index_rows(readers)
    scorer = Scorer()
    for name in tqdm(covered(truth, rows, model), desc=f"oof {model}", leave=False):
        reader, i = rows[name]
        scorer.update(truth(name), reader.row(i).argmax(0))
    for r in readers:
        r.close()
    result = scorer.result()
    result.update({"model": model, "folds": [str(r.path) for r in readers], "post": layout.post.strip("_") or "none"})
    return result


def compare_with_plain(result: dict, plain_path: Path) -> dict | None:
    """Gain (negative: loss) of a post-processed OOF score over the plain one on the same images."""
    if not plain_path.is_file():
        return None
    plain = read_json(plain_path)
    if plain.get("images") != result["images"]:
        return None
    return {
        "miou": result["miou"] - plain["miou"],
        "miou_per_image": result["miou_per_image"] - plain["miou_per_image"],
    }


def describe_comparison(post: str, comparison: dict | None, model: str) -> str:
    if comparison is None:
        return (
            f"no plain OOF score on the same images to compare with: run `make oof MODELS={model}` "
            "(without TTA/CRF) first"
        )
    word = "gain" if comparison["miou"] >= 0 else "loss"
    return (
        f"{post} vs plain OOF: {word} {comparison['miou']:+.4f} dataset mIoU, "
        f"{comparison['miou_per_image']:+.4f} per-image mIoU"
    )


def score_and_write(layout: Layout, truth: Truth, model: str) -> dict:
    result = score_model(layout, truth, model)
    post = layout.post
    comparison = compare_with_plain(result, Layout(layout.runs_dir).oof_result(model)) if post else None
    if comparison:
        result["vs_plain"] = comparison
    out = layout.oof_result(model)
    write_json(out, result)
    print(f"out-of-fold, {model}{' (' + post.strip('_') + ')' if post else ''}, {result['images']} images:")
    print(format_table(result))
    if post:
        print(describe_comparison(result["post"], comparison, model))
    print(f"wrote {out}")
    return result
