"""One trainer for every model folder: the configured optimizer and per-step schedule (training/optim),
gradient accumulation and clipping, optional EMA weights, validation each epoch, best checkpoint by
validation mIoU (dataset-level) plus a full-state last checkpoint, per-epoch metrics CSV. Mixed
precision, channels_last and DDP (torchrun) are config switches. ``train.train_all`` trains on
train_all.json with no validation: best.pt is then simply the last epoch's (or EMA) weights."""

from __future__ import annotations

import csv
import io
import math
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from trashseg import config as config_mod
from trashseg.atomic import atomic_open
from trashseg.data.loaders import load_set, make_loader
from trashseg.data.transforms import eval_transform, train_transform
from trashseg.errors import TrashsegError
from trashseg.evaluation.metrics import format_table
from trashseg.evaluation.validation import evaluate
from trashseg.modeling.architectures import build_model
from trashseg.modeling.checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint, unwrap
from trashseg.modeling.weights_route import apply_sidecar
from trashseg.runs import data_dir, data_json, epoch_checkpoint, epoch_checkpoints, run_dir
from trashseg.runtime import distributed
from trashseg.runtime.seeding import seed_epoch, seed_everything
from trashseg.training.ema import build_ema, scored_model
from trashseg.training.losses import build_loss
from trashseg.training.optim import Schedule, build_optimizer
from trashseg.training.run_record import write_run_record
from trashseg.training.speed import amp_dtype, configure_backends, use_channels_last
from trashseg.training.tracking import Tracker, overlay_panels

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


def write_metrics_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_open(path, "w", newline="") as fh:
        fh.write(buf.getvalue())


class NonFiniteLoss(TrashsegError):
    pass


class Stepper:
    """One optimizer step after ``accumulate`` micro-batches: unscale, clip, step, zero the
    gradients, advance the schedule and the EMA. ``on_step(step, loss, lr)`` after each (the
    tracker's per-step curves; ``step`` counts optimizer steps since the run began)."""

    def __init__(self, model, optimizer, scaler, schedule=None, ema=None, clip: float = 0.0, accumulate: int = 1):
        self.model, self.optimizer, self.scaler = model, optimizer, scaler
        self.schedule, self.ema, self.clip, self.accumulate = schedule, ema, float(clip), int(accumulate)
        self.on_step = None

    @property
    def steps(self) -> int:
        return self.schedule.steps if self.schedule is not None else 0

    def step(self, loss: float) -> None:
        if self.clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        lr = self.optimizer.param_groups[0]["lr"]
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.schedule is not None:
            self.schedule.step()
        if self.ema is not None:
            self.ema.update(unwrap(self.model), step=self.steps)
        if self.on_step is not None:
            self.on_step(self.steps, loss, lr)


def keep_epoch_weights(out: Path, model, cfg: dict, epoch: int, val: dict) -> None:
    """train.keep_last: N: this epoch's weights (EMA when on) as epoch<e>.pt, the last N kept, for
    `make soup`."""
    keep = int(cfg["train"]["keep_last"])
    if keep <= 0:
        return
    save_checkpoint(epoch_checkpoint(out, epoch), model, cfg, epoch, val)
    for number, old in epoch_checkpoints(out):
        if number <= epoch - keep:
            old.unlink()


