"""SMP model construction with three encoder-weight routes: hub (imagenet), none, or a local file."""
from __future__ import annotations

from pathlib import Path

import segmentation_models_pytorch as smp
import torch

from trashseg.data.classes import NUM_CLASSES
from trashseg.errors import TrashsegError

ARCHS = {"FPN": smp.FPN, "DeepLabV3Plus": smp.DeepLabV3Plus}


def weights_route(weights) -> tuple[str | None, Path | None]:
    """('imagenet' | None, local path | None) from the config's model.weights value."""
    if weights is None or str(weights).lower() in ("none", "null", ""):
        return None, None
    if str(weights).lower() == "imagenet":
        return "imagenet", None
    path = Path(str(weights))
    if not path.is_file():
        raise TrashsegError(f"model.weights {weights!r}: not 'imagenet', 'none' or an existing file")
    return None, path


def smp_encoder_weights(encoder: str, hub: str | None):
    """SMP's own spelling of "pretrained": timm-universal (``tu-``) encoders take True and pick the
    variant from the name (``tu-model.tag``); SMP's native encoders take the weights' name."""
    if hub is None:
        return None
    return True if encoder.startswith("tu-") else hub


def build_model(cfg: dict) -> torch.nn.Module:
    mc = cfg["model"]
    arch = ARCHS.get(mc["arch"])
    if arch is None:
        raise TrashsegError(f"model.arch {mc['arch']!r}: choose one of {', '.join(ARCHS)}")
    hub, local = weights_route(mc["weights"])
    try:
        model = arch(encoder_name=mc["encoder"], encoder_weights=smp_encoder_weights(mc["encoder"], hub),
                     classes=NUM_CLASSES)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise TrashsegError(f"model.encoder {mc['encoder']!r} with weights {mc['weights']!r}: {exc}") from None
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
            f"{result.missing_keys[:3]}, {len(result.unexpected_keys)} unexpected {result.unexpected_keys[:3]}")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrashsegError(f"train.device {name!r}: CUDA is not available on this machine")
    return torch.device(name)
