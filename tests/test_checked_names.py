"""The library checks' findings kept per machine (checked_names.py): a second check of the same
settings imports no SMP, timm or albumentations and gives the same settings; a problem is always
found afresh; a file named by model.weights is looked at every time; a broken or unwritable memo
only means the slow way."""

import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT
from trashseg import checked_names
from trashseg.config import load_config
from trashseg.errors import TrashsegError

FPN = ROOT / "code" / "FPN" / "config.yaml"

LOAD = """
import json, sys
from trashseg.config import load_config
cfg = load_config(sys.argv[1], ["train.img_size=96"])
heavy = sorted(m for m in ("segmentation_models_pytorch", "timm", "albumentations", "torch") if m in sys.modules)
print(json.dumps({"heavy": heavy, "settings": cfg.model_dump(mode="json")}))
"""


@pytest.fixture
def memo(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "trashseg" / "checked"


def test_the_second_check_of_the_same_settings_imports_no_model_library(memo):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "code")}

    def load() -> dict:
        out = subprocess.run([sys.executable, "-c", LOAD, str(FPN)], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    first = load()
    assert "segmentation_models_pytorch" in first["heavy"] and "albumentations" in first["heavy"]
    assert [p.suffix for p in memo.iterdir()] == [".json"]
    second = load()
    assert second["heavy"] == [] and second["settings"] == first["settings"]


def test_problems_are_found_afresh_and_a_weights_file_is_looked_at_every_time(memo, tmp_path):
    weights = tmp_path / "mine.pth"
    weights.write_bytes(b"x")
    assert load_config(FPN, [f"model.weights={weights}"]).model.weights == str(weights)
    assert len(list(memo.iterdir())) == 1  # the weights are not part of what is kept
    weights.unlink()
    with pytest.raises(TrashsegError, match="mine.pth'?: not 'imagenet'.* nor an existing file"):
        load_config(FPN, [f"model.weights={weights}"])
    for _ in range(2):  # the size's multiple is the library's fact, kept; the size is judged each time
        with pytest.raises(TrashsegError, match="must be a multiple of 32 for FPN"):
            load_config(FPN, ["train.img_size=100"])
    assert len(list(memo.iterdir())) == 2
    for _ in range(2):  # nothing is kept for settings the libraries refuse
        with pytest.raises(TrashsegError, match="no such encoder in SMP or timm; closest: tu-resnet50"):
            load_config(FPN, ["model.encoder=tu-resnet5"])
        with pytest.raises(TrashsegError, match="albumentations has no transform 'Blurr'"):
            load_config(FPN, ["augment.train=[{Blurr: {}}]"])
    assert len(list(memo.iterdir())) == 2


def test_other_settings_or_libraries_are_another_key(memo, monkeypatch):
    base = load_config(FPN)
    keys = {
        checked_names.key(base),
        checked_names.key(load_config(FPN, ["train.img_size=128"])),
        checked_names.key(load_config(FPN, ["augment.train.1.RandomBrightnessContrast.p=0.8"])),
        checked_names.key(load_config(FPN, ["model.params.decoder_dropout=0.1"])),
    }
    assert len(keys) == 4
    assert checked_names.key(load_config(FPN, ["train.epochs=3"])) == checked_names.key(base)
    monkeypatch.setattr(checked_names, "_version", lambda dist: "0.0" if dist == "timm" else "1.0")
    assert checked_names.key(base) not in keys


def test_a_broken_or_unwritable_memo_means_checking_the_slow_way(memo, tmp_path, monkeypatch):
    cfg = load_config(FPN)
    kept = memo / f"{checked_names.key(cfg)}.json"
    assert checked_names.recall(cfg) == json.loads(kept.read_text())
    kept.write_text("{not json")
    assert checked_names.recall(cfg) is None
    assert load_config(FPN) == cfg and checked_names.recall(cfg) is not None  # checked again, kept again
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert load_config(FPN) == cfg and checked_names.recall(cfg) is None
