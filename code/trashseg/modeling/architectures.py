"""Any architecture the pinned SMP offers, built through its generic constructor from the config's
``model`` section: ``arch`` (Unet, UnetPlusPlus, MAnet, Linknet, FPN, PSPNet, DeepLabV3,
DeepLabV3Plus, PAN, UPerNet, Segformer, DPT), ``encoder`` (SMP's own or any timm model as
``tu-<name>``), ``weights`` and free-form constructor keywords in ``params`` (decoder channels,
encoder depth, ...). Names are checked here, before anything is built, with the closest names
suggested; encoder weights come from the hub, a local file, or nowhere (random init)."""

from __future__ import annotations

import inspect
from functools import lru_cache
from pathlib import Path

import torch

from trashseg.data.classes import NUM_CLASSES
from trashseg.errors import TrashsegError, closest
from trashseg.modeling.hub import hub_failure, prepare_hub
from trashseg.modeling.smp_lib import smp
from trashseg.modeling.weights_route import smp_encoder_weights, weights_route
from trashseg.settings import Settings

# what the kit sets itself; a config's model.params may not set these
RESERVED_PARAMS = {"encoder_name", "encoder_weights", "in_channels", "classes", "kwargs", "self"}


def architectures() -> dict[str, type]:
    """SMP's architecture classes by their class name (FPN, DeepLabV3Plus, UPerNet, ...)."""
    return {cls.__name__: cls for cls in smp.MODEL_ARCHITECTURES_MAPPING.values()}


def architecture(name: str) -> type:
    archs = architectures()
    by_lower = {k.lower(): v for k, v in archs.items()}
    cls = by_lower.get(str(name).lower())
    if cls is None:
        raise TrashsegError(
            f"model.arch={name!r}: not an SMP architecture{closest(name, archs)} (all: {', '.join(archs)})"
        )
    return cls


def constructor_params(cls: type) -> list[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p not in RESERVED_PARAMS]


def check_params(arch: str, params: dict) -> None:
    cls = architecture(arch)
    known = constructor_params(cls)
    for key in params:
        if key not in known:
            raise TrashsegError(
                f"model.params.{key}: {cls.__name__} takes no such parameter{closest(key, known)} "
                f"(it takes {', '.join(known)})"
            )


@lru_cache(maxsize=1)
def encoder_names() -> tuple[str, ...]:
    import timm

    return tuple(smp.encoders.get_encoder_names()) + tuple(f"tu-{m}" for m in timm.list_models())


def check_encoder(name: str) -> None:
    """SMP's own encoders, or ``tu-<timm model>[.<pretrained tag>]``."""
    import timm

    if str(name).startswith("tu-"):
        if timm.is_model(name[3:]):
            return
    elif name in smp.encoders.encoders:
        return
    raise TrashsegError(f"model.encoder={name!r}: no such encoder in SMP or timm{closest(name, encoder_names())}")


def input_multiple(cfg: Settings) -> int:
    """What every input side must be a multiple of: the encoder's output stride, 2**encoder_depth,
    or the dilated stride (``encoder_output_stride``) of the DeepLabV3 family."""
    params = cfg.model.params
    stride = 2 ** int(params.get("encoder_depth", 5))
    cls = architecture(cfg.model.arch)
    if "encoder_output_stride" in constructor_params(cls):
        default = inspect.signature(cls.__init__).parameters["encoder_output_stride"].default
        stride = min(stride, int(params.get("encoder_output_stride", default) or stride))
    return stride


def fixed_size_params(encoder: str, img_size: int, params: dict) -> dict:
    """timm's Swin family builds its attention grid for one input size (224 by default) and refuses
    others; the kit builds it for train.img_size and lets it pad other sizes (TTA scales), unless
    model.params already says otherwise."""
    if encoder.startswith("tu-") and "swin" in encoder.split(".")[0]:
        return {"img_size": img_size, "strict_img_size": False, **params}
    return params


def build_model(cfg: Settings) -> torch.nn.Module:
    mc = cfg.model
    cls = architecture(mc.arch)
    params = dict(mc.params)
    check_params(mc.arch, params)
    params = fixed_size_params(mc.encoder, cfg.train.img_size, params)
    check_encoder(mc.encoder)
    hub, local = weights_route(mc.weights, mc.encoder)
    if hub is not None:
        prepare_hub()
    try:
        model = cls(
            encoder_name=mc.encoder,
            encoder_weights=smp_encoder_weights(mc.encoder, hub),
            classes=NUM_CLASSES,
            **params,
        )
    except (KeyError, ValueError, TypeError, RuntimeError, AssertionError) as exc:
        raise TrashsegError(f"model {cls.__name__} / {mc.encoder} with params {params}: {exc}") from None
    except Exception as exc:
        if hub is not None:
            raise hub_failure(mc.encoder, exc) from None
        raise
    if local is not None:
        load_encoder_weights(model, local)
    return model


def load_encoder_weights(model: torch.nn.Module, path: Path) -> None:
    """Load an encoder state dict strictly; a mismatch names the missing/unexpected keys."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TrashsegError(f"{path}: not a loadable weights file ({exc})") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    try:
        result = model.encoder.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even when not strict
        raise TrashsegError(f"{path}: does not fit the encoder: {str(exc).splitlines()[1:2] or exc}") from None
    if result.missing_keys or result.unexpected_keys:
        raise TrashsegError(
            f"{path}: does not fit the encoder: {len(result.missing_keys)} missing key(s) "
            f"{result.missing_keys[:3]}, {len(result.unexpected_keys)} unexpected {result.unexpected_keys[:3]}"
        )
