"""One trainer for every model folder: Adam, ReduceLROnPlateau on validation loss, validation each
epoch, best checkpoint by validation mIoU (dataset-level) plus the last one, per-epoch metrics CSV."""
from __future__ import annotations

import csv
import io
import time

import torch
from tqdm import tqdm

from . import config as config_mod
from .atomic import atomic_open
from .checkpoint import save_checkpoint
from .loaders import load_set, make_loader
from .losses import build_loss
from .metrics import format_table
from .models import build_model, resolve_device
from .evaluate import evaluate
from .runs import data_json, run_dir
from .seeding import seed_everything
from .transforms import eval_transform, train_transform

CSV_FIELDS = ["epoch", "lr", "train_loss", "val_loss", "val_miou", "val_miou_per_image",
              "val_pixel_accuracy", "images_per_s", "seconds"]


def _write_metrics_csv(path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_open(path, "w", newline="") as fh:
        fh.write(buf.getvalue())


def train_one_epoch(model, loader, loss_fn, optimizer, device, desc: str) -> tuple[float, float]:
    """Mean training loss and images/s for one pass over ``loader``."""
    model.train()
    total, seen, start = 0.0, 0, time.perf_counter()
    bar = tqdm(loader, desc=desc, leave=False, dynamic_ncols=True)
    for batch in bar:
        images = batch["image"].to(device, non_blocking=True)
        target = batch["mask"].to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), target)
        loss.backward()
        optimizer.step()
        total += loss.item() * images.shape[0]
        seen += images.shape[0]
        rate = seen / max(time.perf_counter() - start, 1e-9)
        bar.set_postfix(loss=f"{total / seen:.4f}", img_s=f"{rate:.2f}")
    return total / max(seen, 1), seen / max(time.perf_counter() - start, 1e-9)


def train(cfg: dict) -> dict:
    """Train one model on one fold; returns the best validation result."""
    gen = seed_everything(int(cfg["train"]["seed"]))
    device = resolve_device(str(cfg["train"]["device"]))
    out = run_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "config.yaml") as fh:
        fh.write(config_mod.dump(cfg))

    score_size = int(cfg["eval"]["score_size"])
    train_loader = make_loader(cfg, load_set(cfg, data_json(cfg, "train_json")), train_transform(cfg),
                               with_masks=True, train=True, generator=gen)
    valid_loader = make_loader(cfg, load_set(cfg, data_json(cfg, "valid_json")), eval_transform(cfg),
                               with_masks=True, batch_size=int(cfg["eval"]["batch_size"]), mask_size=score_size)
    if len(train_loader) == 0:
        raise SystemExit(f"error: {len(train_loader.dataset)} training images is fewer than one batch "
                         f"(train.batch_size={cfg['train']['batch_size']}); lower BATCH")

    model = build_model(cfg).to(device)
    loss_fn = build_loss(cfg)
    opt_cfg, sch_cfg = cfg["optimizer"], cfg["scheduler"]
    optimizer = torch.optim.Adam(model.parameters(), lr=float(opt_cfg["lr"]),
                                 weight_decay=float(opt_cfg["weight_decay"]))
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=float(sch_cfg["factor"]), patience=int(sch_cfg["patience"]),
        min_lr=float(sch_cfg["min_lr"]))

    epochs = int(cfg["train"]["epochs"])
    print(f"training {cfg['model']['arch']} ({cfg['model']['encoder']}, weights={cfg['model']['weights']}) "
          f"fold {cfg['train']['fold']} on {device}: {len(train_loader.dataset)} train / "
          f"{len(valid_loader.dataset)} valid images, {epochs} epochs -> {out}")
    rows, best = [], None
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        train_loss, rate = train_one_epoch(model, train_loader, loss_fn, optimizer, device,
                                           desc=f"epoch {epoch}/{epochs}")
        val = evaluate(model, valid_loader, device, score_size, loss_fn=loss_fn)
        scheduler.step(val["loss"])
        row = {"epoch": epoch, "lr": lr, "train_loss": round(train_loss, 6), "val_loss": round(val["loss"], 6),
               "val_miou": round(val["miou"], 6), "val_miou_per_image": round(val["miou_per_image"], 6),
               "val_pixel_accuracy": round(val["pixel_accuracy"], 6), "images_per_s": round(rate, 3),
               "seconds": round(time.perf_counter() - start, 1)}
        rows.append(row)
        _write_metrics_csv(out / "metrics.csv", rows)
        improved = best is None or val["miou"] > best["miou"]
        if improved:
            best = {**val, "epoch": epoch}
            save_checkpoint(out / "best.pt", model, cfg, epoch, val)
        save_checkpoint(out / "last.pt", model, cfg, epoch, val)
        print(f"epoch {epoch}/{epochs} train_loss {train_loss:.4f} val_loss {val['loss']:.4f} "
              f"mIoU {val['miou']:.4f} (per-image {val['miou_per_image']:.4f}) {rate:.2f} img/s"
              f"{'  *best' if improved else ''}")
    print(f"best epoch {best['epoch']}:\n{format_table(best)}")
    return best
