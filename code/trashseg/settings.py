"""Typed settings: the merged configuration (defaults < model config.yaml < ``--set`` / Make
variables) checked against one schema before any data is read or any model is built.

pydantic (already in the stack through albumentations) checks every key's type, range and allowed
values; the checks that span keys or need a library (architecture, encoder and weights names, the
input-size multiple, the augmentation list) follow. Every problem is one line naming the key, the
value given and what is allowed, all of them reported at once.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trashseg.errors import TrashsegError
from trashseg.runtime.devices import DEVICE_PATTERN

PositiveInt = Annotated[int, Field(strict=True, gt=0)]
NonNegativeInt = Annotated[int, Field(strict=True, ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
Text = Annotated[str, Field(strict=True, min_length=1)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class Data(Section):
    data_dir: Text
    train_json: Text
    valid_json: Text
    test_json: Text
    cache_dir: Text
    num_workers: NonNegativeInt
    class_map: dict[Text, Text]


class Model(Section):
    name: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    arch: Text
    encoder: Text
    weights: Text | None
    params: dict[Text, Any] = {}


class Train(Section):
    epochs: PositiveInt
    batch_size: PositiveInt
    img_size: PositiveInt
    seed: NonNegativeInt
    device: Text
    fold: NonNegativeInt
    runs_dir: Text
    resume: bool
    sync_bn: bool
    accumulate: PositiveInt
    train_all: bool
    keep_last: NonNegativeInt

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not DEVICE_PATTERN.match(value):
            raise ValueError("use auto, cpu, cuda or cuda:N")
        return value


class Speed(Section):
    amp: Literal["auto", "bf16", "fp16", "off"]
    channels_last: Literal["auto"] | bool
    cudnn_benchmark: bool
    pin_memory: bool
    persistent_workers: bool

    @field_validator("amp", mode="before")
    @classmethod
    def _amp_off(cls, value):
        return "off" if value is False else value  # YAML reads a bare `off` as false


class Loss(Section):
    name: Literal["ce_dice", "bce_dice"]
    ce_weight: NonNegativeFloat
    dice_weight: NonNegativeFloat
    lovasz_weight: NonNegativeFloat
    focal_weight: NonNegativeFloat
    focal_gamma: NonNegativeFloat
    smoothing: Annotated[float, Field(ge=0, lt=1)]
    class_weights: Literal["auto"] | list[NonNegativeFloat] | None
    class_weight_cap: Annotated[float, Field(ge=1)]


class Optimizer(Section):
    name: Literal["adam", "adamw", "sgd"]
    lr: PositiveFloat
    weight_decay: NonNegativeFloat
    momentum: Annotated[float, Field(ge=0, lt=1)]
    encoder_lr_mult: PositiveFloat
    decay_norms_biases: bool
    clip_grad_norm: NonNegativeFloat


class Scheduler(Section):
    name: Literal["plateau", "cosine", "poly"]
    warmup_epochs: NonNegativeFloat
    warmup_factor: Annotated[float, Field(gt=0, le=1)]
    power: PositiveFloat
    factor: Annotated[float, Field(gt=0, lt=1)]
    patience: NonNegativeInt
    min_lr: NonNegativeFloat


class Ema(Section):
    enabled: bool
    decay: Annotated[float, Field(gt=0, lt=1)]
    warmup: bool


class Tracking(Section):
    loggers: list[Literal["tensorboard", "wandb"]]
    log_every_steps: PositiveInt
    overlays_every: NonNegativeInt
    overlays: NonNegativeInt
    wandb_project: Text


class Tta(Section):
    enabled: bool
    hflip: bool
    scales: Annotated[list[PositiveFloat], Field(min_length=1)]


class Crf(Section):
    enabled: bool
    iterations: PositiveInt
    gaussian_sxy: PositiveFloat
    gaussian_compat: NonNegativeFloat
    bilateral_sxy: PositiveFloat
    bilateral_srgb: PositiveFloat
    bilateral_compat: NonNegativeFloat


class Pseudo(Section):
    threshold: Probability


class Eval(Section):
    score_size: PositiveInt
    batch_size: PositiveInt


class CopyPasteSettings(Section):
    p: Probability
    classes: list[Text]
    max_objects: PositiveInt


class Normalize(Section):
    mean: Annotated[list[float], Field(min_length=3, max_length=3)]
    std: Annotated[list[PositiveFloat], Field(min_length=3, max_length=3)]


class Augment(Section):
    train: list[dict[Text, Any]]
    copy_paste: CopyPasteSettings
    normalize: Normalize


class Settings(Section):
    data: Data
    model: Model
    train: Train
    speed: Speed
    loss: Loss
    optimizer: Optimizer
    scheduler: Scheduler
    ema: Ema
    tracking: Tracking
    tta: Tta
    crf: Crf
    pseudo: Pseudo
    eval: Eval
    augment: Augment


def _line(error: dict) -> str:
    key = ".".join(str(p) for p in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{key}: missing"
    return f"{key}={error['input']!r}: {message}"


def _cross_checks(cfg: dict, models: bool) -> list[str]:
    """Checks that need another key or a library: names that must exist, sizes that must fit
    (the model's only when ``models``: commands that build no model skip importing SMP)."""
    from trashseg.data.classes import CLASSES, class_index

    if models:
        from trashseg.data.transforms import train_transform
        from trashseg.modeling.architectures import check_encoder, check_params, input_multiple
        from trashseg.modeling.weights_route import weights_route

    problems = []

    def attempt(check) -> bool:
        try:
            check()
            return True
        except TrashsegError as exc:
            problems.append(str(exc))
            return False

    mc, train = cfg["model"], cfg["train"]
    arch_ok = models and attempt(lambda: check_params(mc["arch"], mc["params"]))
    if models and attempt(lambda: check_encoder(mc["encoder"])):
        attempt(lambda: weights_route(mc["weights"], mc["encoder"]))
    if arch_ok:
        multiple = input_multiple(cfg)
        if train["img_size"] % multiple:
            lower = max(multiple, train["img_size"] // multiple * multiple)
            problems.append(
                f"train.img_size={train['img_size']}: must be a multiple of {multiple} for "
                f"{mc['arch']} (its encoder's output stride), e.g. {lower} or {lower + multiple}"
            )
    lc = cfg["loss"]
    if not any(lc[k] > 0 for k in ("ce_weight", "dice_weight", "lovasz_weight", "focal_weight")):
        problems.append(
            "loss: ce_weight, dice_weight, lovasz_weight and focal_weight are all 0; at least one must be positive"
        )
    if isinstance(lc["class_weights"], list) and len(lc["class_weights"]) != len(CLASSES):
        problems.append(
            f"loss.class_weights: {len(lc['class_weights'])} numbers given; give one per class ({len(CLASSES)}: "
            f"{', '.join(CLASSES)}), or auto"
        )
    if cfg["scheduler"]["min_lr"] > cfg["optimizer"]["lr"]:
        problems.append(
            f"scheduler.min_lr={cfg['scheduler']['min_lr']}: must not exceed optimizer.lr={cfg['optimizer']['lr']}"
        )
    for name in cfg["augment"]["copy_paste"]["classes"]:
        try:
            class_index(name)
        except TrashsegError as exc:
            problems.append(f"augment.copy_paste.classes: {exc}")
    if models:
        attempt(lambda: train_transform(cfg))
    return problems


def validate(cfg: dict, source: str = "settings", models: bool = True) -> dict:
    """The configuration, type-checked and normalised (e.g. '3e-4' -> 0.0003), or one error listing
    every problem, a line each."""
    try:
        checked = Settings.model_validate(cfg).model_dump()
    except ValidationError as exc:
        problems = [_line(e) for e in exc.errors()]
    else:
        problems = _cross_checks(checked, models)
    if problems:
        lines = "\n  ".join(problems)
        raise TrashsegError(f"{len(problems)} invalid setting(s) in {source}:\n  {lines}")
    return checked
