"""`make fit-ensemble`: ensemble weights that maximise out-of-fold mIoU, searched on the simplex.

One streaming pass over the OOF images scores every candidate weighting at once (one confusion
matrix each), so the search never holds more than one image per model in memory. The test set is
never looked at. The weights file is what `make ensemble` then uses.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from tqdm import tqdm

from trashseg.atomic import write_json
from trashseg.cli import base_parser, friendly_errors
from trashseg.config import load_config
from trashseg.data.classes import NUM_CLASSES
from trashseg.data.loaders import load_set
from trashseg.errors import TrashsegError
from trashseg.evaluation.metrics import confusion_matrix, iou_per_class, mean_iou
from trashseg.evaluation.oof import Truth, covered, index_rows, oof_readers
from trashseg.runs import Layout, data_dir, post_flags


def simplex_grid(n: int, step: float) -> list[tuple[float, ...]]:
    """All weightings of n models in multiples of ``step`` summing to 1, plus the equal mean."""
    k = int(round(1 / step))
    grid = {tuple(c / k for c in combo) for combo in itertools.product(range(k + 1), repeat=n) if sum(combo) == k}
    grid.add(tuple([1.0 / n] * n))
    return sorted(grid, reverse=True)


def fit(cfg: dict, models: list[str], step: float, train_all: str) -> dict:
    layout = Layout.of(cfg)
    for m in models:
        layout.require_fold_probs(m, "valid")
    truth = Truth(cfg, load_set(cfg, data_dir(cfg) / train_all, quiet=True), int(cfg["eval"]["score_size"]))
    per_model = {m: index_rows(oof_readers(layout, m)) for m in models}
    names = covered(truth, {n: 1 for n in set.intersection(*(set(r) for r in per_model.values()))}, "fit-ensemble")
    candidates = simplex_grid(len(models), step)
    weights = torch.tensor(candidates, dtype=torch.float32)  # K x M
    cms = np.zeros((len(candidates), NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    per_image = np.zeros(len(candidates))
    for name in tqdm(names, desc="fit-ensemble", leave=False):
        stack = torch.stack(
            [torch.from_numpy(per_model[m][name][0].row(per_model[m][name][1]).astype(np.float32)) for m in models]
        )  # M x C x H x W
        preds = torch.einsum("km,mchw->kchw", weights, stack).argmax(1)  # K x H x W
        target = torch.from_numpy(truth(name))
        for k in range(len(candidates)):
            cm = confusion_matrix(target, preds[k])
            cms[k] += cm
            per_image[k] += mean_iou(cm)
    mious = np.array([mean_iou(cm) for cm in cms])
    best = int(np.nanargmax(mious))

    def summary(k: int) -> dict:
        return {
            "weights": dict(zip(models, candidates[k])),
            "oof_miou": float(mious[k]),
            "oof_miou_per_image": float(per_image[k] / len(names)),
        }

    one_hot = {
        m: summary(candidates.index(tuple(1.0 if j == i else 0.0 for j in range(len(models)))))
        for i, m in enumerate(models)
    }
    equal = summary(candidates.index(tuple([1.0 / len(models)] * len(models))))
    return {
        "models": models,
        "post": layout.post.strip("_") or "none",
        "images": len(names),
        "step": step,
        "per_model": one_hot,
        "equal_mean": equal,
        "fitted": summary(best),
        "fitted_per_class_iou": [None if np.isnan(v) else float(v) for v in iou_per_class(cms[best])],
    }


def main(argv=None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="at least two models (make: MODELS)")
    parser.add_argument("--step", type=float, default=0.05)
    parser.add_argument("--train-all", default="train_all.json")
    args = parser.parse_args(argv)

    @friendly_errors
    def run():
        cfg = load_config(None, args.overrides, models=False)
        if len(set(args.models)) < 2:
            raise TrashsegError(f"MODELS={' '.join(args.models)}: fit-ensemble needs at least two different models")
        if not 0 < args.step <= 0.5:
            raise TrashsegError(f"--step {args.step}: must be within (0, 0.5]")
        result = fit(cfg, args.models, args.step, args.train_all)
        out = Layout.of(cfg).fitted_weights()
        write_json(out, result)
        for m, r in result["per_model"].items():
            print(f"OOF mIoU {m:<22} {r['oof_miou']:.4f} (per image {r['oof_miou_per_image']:.4f})")
        e, f = result["equal_mean"], result["fitted"]
        print(f"OOF mIoU {'equal mean':<22} {e['oof_miou']:.4f} (per image {e['oof_miou_per_image']:.4f})")
        w = ", ".join(f"{m}={v:.2f}" for m, v in f["weights"].items())
        print(f"OOF mIoU {'fitted (' + w + ')':<22} {f['oof_miou']:.4f} (per image {f['oof_miou_per_image']:.4f})")
        print(
            f"wrote {out} ({result['images']} out-of-fold images; `make ensemble{post_flags(Layout.of(cfg).post)}` "
            "now uses these weights)"
        )

    run()


if __name__ == "__main__":
    main()
