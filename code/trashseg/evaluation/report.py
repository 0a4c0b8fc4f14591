"""`make report`: where a run fails, as one page to open from the file system (<run>/report/index.html,
no server, no network): the run's headline and its settings that differ from the defaults, the
per-class IoU table, the confusion matrix, the training curves and a gallery of every validation image
(or the N worst), worst first: photo | truth | prediction | errors coloured by their true class, each
with its mIoU and its largest confusions, filterable by class. Predictions come from the same predictor as infer
and eval, so the table re-scores the trainer's own validation figure; when make infer has already
saved this checkpoint's validation probabilities with the same views, the report scores that file
instead of predicting again (the demo's reports take seconds, not a TTA pass each)."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from trashseg.atomic import atomic_open
from trashseg.data.classes import CLASSES
from trashseg.data.loaders import load_set
from trashseg.drawing import blend, colorize, legend_png, pyplot, save_figure, save_png
from trashseg.errors import TrashsegError
from trashseg.evaluation.metrics import Scorer, class_note
from trashseg.evaluation.oof import Truth
from trashseg.evaluation.pages import write_page
from trashseg.inference.predictor import Predictor, saved_probabilities
from trashseg.runs import data_json, load_run, probs_path


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


def error_panel(image: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """The photo greyed, its wrongly predicted pixels painted in their true class's colour."""
    grey = np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2) // 2 + 64
    wrong = (truth != pred) & (truth < len(CLASSES))
    out = grey.copy()
    out[wrong] = colorize(truth.astype(np.uint8))[wrong]
    return out


def confusions(truth: np.ndarray, pred: np.ndarray, top: int = 3) -> list[str]:
    """The image's largest mistakes, 'true -> predicted (share of the image)', largest first."""
    valid = truth < len(CLASSES)
    cm = np.bincount(truth[valid].astype(np.int64) * len(CLASSES) + pred[valid], minlength=len(CLASSES) ** 2)
    cm = cm.reshape(len(CLASSES), len(CLASSES))
    np.fill_diagonal(cm, 0)
    total = max(int(valid.sum()), 1)
    order = np.argsort(cm, axis=None)[::-1][:top]
    return [
        f"{CLASSES[i // len(CLASSES)]} -> {CLASSES[i % len(CLASSES)]} ({cm.flat[i] / total:.1%})"
        for i in order
        if cm.flat[i] / total >= 0.005
    ]


def changed_settings(run: Path) -> list[tuple[str, str, str]]:
    """(key, value, source) of the run's settings that are not the kit's defaults (settings.txt)."""
    path = run / "settings.txt"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(":")
        value, _, source = rest.partition("#")
        if source.strip() and not source.strip().startswith("defaults"):
            out.append((key.strip(), value.strip(), source.strip()))
    return out


