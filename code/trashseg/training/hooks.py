"""What a training run does besides stepping, as hooks the trainer calls at named points (after
each optimizer step, at each epoch's end on rank 0, at the end), each readable and testable alone:
the EMA of the weights, the best/last/kept checkpoints and metrics.csv, the live tracking, the printed
epoch line and a sweep's pruning. How an epoch is judged is a rule beside them: validation on the
fold, or, on all data, the training loss (``judge``)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trashseg.atomic import atomic_open
from trashseg.errors import TrashsegError
from trashseg.modeling.checkpoint import save_checkpoint, unwrap
from trashseg.runs import epoch_checkpoint, epoch_checkpoints
from trashseg.runtime import distributed
from trashseg.settings import Settings
from trashseg.training.ema import build_ema

CSV_FIELDS = [
    "epoch",
    "lr",
    "train_loss",
    "val_loss",
    "val_miou",
    "val_miou_per_image",
    "val_pixel_accuracy",
    "images_per_s",
    "seconds",
]


@dataclass
class Epoch:
    """One finished epoch as the hooks see it."""

    number: int
    lr: float
    train_loss: float
    rate: float
    seconds: float
    val: dict
    improved: bool
    step: int  # the global step at its end
    kept: list = field(default_factory=list)  # validation samples kept for overlays


class Hook:
    """A hook may act after each optimizer step, at each epoch's end and at the end of the run, and
    keep a state in last.pt (``state`` / ``load``, for an exact resume). Every method is optional."""

    def on_step(self, step: int, loss: float, lr: float) -> None:
        pass

    def on_epoch_end(self, run, epoch: Epoch) -> None:
        pass

    def on_train_end(self, run, failed: bool) -> None:
        pass

    def state(self) -> dict:
        return {}

    def load(self, training_state: dict, where: Path) -> None:
        pass


def judge(run, train_loss: float, validate) -> tuple[dict, bool]:
    """The epoch's result and whether it is the best so far: on a fold, the validation mIoU
    (``validate()``); on all data (no validation), the training loss averaged over ranks, and every
    epoch counts as the best, so best.pt holds the last (EMA) weights."""
    if run.valid_loader is not None:
        val = validate()
        return val, run.best is None or val["miou"] > run.best["miou"]
    total = distributed.sum_array(np.array([train_loss]), run.ctx, run.device)[0]
    return {"loss": float(total) / run.ctx.world}, True


class EmaHook(Hook):
    """An exponential moving average of the weights, updated after every optimizer step (every rank):
    what validation scores and best.pt holds (training/ema.py says how the decay warms up)."""

    def __init__(self, model, cfg: Settings):
        self.ema = build_ema(model, cfg)
        self.model = model

    @property
    def enabled(self) -> bool:
        return self.ema is not None

    def scored(self, model):
        return self.ema.module if self.ema is not None else model

    def on_step(self, step: int, loss: float, lr: float) -> None:
        if self.ema is not None:
            self.ema.update(unwrap(self.model), step=step)

    def state(self) -> dict:
        return {"ema": self.ema.module.state_dict()} if self.ema is not None else {}

    def load(self, training_state: dict, where: Path) -> None:
        if self.ema is None:
            return
        if "ema" not in training_state:
            raise TrashsegError(f"{where}: trained without EMA; resume with ema.enabled=false")
        self.ema.module.load_state_dict(training_state["ema"])


def write_metrics_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_open(path, "w", newline="") as fh:
        fh.write(buf.getvalue())


class CheckpointHook(Hook):
    """best.pt when the epoch improved, the last ``train.keep_last`` epochs' weights (epoch<e>.pt, for
    `make soup`), last.pt with everything a resume needs (every hook's state included), then the
    metrics.csv row: never ahead of the checkpoint."""

    def __init__(self, out: Path, keep_last: int):
        self.out, self.keep_last = out, keep_last

    def on_epoch_end(self, run, epoch: Epoch) -> None:
        run.rows.append(metrics_row(epoch, run.valid_loader is not None))
        scored = run.scored()
        if epoch.improved:
            save_checkpoint(self.out / "best.pt", scored, run.cfg, epoch.number, epoch.val)
        if self.keep_last > 0:
            save_checkpoint(epoch_checkpoint(self.out, epoch.number), scored, run.cfg, epoch.number, epoch.val)
            for number, old in epoch_checkpoints(self.out):
                if number <= epoch.number - self.keep_last:
                    old.unlink()
        # last.pt's "model" is what inference would use (EMA when on); "raw_model" goes on training
        save_checkpoint(
            self.out / "last.pt", scored, run.cfg, epoch.number, epoch.val, training_state=run.training_state()
        )
        write_metrics_csv(self.out / "metrics.csv", run.rows)


def metrics_row(epoch: Epoch, validated: bool) -> dict:
    val, scored = epoch.val, "miou" in epoch.val
    return {
        "epoch": epoch.number,
        "lr": epoch.lr,
        "train_loss": round(epoch.train_loss, 6),
        "val_loss": round(val["loss"], 6) if validated else "",
        "val_miou": round(val["miou"], 6) if scored else "",
        "val_miou_per_image": round(val["miou_per_image"], 6) if scored else "",
        "val_pixel_accuracy": round(val["pixel_accuracy"], 6) if scored else "",
        "images_per_s": round(epoch.rate, 3),
        "seconds": round(epoch.seconds, 1),
    }


class TrackingHook(Hook):
    """The live curves (training/tracking.py): per step, per epoch, the overlays, the summary."""

    def __init__(self, tracker, overlay_panels):
        self.tracker, self.overlay_panels = tracker, overlay_panels

    def on_step(self, step: int, loss: float, lr: float) -> None:
        self.tracker.step(step, loss, lr)

    def on_epoch_end(self, run, epoch: Epoch) -> None:
        self.tracker.epoch(epoch.step, run.rows[-1], epoch.val.get("per_class_iou", {}))
        if self.tracker.wants_overlays(epoch.number):
            self.tracker.overlays(epoch.step, lambda: self.overlay_panels(epoch.kept))

    def on_train_end(self, run, failed: bool) -> None:
        if failed:
            self.tracker.close()
        else:
            seconds = sum(float(r["seconds"]) for r in run.rows if int(r["epoch"]) >= run.start_epoch)
            self.tracker.finish(run.cfg, run.best, seconds)


class PrintHook(Hook):
    """The epoch's line, and the best epoch's table at the end."""

    def on_epoch_end(self, run, epoch: Epoch) -> None:
        val = epoch.val
        scores = (
            f"val_loss {val['loss']:.4f} mIoU {val['miou']:.4f} (per-image {val['miou_per_image']:.4f})"
            if "miou" in val
            else "(all data, no validation)"
        )
        print(
            f"epoch {epoch.number}/{run.epochs} train_loss {epoch.train_loss:.4f} {scores} lr {epoch.lr:.3g} "
            f"{epoch.rate:.2f} img/s{'  *best' if epoch.improved and 'miou' in val else ''}",
            flush=True,
        )

    def on_train_end(self, run, failed: bool) -> None:
        from trashseg.evaluation.metrics import format_table

        if failed or run.best is None:
            return
        if "miou" in run.best:
            print(f"best epoch {run.best['epoch']}:\n{format_table(run.best)}")
        else:
            ema = " EMA" if run.ema.enabled else ""
            print(f"trained on all data: {run.out / 'best.pt'} holds epoch {run.best['epoch']}'s{ema} weights")


class PruningHook(Hook):
    """``on_epoch(epoch, val)`` after each epoch's checkpoint (a sweep's pruner); what it raises
    stops the run."""

    def __init__(self, on_epoch):
        self.on_epoch = on_epoch

    def on_epoch_end(self, run, epoch: Epoch) -> None:
        self.on_epoch(epoch.number, epoch.val)
