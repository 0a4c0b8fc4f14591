"""One trainer for every model folder, a short loop over named steps: set up (data, model, optimizer,
per-step schedule, hooks), resume when asked, then for each epoch train (training/steps.py), judge
(validation mIoU on the fold; the training loss on all data) and hand the epoch to the hooks
(training/hooks.py: EMA, checkpoints, tracking, the printed line, a sweep's pruning). Mixed precision,
channels_last and DDP (torchrun) are config switches; ``train.train_all`` trains on train_all.json
with no validation, and best.pt is then the last epoch's (or EMA) weights."""

from __future__ import annotations

import math
import time

import torch

from trashseg import config as config_mod
from trashseg.atomic import atomic_open, remove_stale_temps_in
from trashseg.data.folds import check_folds
from trashseg.data.loaders import load_set, make_loader
from trashseg.data.transforms import eval_transform, train_transform
from trashseg.errors import TrashsegError
from trashseg.evaluation.validation import evaluate
from trashseg.modeling.architectures import build_model
from trashseg.modeling.checkpoint import load_checkpoint, restore_rng_state, rng_state
from trashseg.modeling.weights_route import apply_sidecar
from trashseg.runs import data_dir, data_json, run_dir
from trashseg.runtime import distributed
from trashseg.runtime.seeding import seed_epoch, seed_everything
from trashseg.settings import Settings
from trashseg.training import hooks as H
from trashseg.training.losses import build_loss
from trashseg.training.optim import Schedule, build_optimizer
from trashseg.training.run_record import write_run_record
from trashseg.training.speed import configure_backends, speed_choice
from trashseg.training.steps import Stepper, train_one_epoch
from trashseg.training.tracking import Tracker, overlay_panels


def train(cfg: Settings, on_epoch=None, settings: str | None = None) -> dict | None:
    """Train one model on one fold; returns the best validation result (on rank 0).
    ``on_epoch(epoch, val)`` runs on rank 0 after each epoch's checkpoint (a sweep's pruning hook;
    an exception it raises stops the run). ``settings``: the resolved settings with their sources
    (`trashseg config show`), kept in the run folder as settings.txt."""
    ctx, device = distributed.init(cfg.train.device)
    try:
        return Run(cfg, ctx, device, on_epoch).fit(settings)
    finally:
        distributed.shutdown()


