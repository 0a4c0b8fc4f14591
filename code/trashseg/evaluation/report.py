"""`make report`: what a run learned, as pictures and a table: the per-class IoU table (markdown),
the normalised confusion matrix, training curves and overlays (image | truth | prediction) for N
validation images, written to <run>/report/. Predictions come from the same predictor as infer
and eval, so the table re-scores the trainer's own validation figure."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from trashseg.atomic import atomic_open
from trashseg.data.classes import CLASSES
from trashseg.data.loaders import load_set
from trashseg.drawing import legend_png, pyplot, save_figure, save_png, truth_prediction_panel
from trashseg.errors import TrashsegError
from trashseg.evaluation.metrics import Scorer, class_note
from trashseg.inference.predictor import Predictor
from trashseg.runs import data_json, load_run


def confusion_png(cm: np.ndarray, path: Path, title: str) -> None:
    plt = pyplot()
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=60, ha="right")
    ax.set_yticks(range(len(CLASSES)), CLASSES)
    ax.set_xlabel("prediction")
    ax.set_ylabel("truth (row-normalised)")
    for i in range(len(CLASSES)):
        for j in range(len(CLASSES)):
            if norm[i, j] >= 0.01:
                ax.text(
                    j,
                    i,
                    f"{norm[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    save_figure(fig, path)


def curves_png(metrics_csv: Path, path: Path) -> None:
    plt = pyplot()
    with open(metrics_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise TrashsegError(f"{metrics_csv}: no epochs recorded")
    epoch = [int(r["epoch"]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(epoch, [float(r["train_loss"]) for r in rows], "o-", label="train")
    axes[0].plot(epoch, [float(r["val_loss"]) for r in rows], "o-", label="validation")
    axes[0].set_title("loss")
    axes[0].legend()
    axes[1].plot(epoch, [float(r["val_miou"]) for r in rows], "o-", label="dataset mIoU")
    axes[1].plot(epoch, [float(r["val_miou_per_image"]) for r in rows], "o-", label="per-image mIoU")
    axes[1].set_title("validation mIoU")
    axes[1].legend()
    axes[2].plot(epoch, [float(r["lr"]) for r in rows], "o-")
    axes[2].set_yscale("log")
    axes[2].set_title("learning rate")
    for ax in axes:
        ax.set_xlabel("epoch")
    save_figure(fig, path)


def iou_table(result: dict) -> str:
    lines = ["| class | IoU |", "|---|---|"]
    lines += [
        f"| {n} | {'n/a' if v is None else f'{v:.4f}'}{class_note(n, result)} |"
        for n, v in result["per_class_iou"].items()
    ]
    lines += [
        f"| **mIoU (dataset)** | **{result['miou']:.4f}** |",
        f"| mIoU (per image) | {result['miou_per_image']:.4f} |",
        f"| pixel accuracy | {result['pixel_accuracy']:.4f} |",
    ]
    return "\n".join(lines) + "\n"


def report(run: Path, n_overlays: int) -> Path:
    cfg, ckpt = load_run(run)
    predictor = Predictor(ckpt, cfg)
    size = predictor.size
    cs = load_set(cfg, data_json(cfg, "valid_json"), quiet=True)
    out = run / "report"
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    scorer, shown = Scorer(), 0
    for index, probs, truth in predictor.predict_set(cs, with_masks=True, desc="report", progress=False):
        pred = probs.argmax(0)
        scorer.update(truth, pred)
        if shown < n_overlays:
            image_path = cs.image_path(cs.image_ids[index])
            panel = truth_prediction_panel(image_path, truth, pred, size)
            save_png(out / "overlays" / f"{shown:02d}_{Path(image_path).stem}.png", panel)
            shown += 1
    result = scorer.result()
    title = f"{predictor.ckpt_cfg.model.arch} fold {predictor.ckpt_cfg.train.fold}, epoch {predictor.epoch}"
    with atomic_open(out / "per_class_iou.md") as fh:
        fh.write(f"# {title}: validation ({result['images']} images, {size}x{size})\n\n" + iou_table(result))
    confusion_png(np.array(result["confusion_matrix"]), out / "confusion_matrix.png", title)
    curves_png(run / "metrics.csv", out / "curves.png")
    legend_png(out / "legend.png")
    return out
