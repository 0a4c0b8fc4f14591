"""Which weights a model starts from: the config's ``model.weights`` routed to the hub (SMP's own
spelling of "pretrained"), the offline ImageNet file or a file of the user's, and a weights file's
sidecar (encoder check, input normalisation). Between the architectures, which build with it, and
the weight files (encoder_weights.py), which it reads, so neither imports the other."""

from __future__ import annotations

from pathlib import Path

from trashseg.errors import TrashsegError, closest
from trashseg.modeling.encoder_weights import cached_imagenet, ensure_offline, require_offline, sidecar_path
from trashseg.settings import Settings, changed


def hub_weights_names(encoder: str) -> list[str]:
    """Weight names SMP accepts for a native encoder ('imagenet', 'ssl', ...)."""
    if encoder.startswith("tu-"):
        return ["imagenet"]
    from trashseg.modeling.smp_lib import smp

    return list(smp.encoders.encoders[encoder].get("pretrained_settings", {}))


def weights_route(
    weights, encoder: str | None = None, hub_names: list[str] | None = None
) -> tuple[str | None, Path | None]:
    """(hub weights name | None, local path | None) from the config's model.weights value
    (``hub_names``: the encoder's ``hub_weights_names``, when already known, so SMP is not imported)."""
    if weights is None or str(weights).lower() in ("none", "null", ""):
        return None, None
    text = str(weights)
    if encoder is not None and hub_names is None:
        hub_names = hub_weights_names(encoder)
    if encoder is not None and not encoder.startswith("tu-") and text in hub_names:
        return text, None
    if text.lower() == "imagenet":  # stored by name (make weights, or baked into the image) before the hub
        cached = cached_imagenet(encoder) if encoder is not None else None
        return ("imagenet", None) if cached is None else (None, cached)
    if text.lower() == "offline":
        if encoder is None:
            raise TrashsegError("model.weights=offline: needs model.encoder to pick the file")
        require_offline(encoder)
        return None, cached_imagenet(encoder) or ensure_offline(encoder)
    path = Path(text)
    if not path.is_file():
        names = ["imagenet", "offline", "none"] if encoder is None else hub_names + ["offline", "none"]
        raise TrashsegError(
            f"model.weights={text!r}: not {', '.join(repr(n) for n in names)} nor an existing "
            f"file{closest(text, names)}"
        )
    return None, path


def smp_encoder_weights(encoder: str, hub: str | None):
    """SMP's own spelling of "pretrained": timm-universal (``tu-``) encoders take True and pick the
    variant from the name (``tu-model.tag``); SMP's native encoders take the weights' name."""
    if hub is None:
        return None
    return True if encoder.startswith("tu-") else hub


def fetch_hub_weights(encoder: str) -> tuple[dict, dict]:
    """The encoder's pretrained state dict through SMP/timm's own download, and its normalisation."""
    from trashseg.modeling.hub import prepare_hub
    from trashseg.modeling.smp_lib import smp

    prepare_hub()
    try:
        model = smp.FPN(encoder_name=encoder, encoder_weights=smp_encoder_weights(encoder, "imagenet"), classes=1)
    except Exception as exc:
        raise TrashsegError(
            f"could not fetch ImageNet weights for {encoder!r} ({type(exc).__name__}: {exc}); "
            "without a network use `make weights-offline`"
        ) from None
    cfg = getattr(getattr(model.encoder, "model", None), "pretrained_cfg", None) or {}
    normalize = {
        "mean": list(cfg.get("mean", (0.485, 0.456, 0.406))),
        "std": list(cfg.get("std", (0.229, 0.224, 0.225))),
    }
    return {k: v.clone() for k, v in model.encoder.state_dict().items()}, normalize


def apply_sidecar(cfg: Settings) -> dict:
    """When model.weights is a file with a sidecar, check the encoder and use its normalisation."""
    _, local = weights_route(cfg.model.weights, cfg.model.encoder)
    if local is None or not sidecar_path(local).is_file():
        return cfg
    import json

    meta = json.loads(sidecar_path(local).read_text(encoding="utf-8"))
    if meta.get("encoder") and meta["encoder"] != cfg.model.encoder:
        raise TrashsegError(
            f"{local}: holds weights for encoder {meta['encoder']!r}, but model.encoder is "
            f"{cfg.model.encoder!r} (set ENCODER={meta['encoder']})"
        )
    if meta.get("normalize") and meta["normalize"] != cfg.augment.normalize.model_dump():
        print(f"note: {local} expects input normalisation {meta['normalize']}; using it")
        cfg = changed(cfg, {"augment.normalize": meta["normalize"]})
    return cfg