def headline(run: Path, predictor: Predictor, result: dict) -> dict:
    """What the page opens with: the run's model, preset, fold, epochs, best epoch, scores, time, commit."""
    import json

    from trashseg import registry

    cfg = predictor.ckpt_cfg
    with open(run / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    record = json.loads((run / "run_record.json").read_text()) if (run / "run_record.json").is_file() else {}
    oof = run.parent / "oof.json"
    return {
        "model": f"{cfg.model.arch} on {cfg.model.encoder}",
        "preset": cfg.model.name if cfg.model.name in registry.presets() else "(none)",
        "fold": cfg.train.fold,
        "epochs": f"{len(rows)} of {cfg.train.epochs}",
        "best epoch": predictor.epoch,
        "validation mIoU (dataset)": f"{result['miou']:.4f}",
        "validation mIoU (per image)": f"{result['miou_per_image']:.4f}",
        "OOF mIoU (per image, make oof)": f"{json.loads(oof.read_text())['miou_per_image']:.4f}"
        if oof.is_file()
        else "(make oof)",
        "scored with": (
            f"TTA: flip x scales {', '.join(map(str, predictor.tta['scales']))}" if predictor.tta else "no TTA"
        )
        + f"; {predictor.speed.describe()}",
        "train seconds": f"{sum(float(r.get('seconds') or 0) for r in rows):.0f}",
        "commit": (record.get("git_commit") or "?")[:12] + (" (dirty tree)" if record.get("git_dirty") else ""),
    }


def draw_gallery(out: Path, predictions, size: int, n_worst: int | None) -> tuple[dict, list[dict]]:
    """Score ``predictions`` ((file_name, image path, truth, prediction) at the scoring size) and draw
    every image, or the ``n_worst``, worst first into out/gallery/: (the scorer's result, the rows)."""
    from trashseg.data.images import read_rgb

    gallery = out / "gallery"
    if gallery.is_dir():  # a gallery of another N or run: redrawn whole
        for old in gallery.glob("*.png"):
            old.unlink()
    gallery.mkdir(parents=True, exist_ok=True)
    scorer, items = Scorer(), []
    for file_name, image_path, truth, pred in predictions:
        scorer.update(truth, pred)
        present = sorted({int(c) for c in np.unique(truth) if c < len(CLASSES)})
        items.append(
            (scorer.per_image[-1], file_name, image_path, truth.astype(np.uint8), pred.astype(np.uint8), present)
        )
    items.sort(key=lambda it: (not np.isfinite(it[0]), it[0] if np.isfinite(it[0]) else 0.0))  # worst first
    shown = []
    for rank, (miou, file_name, image_path, truth, pred, present) in enumerate(items[: n_worst or len(items)], 1):
        image = cv2.resize(read_rgb(image_path), (size, size), interpolation=cv2.INTER_AREA)
        panel = np.concatenate([image, blend(image, truth), blend(image, pred), error_panel(image, truth, pred)], 1)
        name = f"{rank:04d}_{Path(image_path).stem}.png"
        save_png(gallery / name, panel)
        shown.append(
            {
                "rank": rank,
                "file": file_name,
                "png": f"gallery/{name}",
                "miou": None if not np.isfinite(miou) else round(float(miou), 4),
                "classes": [CLASSES[c] for c in present],
                "confusions": confusions(truth, pred),
            }
        )
    return scorer.result(), shown


def write_pictures(out: Path, result: dict, title: str) -> None:
    with atomic_open(out / "per_class_iou.md") as fh:
        fh.write(f"# {title}: {result['images']} images\n\n" + iou_table(result))
    confusion_png(np.array(result["confusion_matrix"]), out / "confusion_matrix.png", title)
    legend_png(out / "legend.png")


def report(run: Path, n_worst: int | None = None) -> Path:
    """The run's report folder: per_class_iou.md, the pictures, gallery/ (every validation image, or
    the ``n_worst``, worst first) and index.html, one page that opens from the file system."""
    cfg, ckpt = load_run(run)
    predictor = Predictor(ckpt, cfg)
    cs = load_set(cfg, data_json(cfg, "valid_json"), quiet=True)
    out = run / "report"
    saved_path = run / probs_path(cfg, "valid").name  # this folder's, wherever the run was moved
    saved = saved_probabilities(predictor, cs, saved_path)

    def predicted():
        for index, probs, truth in predictor.predict_set(cs, with_masks=True, desc="report", progress=False):
            image_id = cs.image_ids[index]
            yield cs.file_name(image_id), cs.image_path(image_id), truth, probs.argmax(0)

    def read_back():
        truth = Truth(cfg, cs, predictor.size)
        for index, image_id in enumerate(cs.image_ids):
            name = cs.file_name(image_id)
            yield name, cs.image_path(image_id), truth(name), saved.row(index).argmax(0)

    if saved is not None:
        print(f"report: scoring {saved_path} (make infer wrote it from this checkpoint; not predicting again)")
    result, shown = draw_gallery(out, read_back() if saved is not None else predicted(), predictor.size, n_worst)
    title = f"{predictor.ckpt_cfg.model.arch} fold {predictor.ckpt_cfg.train.fold}, epoch {predictor.epoch}"
    write_pictures(out, result, title)
    curves_png(run / "metrics.csv", out / "curves.png")
    head = headline(run, predictor, result)
    if saved is not None:
        head["scored with"] += f"; read from {saved_path.name} (make infer, float16)"
    report_page(out / "index.html", str(run), head, changed_settings(run), result, shown, title)
    if saved is not None:
        saved.close()
    return out


def ensemble_report(cfg, models: list[str], n_worst: int | None = None) -> Path:
    """The same page for merged out-of-fold probabilities: each image's folds of ``models`` merged
    with the fitted weights (make fit-ensemble, when fitted on these models) or equal ones, against
    train_all.json's truth -> RUNS/report-<models><variant>/index.html."""
    import json

    from trashseg.evaluation.oof import covered, index_rows, oof_readers
    from trashseg.runs import Layout, data_dir

    layout = Layout.of(cfg)
    train_all = load_set(cfg, data_dir(cfg) / "train_all.json", quiet=True)
    size = cfg.eval.score_size
    truth = Truth(cfg, train_all, size)
    per_model = {m: index_rows(oof_readers(layout, m)) for m in models}
    names = covered(truth, {n: 1 for n in set.intersection(*(set(r) for r in per_model.values()))}, "report")
    weights, source = [1.0 / len(models)] * len(models), "equal"
    fitted = layout.fitted_weights()
    if fitted.is_file():
        saved = json.loads(fitted.read_text())
        if saved.get("models") == models:
            weights, source = [saved["fitted"]["weights"][m] for m in models], f"fitted ({fitted})"
    by_name = {train_all.file_name(i): i for i in train_all.image_ids}
    out = layout.runs_dir / f"report-{'-'.join(models)}{layout.post}"

    def predictions():
        for name in names:
            merged = sum(
                w * per_model[m][name][0].row(per_model[m][name][1]).astype(np.float32) for m, w in zip(models, weights)
            )
            yield name, train_all.image_path(by_name[name]), truth(name), merged.argmax(0)

    result, shown = draw_gallery(out, predictions(), size, n_worst)
    title = f"ensemble of {' + '.join(models)}, out of fold"
    write_pictures(out, result, title)
    head = {
        "models": ", ".join(f"{m} (w={w:.2f})" for m, w in zip(models, weights)),
        "weights": source,
        "post-processing": layout.post.strip("_") or "none (TTA=1 for the TTA files)",
        "out-of-fold mIoU (dataset)": f"{result['miou']:.4f}",
        "out-of-fold mIoU (per image)": f"{result['miou_per_image']:.4f}",
        "images": result["images"],
    }
    report_page(out / "index.html", str(layout.runs_dir), head, [], result, shown, title)
    return out


def report_page(
    path: Path, where: str, head: dict, settings: list, result: dict, shown: list[dict], title: str
) -> None:
    from trashseg.drawing import PALETTE

    write_page(
        path,
        "report.html.j2",
        title=title,
        run=where,
        head=head,
        settings=settings,
        curves=(path.parent / "curves.png").is_file(),
        result=result,
        note={n: class_note(n, result) for n in CLASSES},
        legend=[(n, "#" + "".join(f"{int(v):02x}" for v in PALETTE[i])) for i, n in enumerate(CLASSES)],
        shown=shown,
        classes=CLASSES,
        images=result["images"],
    )
