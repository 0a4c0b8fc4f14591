"""The leaderboard-class folders and the recipe around them, end to end through the real make
targets: UPerNet and Segformer on the bundled real photos (tiny random-init encoders of their
families, 64 px); a preset (EXP) trained on every fold, souped and scored out of fold; a run on all
data (TRAIN_ALL=1) that the ensemble takes and OOF never reads."""

import json
import shutil

import pytest
import torch

from helpers import SAMPLE, SAMPLE_DATES, TINY_ENCODER, run_make, tiny_run

pytestmark = pytest.mark.slow

FAMILY_TINY = {"upernet": "tu-convnext_atto", "segformer": "mit_b0"}


@pytest.mark.parametrize("model", sorted(FAMILY_TINY))
def test_model_folder_trains_resumes_infers_with_tta_and_ensembles(model, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data, ignore=shutil.ignore_patterns("train_data*", "valid_data*"))
    run_make("folds", DATA_DIR=data, K=3, GROUP=SAMPLE_DATES)
    v = tiny_run(data, tmp_path, ENCODER=FAMILY_TINY[model], LOGGER="none", MODEL=model, FOLD=0)
    out = run_make("train", **v, EPOCHS=1)
    assert f"training {'UPerNet' if model == 'upernet' else 'Segformer'} ({FAMILY_TINY[model]}" in out
    assert "adamw lr" in out and "poly, EMA" in out  # the folder's own recipe
    out = run_make("train", **v, EPOCHS=2, RESUME=1)
    run = tmp_path / "runs" / model / "fold0"
    assert f"resuming {run} after epoch 1" in out
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 2
    run_make("infer", **v, TTA=1)
    manifest = json.loads((run / "probs_test_tta.json").read_text())
    assert manifest["arch"] in ("UPerNet", "Segformer") and manifest["tta"]["scales"] == [0.75, 1.0, 1.25]
    subs = tmp_path / "subs"
    run_make("ensemble", **v, MODELS=model, TTA=1, SUBMISSIONS=subs, NAME=model)
    out = run_make("validate-submission", DATA_DIR=data, FILE=subs / f"{model}.csv")
    assert "valid submission" in out


def test_preset_folds_soup_and_a_run_on_all_data(coco_dir, tmp_path):
    # cpu-lite's own settings (AdamW, warmup + poly, 256 px ...) with a tiny encoder at 64 px
    v = tiny_run(coco_dir, tmp_path, LOGGER="none", EXP="cpu-lite", BATCH=2, TTA=0)  # plain: the test is the soup
    v["ARGS"] += " --set train.keep_last=2"
    out = run_make("cv", **v, K=3, EPOCHS=2, SUBMISSIONS=tmp_path / "subs", NAME="folds")  # README: make cv EXP=
    assert out.count("adamw lr 0.0027 poly") == 3 and f"-> {tmp_path / 'runs' / 'cpu-lite' / 'fold2'}" in out
    assert "[cv] trashseg ensemble --models=cpu-lite" in out and "folds.csv: valid submission" in out
    runs = tmp_path / "runs"
    assert sorted(p.name for p in (runs / "cpu-lite" / "fold0").glob("epoch*.pt")) == ["epoch1.pt", "epoch2.pt"]

    out = run_make("soup", **v)
    assert "fold 2: soup of epoch1.pt, epoch2.pt" in out and "OOF cpu-lite-soup: mIoU" in out
    one = torch.load(runs / "cpu-lite" / "fold1" / "epoch1.pt", weights_only=True)["model"]
    two = torch.load(runs / "cpu-lite" / "fold1" / "epoch2.pt", weights_only=True)["model"]
    soup = torch.load(runs / "cpu-lite-soup" / "fold1" / "best.pt", weights_only=True)["model"]
    key = next(k for k in soup if soup[k].is_floating_point() and soup[k].ndim == 4)
    torch.testing.assert_close(soup[key], (one[key] + two[key]) / 2)
    assert json.loads((runs / "cpu-lite-soup" / "oof.json").read_text())["images"] == 12

    out = run_make("train", **v, TRAIN_ALL=1, EPOCHS=1)
    assert "on all data" in out and "(all data, no validation)" in out
    every = len(json.loads((coco_dir / "train_all.json").read_text())["images"])
    assert f": {every} train / 0 valid images" in out  # every image of train_all.json, none held out
    everything = runs / "cpu-lite" / "all"
    assert (everything / "best.pt").is_file() and not list(everything.glob("probs_valid*"))
    run_make("infer", **v, TRAIN_ALL=1)
    assert (everything / "probs_test.npy").is_file() and not (everything / "probs_valid.npy").exists()
    out = run_make("ensemble", **v, MODELS="cpu-lite", SUBMISSIONS=tmp_path / "subs", NAME="all")
    assert "cpu-lite/all/probs_test.npy" in out and "cpu-lite/fold2/probs_test.npy" in out
    out = run_make("oof", **v, MODEL="cpu-lite-soup")
    assert "/all/" not in json.dumps(json.loads((runs / "cpu-lite-soup" / "oof.json").read_text())["folds"])


def test_tiny_encoders_of_each_family_exist():
    import timm

    assert timm.is_model("convnext_atto") and TINY_ENCODER.startswith("tu-")
