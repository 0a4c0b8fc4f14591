"""Every model folder is a config the registry finds under its run name (model.name); it builds
with a tiny random-init encoder and runs forward, backward and TTA. Adding an architecture is its
folder and nothing else, shown end to end on a copy of the kit."""

import os
import re
import shutil

import pytest
import torch
import yaml

from helpers import ROOT, TINY_ENCODER, run_make, tiny_run
from trashseg.config import load_config
from trashseg.data.classes import NUM_CLASSES
from trashseg.inference.tta import probabilities
from trashseg.modeling.architectures import architectures, build_model, input_multiple

FOLDERS = sorted(p.parent for p in (ROOT / "code").glob("*/config.yaml"))


def test_registry_finds_every_model_folder_by_its_name():
    from trashseg import registry

    found = registry.models()
    assert sorted(m.folder.name for m in found.values()) == sorted(f.name for f in FOLDERS)
    for name, model in found.items():
        cfg = yaml.safe_load(model.config.read_text())
        assert cfg["model"]["name"] == name
        assert cfg["model"]["arch"] in architectures()
        for script in ("train.py", "infer.py"):
            text = (model.folder / script).read_text()
            assert len(text.splitlines()) <= 8 and "sys.path" not in text  # thin, no path hacks
    assert {p.base for p in registry.presets().values()} <= set(found)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_model_folder_builds_trains_a_step_and_predicts_with_tta(folder):
    tiny = {"UPerNet": "tu-convnext_atto", "Segformer": "mit_b0"}.get(folder.name, TINY_ENCODER)  # its family's
    cfg = load_config(folder / "config.yaml", [f"model.encoder={tiny}", "model.weights=none", "train.img_size=64"])
    model = build_model(cfg)
    x = torch.randn(2, 3, 64, 64)
    logits = model(x)
    assert logits.shape == (2, NUM_CLASSES, 64, 64)
    logits.mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    probs = probabilities(model, x, 96, hflip=True, scales=(0.75, 1.0, 1.25), multiple=input_multiple(cfg))
    assert probs.shape == (2, NUM_CLASSES, 96, 96)
    assert torch.allclose(probs.sum(1), torch.ones(2, 96, 96), atol=1e-4)


@pytest.mark.parametrize(
    "arch,params",
    [
        ("Unet", {"decoder_channels": [64, 32, 16, 8, 4]}),
        ("UnetPlusPlus", {}),
        ("UPerNet", {"decoder_channels": 32}),
        ("DeepLabV3", {}),
        ("Linknet", {}),
        ("MAnet", {"decoder_pab_channels": 16}),
    ],
)
def test_other_smp_architectures_are_a_config_away(arch, params):
    cfg = load_config(
        None,
        [
            f"model.arch={arch}",
            f"model.encoder={TINY_ENCODER}",
            "model.weights=none",
            f"model.params={params}",
            "train.img_size=64",
        ],
    )
    assert build_model(cfg)(torch.randn(2, 3, 64, 64)).shape == (2, NUM_CLASSES, 64, 64)


@pytest.mark.slow
def test_a_new_architecture_is_its_folder_and_nothing_else(coco_dir, tmp_path):
    """On a copy of the kit: add code/Unet/ alone; the registry lists it; train, infer and ensemble it."""
    kit = tmp_path / "kit"
    shutil.copytree(ROOT / "code", kit / "code", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("requirements.txt", "requirements-dev.txt", "constraints.txt", "pyproject.toml"):
        shutil.copy2(ROOT / name, kit / name)
        os.utime(kit / name, (0, 0))  # older than the venv's stamp, always: the copy never reinstalls the kit
    (kit / "code" / "Unet").mkdir()
    for script in ("train.py", "infer.py"):
        shutil.copy(ROOT / "code" / "FPN" / script, kit / "code" / "Unet" / script)
    (kit / "code" / "Unet" / "config.yaml").write_text("model:\n  name: unet\n  arch: Unet\n")
    shutil.copy2(ROOT / "Makefile", kit / "Makefile")  # as it is: no line anywhere names the models
    shutil.copytree(ROOT / "configs", kit / "configs")

    common = tiny_run(coco_dir, tmp_path, VENV=ROOT / ".venv", EPOCHS=1, BATCH=2)
    out = run_make("help", directory=kit, VENV=ROOT / ".venv")
    assert re.search(r"^  unet +code/Unet/config.yaml$", out, flags=re.M), out
    out = run_make("train", directory=kit, MODEL="unet", **common)
    assert "training Unet" in out
    run_make("infer-unet", directory=kit, **common, SPLITS="test")
    out = run_make(
        "ensemble",
        directory=kit,
        MODELS="unet",
        SUBMISSIONS=tmp_path / "subs",
        DATA_DIR=coco_dir,
        RUNS=tmp_path / "runs",
        VENV=ROOT / ".venv",
    )
    assert "runs/unet/fold0/probs_test.npy (w=1.000)" in out and "valid submission, 4 rows" in out
