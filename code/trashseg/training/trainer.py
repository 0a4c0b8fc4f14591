"""One trainer for every model folder: Adam, ReduceLROnPlateau on validation loss, validation each
epoch, best checkpoint by validation mIoU (dataset-level) plus a full-state last checkpoint,
per-epoch metrics CSV. Mixed precision, channels_last and DDP (torchrun) are config switches."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import torch
from tqdm import tqdm

from trashseg import config as config_mod
from trashseg.atomic import atomic_open
from trashseg.data.loaders import load_set, make_loader
from trashseg.data.transforms import eval_transform, train_transform
from trashseg.errors import TrashsegError
from trashseg.evaluation.evaluate import evaluate
from trashseg.evaluation.metrics import format_table
from trashseg.modeling.architectures import build_model
from trashseg.modeling.checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from trashseg.modeling.encoder_weights import apply_sidecar
from trashseg.runs import data_json, run_dir
from trashseg.training import distributed
from trashseg.training.losses import build_loss
from trashseg.training.run_record import write_run_record
from trashseg.training.seeding import seed_everything
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


def train_one_epoch(
    model,
    loader,
    loss_fn,
    optimizer,
    scaler,
    device,
    desc: str,
    amp: torch.dtype | None,
    channels_last: bool,
    ctx: distributed.Context,
    epoch: int,
    on_step=None,
) -> tuple[float, float]:
    """Mean training loss and images/s (all ranks together) for one pass over ``loader``;
    ``on_step(step, loss, lr)`` after every optimizer step (the tracker's per-step curves)."""
    model.train()
    total, seen, start = 0.0, 0, time.perf_counter()
    bar = tqdm(loader, desc=desc, leave=False, dynamic_ncols=True, disable=not ctx.is_main)
    for step, batch in enumerate(bar, start=1):
        images = batch["image"].to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        target = batch["mask"].to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            logits = model(images)
        loss = loss_fn(logits.float(), target)  # the loss itself always in fp32
        if distributed.any_rank(not torch.isfinite(loss).item(), ctx, device):
            raise NonFiniteLoss(
                f"loss became {loss.item()} at epoch {epoch}, step {step}; run stopped, the last "
                "good checkpoint (last.pt / best.pt) is kept. Try a lower optimizer.lr, "
                "speed.amp=off, or check the data with `make check-data`."
            )
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total += loss.item() * images.shape[0]
        seen += images.shape[0]
        if on_step is not None:
            on_step(step, loss.item(), optimizer.param_groups[0]["lr"])
        rate = seen * ctx.world / max(time.perf_counter() - start, 1e-9)
        bar.set_postfix(loss=f"{total / seen:.4f}", img_s=f"{rate:.2f}")
    return total / max(seen, 1), seen * ctx.world / max(time.perf_counter() - start, 1e-9)


def train(cfg: dict, on_epoch=None) -> dict | None:
    """Train one model on one fold; returns the best validation result (on rank 0).
    ``on_epoch(epoch, val)`` runs on rank 0 after each epoch's checkpoint (a sweep's pruning hook;
    an exception it raises stops the run)."""
    ctx, device = distributed.init(str(cfg["train"]["device"]))
    try:
        return _train(cfg, ctx, device, on_epoch)
    finally:
        distributed.shutdown()


def _train(cfg: dict, ctx: distributed.Context, device: torch.device, on_epoch=None) -> dict | None:
    cfg = apply_sidecar(cfg)
    gen = seed_everything(int(cfg["train"]["seed"]) + ctx.rank)
    configure_backends(cfg, device)
    amp = amp_dtype(cfg, device)
    channels_last = use_channels_last(cfg, device)
    out = run_dir(cfg)
    score_size = int(cfg["eval"]["score_size"])

    train_json, valid_json = data_json(cfg, "train_json"), data_json(cfg, "valid_json")
    model = build_model(cfg)  # before any data is read: a missing weights file or hub fails at once
    train_set = load_set(cfg, train_json, quiet=not ctx.is_main)
    valid_set = load_set(cfg, valid_json, quiet=not ctx.is_main)
    if ctx.distributed and not ctx.is_main:
        distributed.barrier(ctx)  # rank 0 builds the mask cache first
    train_loader = make_loader(
        cfg, train_set, train_transform(cfg), with_masks=True, train=True, generator=gen, ctx=ctx, progress=ctx.is_main
    )
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
    loss_fn = build_loss(cfg)
    opt_cfg, sch_cfg = cfg["optimizer"], cfg["scheduler"]
    optimizer = torch.optim.Adam(
        model.parameters(), lr=float(opt_cfg["lr"]), weight_decay=float(opt_cfg["weight_decay"])
    )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="min",
        factor=float(sch_cfg["factor"]),
        patience=int(sch_cfg["patience"]),
        min_lr=float(sch_cfg["min_lr"]),
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)

    start_epoch, best, rows = 1, None, []
    if cfg["train"]["resume"]:
        state = load_checkpoint(out / "last.pt")
        if "training" not in state:
            raise TrashsegError(f"{out / 'last.pt'}: holds no training state to resume from")
        model.load_state_dict(state["model"])
        t = state["training"]
        optimizer.load_state_dict(t["optimizer"])
        scheduler.load_state_dict(t["scheduler"])
        scaler.load_state_dict(t["scaler"])
        restore_rng_state(t["rng"][ctx.rank] if ctx.rank < len(t["rng"]) else t["rng"][0], gen)
        best = t["best"]
        start_epoch = state["epoch"] + 1
        rows = t["rows"]
        if start_epoch > int(cfg["train"]["epochs"]):
            raise TrashsegError(
                f"RESUME=1: {out / 'last.pt'} already holds epoch {state['epoch']} of "
                f"train.epochs={cfg['train']['epochs']}; nothing left to train (raise EPOCHS to go on)"
            )
        if ctx.is_main:
            print(
                f"resuming {out} after epoch {state['epoch']} (best mIoU {best['miou']:.4f} at epoch {best['epoch']})"
            )

    train_model = model
    if ctx.distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    epochs = int(cfg["train"]["epochs"])
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_open(out / "config.yaml") as fh:
            fh.write(config_mod.dump(cfg))
        write_run_record(out, cfg, device, ctx.world, start_epoch - 1 if cfg["train"]["resume"] else None)
        print(
            f"training {cfg['model']['arch']} ({cfg['model']['encoder']}, weights={cfg['model']['weights']}) "
            f"fold {cfg['train']['fold']} on {device} x{ctx.world} (amp={amp}, channels_last={channels_last}): "
            f"{len(train_set)} train / {len(valid_set)} valid images, epochs {start_epoch}..{epochs} -> {out}"
        )

    steps_per_epoch = len(train_loader)
    tracker = Tracker(cfg, out, (start_epoch - 1) * steps_per_epoch + 1, enabled=ctx.is_main)
    try:
        for epoch in range(start_epoch, epochs + 1):
            start = time.perf_counter()
            if ctx.distributed:
                train_loader.sampler.set_epoch(epoch)
            lr = optimizer.param_groups[0]["lr"]
            step_base = (epoch - 1) * steps_per_epoch
            train_loss, rate = train_one_epoch(
                train_model,
                train_loader,
                loss_fn,
                optimizer,
                scaler,
                device,
                f"epoch {epoch}/{epochs}",
                amp,
                channels_last,
                ctx,
                epoch,
                on_step=lambda step, loss, lr: tracker.step(step_base + step, loss, lr),
            )
            distributed.broadcast_buffers(model, ctx)
            kept = []
            val = evaluate(
                model,
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
            scheduler.step(val["loss"])
            improved = best is None or val["miou"] > best["miou"]
            if improved:
                best = {**val, "epoch": epoch}
            rngs = distributed.gather_lists([rng_state(gen)], ctx)
            if ctx.is_main:
                rows.append(
                    {
                        "epoch": epoch,
                        "lr": lr,
                        "train_loss": round(train_loss, 6),
                        "val_loss": round(val["loss"], 6),
                        "val_miou": round(val["miou"], 6),
                        "val_miou_per_image": round(val["miou_per_image"], 6),
                        "val_pixel_accuracy": round(val["pixel_accuracy"], 6),
                        "images_per_s": round(rate, 3),
                        "seconds": round(time.perf_counter() - start, 1),
                    }
                )
                if improved:
                    save_checkpoint(out / "best.pt", model, cfg, epoch, val)
                save_checkpoint(
                    out / "last.pt",
                    model,
                    cfg,
                    epoch,
                    val,
                    training_state={
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict(),
                        "best": best,
                        "rng": rngs,
                        "rows": rows,
                    },
                )
                write_metrics_csv(out / "metrics.csv", rows)  # after the checkpoint: never ahead of it
                tracker.epoch(step_base + steps_per_epoch, rows[-1], val["per_class_iou"])
                if tracker.wants_overlays(epoch):
                    tracker.overlays(
                        step_base + steps_per_epoch,
                        lambda: overlay_panels(valid_loader.dataset, kept, score_size),
                    )
                print(
                    f"epoch {epoch}/{epochs} train_loss {train_loss:.4f} val_loss {val['loss']:.4f} "
                    f"mIoU {val['miou']:.4f} (per-image {val['miou_per_image']:.4f}) {rate:.2f} img/s"
                    f"{'  *best' if improved else ''}",
                    flush=True,
                )
                if on_epoch is not None:
                    on_epoch(epoch, val)
            distributed.barrier(ctx)
    except BaseException:
        tracker.close()
        raise
    tracker.finish(cfg, best, sum(float(r["seconds"]) for r in rows if int(r["epoch"]) >= start_epoch))
    if ctx.is_main and best is not None:
        print(f"best epoch {best['epoch']}:\n{format_table(best)}")
    return best
