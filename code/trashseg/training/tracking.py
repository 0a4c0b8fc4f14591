"""Live experiment tracking beside the trainer, through the libraries' own writers: TensorBoard
(torch's SummaryWriter, the default, into <run>/tensorboard) and optionally Weights & Biases
(``tracking.loggers: [tensorboard, wandb]``; WANDB_MODE=offline works and syncs later).

Per step: training loss and learning rate. Per epoch: validation loss, both mIoUs, pixel accuracy,
per-class IoU, images/s. Every ``overlays_every`` epochs: a few validation overlays (image | truth |
prediction). At the end: the resolved config as hyper-parameters with the best metrics. Only rank 0
logs. A resumed run continues the same curves (TensorBoard drops events past the resume point; W&B
resumes the same run id, kept in <run>/wandb_run_id). No credential is ever read, printed or
written here: W&B takes its key from its own login or WANDB_API_KEY.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import numpy as np

from trashseg.atomic import atomic_open
from trashseg.settings import Settings

LOGGERS = ("tensorboard", "wandb")


def flat_config(cfg: Settings, prefix: str = "") -> dict:
    """Nested config -> {'train.lr': 0.001, ...} with lists and None as text (what hparams accept)."""
    out = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_config(value, name + "."))
        elif isinstance(value, bool | int | float | str):
            out[name] = value
        else:
            out[name] = str(value)
    return out


class Tracker:
    """Fan-out of the trainer's figures to the enabled loggers; every method is a no-op when off."""

    def __init__(self, cfg: Settings, run_dir: Path, first_step: int, enabled: bool = True):
        """``first_step``: the global step this run starts at (1, or the step after last.pt's)."""
        tc = cfg.tracking
        self.loggers = [name for name in tc.loggers if name in LOGGERS] if enabled else []
        self.every = tc.overlays_every
        self.count = tc.overlays
        self.step_every = tc.log_every_steps
        self.run_dir = Path(run_dir)
        self.tb = self.wb = None
        self.spent = 0.0  # seconds spent in the trainer's process on tracking (after start-up)
        if "tensorboard" in self.loggers:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step: a run resumed after a kill drops what the killed run logged past last.pt
            purge = first_step if cfg.train.resume and first_step > 1 else None
            self.tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"), purge_step=purge)
        if "wandb" in self.loggers:
            self.wb = self._start_wandb(cfg)

    def _start_wandb(self, cfg: Settings):
        import wandb

        id_file = self.run_dir / "wandb_run_id"
        resumed = id_file.is_file() and cfg.train.resume
        run_id = id_file.read_text().strip() if resumed else uuid.uuid4().hex[:12]
        with atomic_open(id_file) as fh:
            fh.write(run_id + "\n")
        name = f"{cfg.model.name}-{self.run_dir.name}"
        return wandb.init(
            project=cfg.tracking.wandb_project,
            dir=str(self.run_dir),
            id=run_id,
            name=name,
            resume="allow",
            config=cfg.model_dump(),
            mode=os.environ.get("WANDB_MODE") or None,
        )

    @property
    def active(self) -> bool:
        return bool(self.loggers)

    def wants_overlays(self, epoch: int) -> bool:
        return self.active and self.every > 0 and self.count > 0 and epoch % self.every == 0

    def step(self, step: int, loss: float, lr: float) -> None:
        if not self.active or step % self.step_every:
            return
        start = time.perf_counter()
        if self.tb:
            self.tb.add_scalar("train/loss_step", loss, step)
            self.tb.add_scalar("train/lr", lr, step)
        if self.wb:
            self.wb.log({"train/loss_step": loss, "train/lr": lr}, step=step)
        self.spent += time.perf_counter() - start

    def epoch(self, step: int, row: dict, per_class_iou: dict) -> None:
        """One metrics.csv row (same names and values) plus the per-class IoU."""
        if not self.active:
            return
        start = time.perf_counter()
        scalars = {f"epoch/{k}": float(v) for k, v in row.items() if k != "epoch" and v != ""}
        scalars["epoch/epoch"] = float(row["epoch"])
        scalars.update({f"iou/{name}": v for name, v in per_class_iou.items() if v is not None})
        if self.tb:
            for key, value in scalars.items():
                self.tb.add_scalar(key, value, step)
            self.tb.flush()
        if self.wb:
            self.wb.log(scalars, step=step)
        self.spent += time.perf_counter() - start

    def overlays(self, step: int, make_panels) -> None:
        """Log the panels ``make_panels()`` draws (called only here, so its cost is counted)."""
        start = time.perf_counter()
        panels = make_panels()
        if self.tb:
            for i, panel in enumerate(panels):
                self.tb.add_image(f"overlays/{i}", panel, step, dataformats="HWC")
        if self.wb:
            import wandb

            self.wb.log({"overlays": [wandb.Image(p) for p in panels]}, step=step)
        self.spent += time.perf_counter() - start

    def finish(self, cfg: Settings, best: dict | None, epoch_seconds: float = 0.0) -> None:
        """Hyper-parameters with the best metrics; prints what tracking cost in this process."""
        if not self.active:
            return
        if epoch_seconds > 0:
            print(
                f"tracking ({', '.join(self.loggers)}): {self.spent:.2f} s in the training process, "
                f"{100 * self.spent / epoch_seconds:.1f}% of the epochs' {epoch_seconds:.1f} s",
                flush=True,
            )
        metrics = {}
        if best is not None and "miou" in best:
            metrics = {
                "best/miou": best["miou"],
                "best/miou_per_image": best["miou_per_image"],
                "best/epoch": best["epoch"],
            }
        if self.tb:
            self.tb.add_hparams(flat_config(cfg.model_dump()), metrics, run_name=".")
            self.tb.close()
        if self.wb:
            self.wb.summary.update(metrics)
            self.wb.finish()

    def close(self) -> None:
        """Release the writers without the final summary (a failed or pruned run)."""
        if self.tb:
            self.tb.close()
        if self.wb:
            self.wb.finish(exit_code=1)


def overlay_panels(dataset, kept: list, size: int) -> list[np.ndarray]:
    """image | truth | prediction for validation images already predicted by the epoch's
    validation (``evaluate(keep=...)``): no second forward pass."""
    from trashseg.drawing import truth_prediction_panel

    base = getattr(dataset, "dataset", dataset)
    return [truth_prediction_panel(base.items[index].image_path, truth, pred, size) for index, truth, pred in kept]
