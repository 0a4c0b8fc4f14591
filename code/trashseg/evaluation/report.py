"""`make report` and `make predict`: what a run learned, as pictures and a table.

report: per-class IoU table (markdown), normalised confusion matrix, training curves and overlays
(image | truth | prediction) for N validation images, written to <run>/report/.
predict: overlays and a colour legend for any folder of photos, with the run's best checkpoint.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml

from trashseg.atomic import atomic_open, atomic_path
from trashseg.data.classes import CLASSES
from trashseg.cli import friendly_errors
from trashseg.config import upgrade
from trashseg.errors import TrashsegError
from trashseg.data.images import read_rgb
from trashseg.inference.predictor import load_trained_model
from trashseg.data.loaders import load_set, make_loader
from trashseg.evaluation.metrics import Scorer, class_note
from trashseg.modeling.architectures import resolve_device
from trashseg.inference.tta import probabilities, tta_views
from trashseg.runs import data_json
from trashseg.data.transforms import eval_transform

PALETTE = np.array([[0, 0, 0], [192, 0, 128], [0, 128, 192], [0, 128, 64], [128, 0, 0], [64, 0, 128],
                    [64, 0, 192], [192, 128, 64], [192, 192, 128], [64, 64, 128], [128, 0, 192]], dtype=np.uint8)


def colorize(mask: np.ndarray) -> np.ndarray:
    out = np.full(mask.shape + (3,), 255, dtype=np.uint8)  # ignore (255) shows white
    valid = mask < len(CLASSES)
    out[valid] = PALETTE[mask[valid]]
    return out


def blend(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return cv2.addWeighted(image, 0.45, colorize(mask), 0.55, 0)


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
    fig.legend(handles=[Patch(color=PALETTE[i] / 255, label=f"{i} {n}") for i, n in enumerate(CLASSES)],
               loc="center", frameon=False)
    save_figure(fig, path)


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
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
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
    lines += [f"| {n} | {'n/a' if v is None else f'{v:.4f}'}{class_note(n, result)} |"
              for n, v in result["per_class_iou"].items()]
    lines += [f"| **mIoU (dataset)** | **{result['miou']:.4f}** |",
              f"| mIoU (per image) | {result['miou_per_image']:.4f} |",
              f"| pixel accuracy | {result['pixel_accuracy']:.4f} |"]
    return "\n".join(lines) + "\n"


def load_run(run: Path) -> tuple[dict, Path]:
    cfg_path, ckpt = run / "config.yaml", run / "best.pt"
    if not cfg_path.is_file() or not ckpt.is_file():
        raise TrashsegError(f"{run}: not a run folder (needs config.yaml and best.pt from `make train-*`)")
    return upgrade(yaml.safe_load(cfg_path.read_text())), ckpt


@torch.no_grad()
def report(run: Path, n_overlays: int) -> Path:
    cfg, ckpt = load_run(run)
    device = resolve_device(str(cfg["train"]["device"]))
    model, ckpt_cfg, state = load_trained_model(ckpt, device)
    size = int(cfg["eval"]["score_size"])
    cs = load_set(cfg, data_json(cfg, "valid_json"), quiet=True)
    loader = make_loader(cfg, cs, eval_transform(ckpt_cfg), with_masks=True, batch_size=int(cfg["eval"]["batch_size"]),
                         mask_size=size, progress=False)
    out = run / "report"
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    scorer, shown = Scorer(), 0
    for batch in loader:
        preds = probabilities(model, batch["image"].to(device), size, **tta_views(cfg)).argmax(1).cpu().numpy()
        truth = batch["mask"].numpy()
        scorer.update(truth, preds)
        for index, t, p in zip(batch["index"].tolist(), truth, preds):
            if shown < n_overlays:
                item = loader.dataset.items[index]
                image = cv2.resize(read_rgb(item.image_path), (size, size), interpolation=cv2.INTER_AREA)
                panel = np.concatenate([image, blend(image, t.astype(np.uint8)), blend(image, p.astype(np.uint8))], 1)
                save_png(out / "overlays" / f"{shown:02d}_{Path(item.image_path).stem}.png", panel)
                shown += 1
    result = scorer.result()
    title = f"{ckpt_cfg['model']['arch']} fold {ckpt_cfg['train']['fold']}, epoch {state.get('epoch')}"
    with atomic_open(out / "per_class_iou.md") as fh:
        fh.write(f"# {title}: validation ({result['images']} images, {size}x{size})\n\n" + iou_table(result))
    confusion_png(np.array(result["confusion_matrix"]), out / "confusion_matrix.png", title)
    curves_png(run / "metrics.csv", out / "curves.png")
    legend_png(out / "legend.png")
    return out


@torch.no_grad()
def predict_folder(run: Path, images: Path, out: Path) -> list[Path]:
    cfg, ckpt = load_run(run)
    device = resolve_device(str(cfg["train"]["device"]))
    model, ckpt_cfg, _ = load_trained_model(ckpt, device)
    files = sorted(p for p in Path(images).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"))
    if not files:
        raise TrashsegError(f"{images}: no .jpg/.png images found")
    transform = eval_transform(ckpt_cfg)
    written = []
    for path in files:
        image = read_rgb(path)
        x = transform(image=image)["image"][None].to(device)
        probs = probabilities(model, x, int(cfg["eval"]["score_size"]), **tta_views(cfg))[0].cpu().numpy()
        probs = np.stack([cv2.resize(p, (image.shape[1], image.shape[0])) for p in probs])
        target = out / f"{path.stem}_overlay.png"
        save_png(target, np.concatenate([image, blend(image, probs.argmax(0).astype(np.uint8))], 1))
        written.append(target)
    legend_png(out / "legend.png")
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--images", type=Path, help="predict: a folder of photos")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    @friendly_errors
    def run():
        if args.images:
            written = predict_folder(args.run, args.images, args.out or args.run / "predict")
            print(f"wrote {len(written)} overlays and legend.png to {written[0].parent}")
        else:
            out = report(args.run, args.n)
            print((out / "per_class_iou.md").read_text())
            print(f"wrote {out}/per_class_iou.md, confusion_matrix.png, curves.png, legend.png, overlays/")

    run()


if __name__ == "__main__":
    main()