class Run:
    """One training run's state; ``fit`` is the loop."""

    def __init__(self, cfg: Settings, ctx: distributed.Context, device: torch.device, on_epoch=None):
        self.cfg, self.ctx, self.device = apply_sidecar(cfg), ctx, device
        self.gen = seed_everything(self.cfg.train.seed + ctx.rank)
        configure_backends(self.cfg, device)
        self.speed = speed_choice(self.cfg, device, announce=ctx.is_main)
        self.amp, self.channels_last = self.speed.amp, self.speed.channels_last
        self.out = run_dir(self.cfg)
        self.score_size = self.cfg.eval.score_size
        self.epochs = self.cfg.train.epochs
        self.start_epoch, self.best, self.rows = 1, None, []
        self.set_up_data_and_model()
        self.ema = H.EmaHook(self.model, self.cfg)
        self.hooks: list[H.Hook] = [self.ema]  # every rank's; rank 0 adds its own once resumed (fit)
        self.on_epoch, self.rngs = on_epoch, []

    def set_up_data_and_model(self) -> None:
        cfg, ctx = self.cfg, self.ctx
        train_all = cfg.train.train_all
        train_json = data_dir(cfg) / "train_all.json" if train_all else data_json(cfg, "train_json")
        if train_all and not train_json.is_file():
            raise TrashsegError(f"{train_json}: not found (TRAIN_ALL=1 trains on the whole annotated set)")
        valid_json = None if train_all else data_json(cfg, "valid_json")
        if not train_all and "{fold}" in cfg.data.train_json:
            check_folds(data_dir(cfg), fold=cfg.train.fold)  # the kit's folds, of today's train_all.json
        model = build_model(cfg)  # before any data is read: a missing weights file or hub fails at once
        self.train_set = load_set(cfg, train_json, quiet=not ctx.is_main)
        self.valid_set = None if train_all else load_set(cfg, valid_json, quiet=not ctx.is_main)
        if ctx.distributed and not ctx.is_main:
            distributed.barrier(ctx)  # rank 0 builds the mask cache first
        self.train_loader = make_loader(
            cfg,
            self.train_set,
            train_transform(cfg),
            with_masks=True,
            train=True,
            generator=self.gen,
            ctx=ctx,
            progress=ctx.is_main,
        )
        self.valid_loader = None
        if self.valid_set is not None:
            self.valid_loader = make_loader(
                cfg,
                self.valid_set,
                eval_transform(cfg),
                with_masks=True,
                ctx=ctx,
                batch_size=cfg.eval.batch_size,
                mask_size=self.score_size,
                progress=ctx.is_main,
            )
        self.loss_fn = build_loss(cfg, self.train_set, quiet=not ctx.is_main)  # auto class weights count the masks
        if ctx.distributed and ctx.is_main:
            distributed.barrier(ctx)
        if len(self.train_loader) == 0:
            raise TrashsegError(
                f"{len(self.train_set)} training images make no full batch of train.batch_size="
                f"{cfg.train.batch_size} per process; lower BATCH"
            )
        if ctx.distributed and cfg.train.sync_bn:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = model.to(self.device)
        self.model = model.to(memory_format=torch.channels_last) if self.channels_last else model
        accumulate = cfg.train.accumulate
        self.steps_per_epoch = math.ceil(len(self.train_loader) / accumulate)
        self.optimizer = build_optimizer(self.model, cfg)
        self.schedule = Schedule(self.optimizer, cfg, self.steps_per_epoch, self.epochs)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)

    def scored(self):
        """The weights validation scores and the checkpoints hold: the EMA's when on."""
        return self.ema.scored(self.model)

    def training_state(self) -> dict:
        """What last.pt holds beyond the weights, for an exact resume (every hook's state included)."""
        state = {
            "raw_model": self.model.state_dict(),
            "optimizer": {**self.optimizer.state_dict(), "kind": self.cfg.optimizer.name},
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "best": self.best,
            "rng": self.rngs,
            "rows": self.rows,
        }
        for hook in self.hooks:
            state.update(hook.state())
        return state

    def resume(self) -> None:
        """Everything last.pt saved, after checking it was written by a run with these settings."""
        last, cfg = self.out / "last.pt", self.cfg
        state = load_checkpoint(last)
        if "training" not in state:
            raise TrashsegError(f"{last}: holds no training state to resume from")
        t = state["training"]
        if "schedule" not in t:
            raise TrashsegError(
                f"{last}: written by an older trashseg without the per-step schedule; "
                "it cannot be resumed exactly (start the run again without RESUME=1)"
            )
        self.model.load_state_dict(t.get("raw_model", state["model"]))
        saved_groups = [g.get("name") for g in t["optimizer"]["param_groups"]]
        groups = [g["name"] for g in self.optimizer.param_groups]
        if saved_groups != groups or t["optimizer"].get("kind", cfg.optimizer.name) != cfg.optimizer.name:
            raise TrashsegError(
                f"RESUME=1: {last} was trained with other optimizer settings (parameter groups "
                f"{saved_groups}, now {groups}); resume with the run's own settings ({self.out / 'config.yaml'})"
            )
        self.optimizer.load_state_dict(t["optimizer"])
        self.schedule.load_state_dict(t["schedule"])
        self.scaler.load_state_dict(t["scaler"])
        for hook in self.hooks:
            hook.load(t, last)
        restore_rng_state(t["rng"][self.ctx.rank] if self.ctx.rank < len(t["rng"]) else t["rng"][0], self.gen)
        self.best, self.start_epoch, self.rows = t["best"], state["epoch"] + 1, t["rows"]
        if self.start_epoch > self.epochs:
            raise TrashsegError(
                f"RESUME=1: {last} already holds epoch {state['epoch']} of "
                f"train.epochs={cfg.train.epochs}; nothing left to train (raise EPOCHS to go on)"
            )
        if self.ctx.is_main:
            best = self.best
            where = f" (best mIoU {best['miou']:.4f} at epoch {best['epoch']})" if best and "miou" in best else ""
            print(f"resuming {self.out} after epoch {state['epoch']}{where}")

    def start(self, settings: str | None) -> None:
        """The run folder's config, settings and record, and the opening line (rank 0)."""
        cfg, ctx = self.cfg, self.ctx
        self.out.mkdir(parents=True, exist_ok=True)
        remove_stale_temps_in(self.out)  # what a killed run was writing when it died
        with atomic_open(self.out / "config.yaml") as fh:
            fh.write(config_mod.dump(cfg))
        if settings is not None:
            with atomic_open(self.out / "settings.txt") as fh:
                fh.write(settings)
        write_run_record(
            self.out,
            cfg,
            self.device,
            ctx.world,
            self.start_epoch - 1 if cfg.train.resume else None,
            self.speed.record(),
        )
        where = "on all data" if self.valid_set is None else f"fold {cfg.train.fold}"
        print(
            f"training {cfg.model.arch} ({cfg.model.encoder}, weights={cfg.model.weights}) "
            f"{where} on {self.device} x{ctx.world} ({self.speed.describe()}): "
            f"{len(self.train_set)} train / {len(self.valid_set) if self.valid_set is not None else 0} valid images, "
            f"epochs {self.start_epoch}..{self.epochs}, {cfg.optimizer.name} lr {cfg.optimizer.lr:g} "
            f"{cfg.scheduler.name}{', EMA' if self.ema.enabled else ''} -> {self.out}",
            flush=True,
        )

    def fit(self, settings: str | None = None) -> dict | None:
        if self.cfg.train.resume:
            self.resume()
        # the tracker starts at the step after last.pt's (a resumed run drops what a killed one logged past it)
        first_step = (self.start_epoch - 1) * self.steps_per_epoch + 1
        self.tracker = Tracker(self.cfg, self.out, first_step, enabled=self.ctx.is_main)
        if self.ctx.is_main:
            panels = lambda kept: overlay_panels(self.valid_loader.dataset, kept, self.score_size)  # noqa: E731
            self.hooks += [
                H.CheckpointHook(self.out, self.cfg.train.keep_last),
                H.TrackingHook(self.tracker, panels),
                H.PrintHook(),
            ]
            if self.on_epoch is not None:
                self.hooks.append(H.PruningHook(self.on_epoch))
        train_model = self.model
        if self.ctx.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            train_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        if self.ctx.is_main:
            self.start(settings)
        stepper = Stepper(
            train_model,
            self.optimizer,
            self.scaler,
            self.schedule,
            self.cfg.optimizer.clip_grad_norm,
            self.cfg.train.accumulate,
            on_step=[hook.on_step for hook in self.hooks],
        )
        try:
            for number in range(self.start_epoch, self.epochs + 1):
                self.epoch(number, train_model, stepper)
        except BaseException:
            for hook in self.hooks:
                hook.on_train_end(self, failed=True)
            raise
        for hook in self.hooks:
            hook.on_train_end(self, failed=False)
        return self.best

    def epoch(self, number: int, train_model, stepper: Stepper) -> None:
        """Train, judge, hand the epoch to the hooks (rank 0), wait for every rank."""
        start, ctx = time.perf_counter(), self.ctx
        if ctx.distributed:
            self.train_loader.sampler.set_epoch(number)
        seed_epoch(self.train_loader.dataset, self.cfg.train.seed, number, ctx.rank)
        lr = self.optimizer.param_groups[0]["lr"]
        train_loss, rate = train_one_epoch(
            train_model,
            self.train_loader,
            self.loss_fn,
            stepper,
            self.device,
            f"epoch {number}/{self.epochs}",
            self.amp,
            self.channels_last,
            ctx,
            number,
        )
        distributed.broadcast_buffers(self.model, ctx)
        kept: list = []

        def validate() -> dict:
            return evaluate(
                self.scored(),
                self.valid_loader,
                self.device,
                self.score_size,
                loss_fn=self.loss_fn,
                ctx=ctx,
                amp_dtype=self.amp,
                channels_last=self.channels_last,
                keep=kept,
                keep_count=self.tracker.count if self.tracker.wants_overlays(number) else 0,
            )

        val, improved = H.judge(self, train_loss, validate)
        self.schedule.epoch_end(val["loss"])
        if improved:
            self.best = {**val, "epoch": number}
        self.rngs = distributed.gather_lists([rng_state(self.gen)], ctx)
        if ctx.is_main:
            record = H.Epoch(
                number,
                lr,
                train_loss,
                rate,
                time.perf_counter() - start,
                val,
                improved,
                number * self.steps_per_epoch,
                kept,
            )
            for hook in self.hooks:
                hook.on_epoch_end(self, record)
        distributed.barrier(ctx)
