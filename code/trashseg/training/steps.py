"""The optimizer step and one pass over the training data: gradient accumulation (the gradient of k
micro-batches is their mean, as one batch k times bigger would give), clipping after unscaling, mixed
precision, DDP's no_sync between the micro-batches of one step, and a stop on a non-finite loss."""

from __future__ import annotations

import time
from contextlib import nullcontext

import torch
from tqdm import tqdm

from trashseg.errors import TrashsegError
from trashseg.runtime import distributed


class NonFiniteLoss(TrashsegError):
    pass


class Stepper:
    """One optimizer step after ``accumulate`` micro-batches: unscale, clip, step, zero the
    gradients, advance the schedule, then call each of ``on_step(step, loss, lr)`` (the hooks': the
    EMA's update, the tracker's per-step curves; ``step`` counts optimizer steps since the run began)."""

    def __init__(self, model, optimizer, scaler, schedule=None, clip: float = 0.0, accumulate: int = 1, on_step=()):
        self.model, self.optimizer, self.scaler = model, optimizer, scaler
        self.schedule, self.clip, self.accumulate = schedule, float(clip), int(accumulate)
        self.on_step = list(on_step)

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
        for call in self.on_step:
            call(self.steps, loss, lr)


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