def train_one_epoch(
    model,
    loader,
    loss_fn,
    stepper: Stepper,
    device,
    desc: str,
    amp: torch.dtype | None,
    channels_last: bool,
    ctx: distributed.Context,
    epoch: int,
) -> tuple[float, float]:
    """Mean training loss and images/s (all ranks together) for one pass over ``loader``; the
    gradient of every ``stepper.accumulate`` micro-batches (the last group may be smaller) is their
    mean, as one batch that many times bigger would give."""
    model.train()
    total, seen, start = 0.0, 0, time.perf_counter()
    k, n = stepper.accumulate, len(loader)
    group_loss = 0.0
    bar = tqdm(loader, desc=desc, leave=False, dynamic_ncols=True, disable=not ctx.is_main)
    for index, batch in enumerate(bar):
        group = min(k, n - index // k * k)  # micro-batches in this optimizer step
        last = (index + 1) % k == 0 or index + 1 == n
        images = batch["image"].to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        target = batch["mask"].to(device, non_blocking=True)
        sync = model.no_sync() if ctx.distributed and not last else nullcontext()
        with sync:
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                logits = model(images)
            loss = loss_fn(logits.float(), target)  # the loss itself always in fp32
            if distributed.any_rank(not torch.isfinite(loss).item(), ctx, device):
                raise NonFiniteLoss(
                    f"loss became {loss.item()} at epoch {epoch}, batch {index + 1}; run stopped, the last "
                    "good checkpoint (last.pt / best.pt) is kept. Try a lower optimizer.lr, "
                    "optimizer.clip_grad_norm=1, speed.amp=off, or check the data with `make check-data`."
                )
            stepper.scaler.scale(loss / group).backward()
        group_loss += loss.item() / group
        if last:
            stepper.step(group_loss)
            group_loss = 0.0
        total += loss.item() * images.shape[0]
        seen += images.shape[0]
        rate = seen * ctx.world / max(time.perf_counter() - start, 1e-9)
        bar.set_postfix(loss=f"{total / seen:.4f}", img_s=f"{rate:.2f}")
    return total / max(seen, 1), seen * ctx.world / max(time.perf_counter() - start, 1e-9)


def train(cfg: dict, on_epoch=None, settings: str | None = None) -> dict | None:
    """Train one model on one fold; returns the best validation result (on rank 0).
    ``on_epoch(epoch, val)`` runs on rank 0 after each epoch's checkpoint (a sweep's pruning hook;
    an exception it raises stops the run). ``settings``: the resolved settings with their sources
    (`trashseg config show`), kept in the run folder as settings.txt."""
    ctx, device = distributed.init(str(cfg["train"]["device"]))
    try:
        return _train(cfg, ctx, device, on_epoch, settings)
    finally:
        distributed.shutdown()


def _train(cfg: dict, ctx: distributed.Context, device: torch.device, on_epoch=None, settings=None) -> dict | None:
    cfg = apply_sidecar(cfg)
    gen = seed_everything(int(cfg["train"]["seed"]) + ctx.rank)
    configure_backends(cfg, device)
    amp = amp_dtype(cfg, device)
    channels_last = use_channels_last(cfg, device)
    out = run_dir(cfg)
    score_size = int(cfg["eval"]["score_size"])

    train_all = bool(cfg["train"]["train_all"])
    train_json = data_dir(cfg) / "train_all.json" if train_all else data_json(cfg, "train_json")
    if train_all and not train_json.is_file():
        raise TrashsegError(f"{train_json}: not found (TRAIN_ALL=1 trains on the whole annotated set)")
    valid_json = None if train_all else data_json(cfg, "valid_json")
    model = build_model(cfg)  # before any data is read: a missing weights file or hub fails at once
    train_set = load_set(cfg, train_json, quiet=not ctx.is_main)
    valid_set = None if train_all else load_set(cfg, valid_json, quiet=not ctx.is_main)
    if ctx.distributed and not ctx.is_main:
        distributed.barrier(ctx)  # rank 0 builds the mask cache first
    train_loader = make_loader(
        cfg, train_set, train_transform(cfg), with_masks=True, train=True, generator=gen, ctx=ctx, progress=ctx.is_main
    )
    valid_loader = None
    if valid_set is not None:
        valid_loader = make_loader(
            cfg,
            valid_set,
            eval_transform(cfg),
            with_masks=True,
            ctx=ctx,
            batch_size=int(cfg["eval"]["batch_size"]),
            mask_size=score_size,
            progress=ctx.is_main,
        )
    loss_fn = build_loss(cfg, train_set, quiet=not ctx.is_main)  # class_weights: auto counts the cached masks
    if ctx.distributed and ctx.is_main:
        distributed.barrier(ctx)
    if len(train_loader) == 0:
        raise TrashsegError(
            f"{len(train_set)} training images make no full batch of train.batch_size="
            f"{cfg['train']['batch_size']} per process; lower BATCH"
        )

    if ctx.distributed and cfg["train"]["sync_bn"]:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    epochs = int(cfg["train"]["epochs"])
    accumulate = int(cfg["train"]["accumulate"])
    steps_per_epoch = math.ceil(len(train_loader) / accumulate)
    optimizer = build_optimizer(model, cfg)
    schedule = Schedule(optimizer, cfg, steps_per_epoch, epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    ema = build_ema(model, cfg)

    start_epoch, best, rows = 1, None, []
    if cfg["train"]["resume"]:
        state = load_checkpoint(out / "last.pt")
        if "training" not in state:
            raise TrashsegError(f"{out / 'last.pt'}: holds no training state to resume from")
        t = state["training"]
        if "schedule" not in t:
            raise TrashsegError(
                f"{out / 'last.pt'}: written by an older trashseg without the per-step schedule; "
                "it cannot be resumed exactly (start the run again without RESUME=1)"
            )
        model.load_state_dict(t.get("raw_model", state["model"]))
        saved_groups = [g.get("name") for g in t["optimizer"]["param_groups"]]
        groups = [g["name"] for g in optimizer.param_groups]
        if saved_groups != groups or t["optimizer"].get("kind", cfg["optimizer"]["name"]) != cfg["optimizer"]["name"]:
            raise TrashsegError(
                f"RESUME=1: {out / 'last.pt'} was trained with other optimizer settings (parameter groups "
                f"{saved_groups}, now {groups}); resume with the run's own settings ({out / 'config.yaml'})"
            )
        optimizer.load_state_dict(t["optimizer"])
        schedule.load_state_dict(t["schedule"])
        scaler.load_state_dict(t["scaler"])
        if ema is not None:
            if "ema" not in t:
                raise TrashsegError(f"{out / 'last.pt'}: trained without EMA; resume with ema.enabled=false")
            ema.module.load_state_dict(t["ema"])
        restore_rng_state(t["rng"][ctx.rank] if ctx.rank < len(t["rng"]) else t["rng"][0], gen)
        best = t["best"]
        start_epoch = state["epoch"] + 1
        rows = t["rows"]
        if start_epoch > epochs:
            raise TrashsegError(
                f"RESUME=1: {out / 'last.pt'} already holds epoch {state['epoch']} of "
                f"train.epochs={cfg['train']['epochs']}; nothing left to train (raise EPOCHS to go on)"
            )
        if ctx.is_main:
            where = f" (best mIoU {best['miou']:.4f} at epoch {best['epoch']})" if best and "miou" in best else ""
            print(f"resuming {out} after epoch {state['epoch']}{where}")

    train_model = model
    if ctx.distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_open(out / "config.yaml") as fh:
            fh.write(config_mod.dump(cfg))
        if settings is not None:
            with atomic_open(out / "settings.txt") as fh:
                fh.write(settings)
        write_run_record(out, cfg, device, ctx.world, start_epoch - 1 if cfg["train"]["resume"] else None)
        print(
            f"training {cfg['model']['arch']} ({cfg['model']['encoder']}, weights={cfg['model']['weights']}) "
            f"{'on all data' if train_all else 'fold ' + str(cfg['train']['fold'])} on {device} x{ctx.world} "
            f"(amp={amp}, channels_last={channels_last}): {len(train_set)} train / "
            f"{len(valid_set) if valid_set is not None else 0} valid images, epochs {start_epoch}..{epochs}, "
            f"{cfg['optimizer']['name']} lr {cfg['optimizer']['lr']:g} {cfg['scheduler']['name']}"
            f"{', EMA' if ema is not None else ''} -> {out}",
            flush=True,
        )

    stepper = Stepper(train_model, optimizer, scaler, schedule, ema, cfg["optimizer"]["clip_grad_norm"], accumulate)
    tracker = Tracker(cfg, out, (start_epoch - 1) * steps_per_epoch + 1, enabled=ctx.is_main)
    try:
        for epoch in range(start_epoch, epochs + 1):
            start = time.perf_counter()
            if ctx.distributed:
                train_loader.sampler.set_epoch(epoch)
            seed_epoch(train_loader.dataset, int(cfg["train"]["seed"]), epoch, ctx.rank)
            lr = optimizer.param_groups[0]["lr"]
            step_base = (epoch - 1) * steps_per_epoch
            stepper.on_step = tracker.step
            train_loss, rate = train_one_epoch(
                train_model,
                train_loader,
                loss_fn,
                stepper,
                device,
                f"epoch {epoch}/{epochs}",
                amp,
                channels_last,
                ctx,
                epoch,
            )
            distributed.broadcast_buffers(model, ctx)
            scored = scored_model(model, ema)
            kept = []
            if valid_loader is not None:
                val = evaluate(
                    scored,
                    valid_loader,
                    device,
                    score_size,
                    loss_fn=loss_fn,
                    ctx=ctx,
                    amp_dtype=amp,
                    channels_last=channels_last,
                    keep=kept,
                    keep_count=tracker.count if tracker.wants_overlays(epoch) else 0,
                )
                improved = best is None or val["miou"] > best["miou"]
            else:  # all data: no validation; the plateau rule watches the training loss (all ranks' mean)
                val = {"loss": float(distributed.sum_array(np.array([train_loss]), ctx, device)[0]) / ctx.world}
                improved = True
            schedule.epoch_end(val["loss"])
            if improved:
                best = {**val, "epoch": epoch}
            rngs = distributed.gather_lists([rng_state(gen)], ctx)
            if ctx.is_main:
                rows.append(
                    {
                        "epoch": epoch,
                        "lr": lr,
                        "train_loss": round(train_loss, 6),
                        "val_loss": round(val["loss"], 6) if valid_loader is not None else "",
                        "val_miou": round(val["miou"], 6) if "miou" in val else "",
                        "val_miou_per_image": round(val["miou_per_image"], 6) if "miou" in val else "",
                        "val_pixel_accuracy": round(val["pixel_accuracy"], 6) if "miou" in val else "",
                        "images_per_s": round(rate, 3),
                        "seconds": round(time.perf_counter() - start, 1),
                    }
                )
                if improved:
                    save_checkpoint(out / "best.pt", scored, cfg, epoch, val)
                keep_epoch_weights(out, scored, cfg, epoch, val)
                training_state = {
                    "raw_model": model.state_dict(),
                    "optimizer": {**optimizer.state_dict(), "kind": cfg["optimizer"]["name"]},
                    "schedule": schedule.state_dict(),
                    "scaler": scaler.state_dict(),
                    "best": best,
                    "rng": rngs,
                    "rows": rows,
                }
                if ema is not None:
                    training_state["ema"] = ema.module.state_dict()
                # last.pt's "model" is what inference would use (EMA when on); "raw_model" goes on training
                save_checkpoint(out / "last.pt", scored, cfg, epoch, val, training_state=training_state)
                write_metrics_csv(out / "metrics.csv", rows)  # after the checkpoint: never ahead of it
                tracker.epoch(step_base + steps_per_epoch, rows[-1], val.get("per_class_iou", {}))
                if tracker.wants_overlays(epoch):
                    tracker.overlays(
                        step_base + steps_per_epoch,
                        lambda: overlay_panels(valid_loader.dataset, kept, score_size),
                    )
                scores = (
                    f"val_loss {val['loss']:.4f} mIoU {val['miou']:.4f} (per-image {val['miou_per_image']:.4f})"
                    if "miou" in val
                    else "(all data, no validation)"
                )
                print(
                    f"epoch {epoch}/{epochs} train_loss {train_loss:.4f} {scores} lr {lr:.3g} {rate:.2f} img/s"
                    f"{'  *best' if improved and 'miou' in val else ''}",
                    flush=True,
                )
                if on_epoch is not None:
                    on_epoch(epoch, val)
            distributed.barrier(ctx)
    except BaseException:
        tracker.close()
        raise
    tracker.finish(cfg, best, sum(float(r["seconds"]) for r in rows if int(r["epoch"]) >= start_epoch))
    if ctx.is_main and best is not None and "miou" in best:
        print(f"best epoch {best['epoch']}:\n{format_table(best)}")
    elif ctx.is_main and best is not None:
        print(f"trained on all data: {out / 'best.pt'} holds epoch {best['epoch']}'s {'EMA ' if ema else ''}weights")
    return best
