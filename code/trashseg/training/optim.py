"""Optimizer and learning-rate schedule: the recipe that makes pretrained backbones pay off.

Parameter groups: the decoder and head at ``optimizer.lr``, the encoder at ``lr x encoder_lr_mult``;
with ``decay_norms_biases: false`` norm weights and biases (every 1-D parameter) get no weight decay.
The schedule is one factor of the step count applied to every group's own base rate by torch's
LambdaLR, stepped after every optimizer step: linear warmup from ``warmup_factor``, then ``poly`` or
``cosine`` down to ``min_lr``, or ``plateau`` (torch's ReduceLROnPlateau rule: x factor after
``patience`` epochs without a lower validation loss). The factor object holds the plateau state,
so LambdaLR's own state_dict carries all of it and a resumed run continues the same curve.
"""

from __future__ import annotations

import math

import torch

from trashseg.settings import Settings

GROUP_NAMES = ("decoder", "decoder_no_decay", "encoder", "encoder_no_decay")


def param_groups(model: torch.nn.Module, cfg: Settings) -> list[dict]:
    """Decoder/head groups first (param_groups[0]['lr'] is the headline rate), then the encoder's."""
    oc = cfg.optimizer
    lr, wd = oc.lr, oc.weight_decay
    buckets: dict[str, list] = {name: [] for name in GROUP_NAMES}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = "encoder" if name.startswith("encoder.") else "decoder"
        no_decay = not oc.decay_norms_biases and param.ndim <= 1
        buckets[part + ("_no_decay" if no_decay else "")].append(param)
    groups = []
    for name, params in buckets.items():
        if params:
            mult = oc.encoder_lr_mult if name.startswith("encoder") else 1.0
            groups.append(
                {
                    "params": params,
                    "lr": lr * mult,
                    "weight_decay": 0.0 if name.endswith("no_decay") else wd,
                    "name": name,
                }
            )
    return groups


def build_optimizer(model: torch.nn.Module, cfg: Settings) -> torch.optim.Optimizer:
    oc = cfg.optimizer
    groups = param_groups(model, cfg)
    if oc.name == "adam":
        return torch.optim.Adam(groups, lr=oc.lr)
    if oc.name == "adamw":
        return torch.optim.AdamW(groups, lr=oc.lr)
    return torch.optim.SGD(groups, lr=oc.lr, momentum=oc.momentum, nesterov=oc.momentum > 0)


class LRFactor:
    """Multiplier of every group's base rate at optimizer step ``step`` (0-based); a callable object,
    so LambdaLR saves and restores its attributes (the plateau state among them)."""

    def __init__(self, cfg: Settings, steps_per_epoch: int, epochs: int):
        sc = cfg.scheduler
        self.name = sc.name
        self.total = max(1, steps_per_epoch * epochs)
        self.warmup = round(sc.warmup_epochs * steps_per_epoch)
        self.start = sc.warmup_factor
        self.floor = sc.min_lr / cfg.optimizer.lr
        self.power = sc.power
        self.decay_factor, self.patience = sc.factor, sc.patience
        self.scale, self.best, self.bad_epochs = 1.0, math.inf, 0

    def __call__(self, step: int) -> float:
        progress = min(step / self.total, 1.0)
        if self.name == "poly":
            value = self.floor + (1 - self.floor) * (1 - progress) ** self.power
        elif self.name == "cosine":
            value = self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))
        else:
            value = self.scale
        if step < self.warmup:
            value *= self.start + (1 - self.start) * step / self.warmup
        return value

    def observe(self, loss: float) -> bool:
        """Plateau: one epoch's validation loss (torch's rule: relative threshold 1e-4, no cooldown);
        True when the rate was lowered."""
        if self.name != "plateau":
            return False
        if loss < self.best * (1 - 1e-4):
            self.best, self.bad_epochs = loss, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs <= self.patience:
            return False
        self.bad_epochs = 0
        lowered = max(self.scale * self.decay_factor, self.floor)
        changed = lowered < self.scale
        self.scale = lowered
        return changed


class Schedule:
    """LambdaLR over one LRFactor, stepped per optimizer step; ``epoch_end`` feeds the plateau rule."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: Settings, steps_per_epoch: int, epochs: int):
        self.optimizer = optimizer
        self.factor = LRFactor(cfg, steps_per_epoch, epochs)
        self.lambda_lr = torch.optim.lr_scheduler.LambdaLR(optimizer, self.factor)

    def step(self) -> None:
        self.lambda_lr.step()

    def epoch_end(self, val_loss: float) -> None:
        if self.factor.observe(val_loss):  # applies from the next optimizer step on
            step = self.lambda_lr.last_epoch
            for group, base in zip(self.optimizer.param_groups, self.lambda_lr.base_lrs):
                group["lr"] = base * self.factor(step)

    @property
    def steps(self) -> int:
        return self.lambda_lr.last_epoch

    def state_dict(self) -> dict:
        return self.lambda_lr.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.lambda_lr.load_state_dict(state)
