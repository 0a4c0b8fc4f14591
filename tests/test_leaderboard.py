"""The leaderboard moves through the real make targets on a generated set: out-of-fold scoring,
fitted ensemble weights, TTA, pseudo-labels (and training on them), copy-paste, reports."""
import json
import subprocess

import numpy as np
import pytest
import torch

from conftest import ROOT, TINY_ENCODER, make_coco


def make(target, **variables):
    cmd = ["make", "--no-print-directory", "-C", str(ROOT), target] + [f"{k}={v}" for k, v in variables.items()]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Both models on both folds of a 2-fold split (trained once for the module's tests)."""
    tmp_path = tmp_path_factory.mktemp("lb")
    coco_dir = make_coco(tmp_path / "data")
    base = dict(DATA_DIR=coco_dir, RUNS=tmp_path / "runs", ARGS=f"--set data.cache_dir={tmp_path / 'cache'}")
    train = dict(base, EPOCHS=1, BATCH=4, IMG_SIZE=64, ENCODER=TINY_ENCODER, WEIGHTS="none", WORKERS=0, DEVICE="cpu")
    make("folds", DATA_DIR=coco_dir, K=2)
    for model in ("fpn", "deeplab"):
        for fold in (0, 1):
            make(f"train-{model}", **train, FOLD=fold)
            make(f"infer-{model}", **train, FOLD=fold)
            if model == "fpn":
                make(f"infer-{model}", **train, FOLD=fold, TTA=1, SPLITS="valid")
                make(f"infer-{model}", **train, FOLD=fold, CRF=1, SPLITS="valid")
    return base, train, coco_dir, tmp_path


def test_oof_fit_tta_ensemble_pseudo(trained):
    base, train, coco_dir, tmp_path = trained
    runs = tmp_path / "runs"
    out = make("oof", **base, MODEL="fpn")
    oof = json.loads((runs / "fpn" / "oof.json").read_text())
    assert oof["images"] == 12 and len(oof["folds"]) == 2 and "mIoU (dataset)" in out
    make("oof", **base, MODEL="fpn", TTA=1)
    assert json.loads((runs / "fpn" / "oof_tta.json").read_text())["post"] == "tta"
    make("oof", **base, MODEL="fpn", CRF=1)
    assert json.loads((runs / "fpn" / "oof_crf.json").read_text())["post"] == "crf"
    plain = np.load(runs / "fpn" / "fold0" / "probs_valid.npy").astype(np.float32)
    crf = np.load(runs / "fpn" / "fold0" / "probs_valid_crf.npy").astype(np.float32)
    assert np.allclose(crf.sum(1), 1.0, atol=1e-2) and not np.allclose(crf, plain, atol=1e-3)
    manifest = json.loads((runs / "fpn" / "fold0" / "probs_valid_tta.json").read_text())
    assert manifest["tta"] == {"hflip": True, "scales": [0.75, 1.0, 1.25]}

    out = make("fit-ensemble", **base)
    fitted = json.loads((runs / "ensemble_weights.json").read_text())
    assert fitted["images"] == 12 and abs(sum(fitted["fitted"]["weights"].values()) - 1) < 1e-9
    best = fitted["fitted"]["oof_miou"]
    assert best >= fitted["equal_mean"]["oof_miou"] and best >= max(r["oof_miou"] for r in fitted["per_model"].values())
    assert fitted["per_model"]["fpn"]["oof_miou"] == pytest.approx(oof["miou"], abs=1e-9)
    assert "OOF mIoU equal mean" in out

    out = make("ensemble", **base, SUBMISSIONS=tmp_path / "subs", NAME="fit")
    assert "fitted" in out and "valid submission, 4 rows" in out

    make("pseudo", **base, K=2)
    pseudo = json.loads((coco_dir / "train_data_pseudo0.json").read_text())
    fold_train = json.loads((coco_dir / "train_data0.json").read_text())
    assert len(pseudo["images"]) == len(fold_train["images"]) + 4
    names = {c["id"]: c["name"] for c in pseudo["categories"]}
    pseudo_anns = [a for a in pseudo["annotations"] if a.get("pseudo")]
    assert pseudo_anns and all(isinstance(a["segmentation"]["counts"], str) for a in pseudo_anns)
    out = make("train-fpn", **{**train, "RUNS": tmp_path / "pseudo_runs"}, FOLD=0, PSEUDO=1)
    assert "best epoch 1" in out
    # a one-epoch tiny model is unsure almost everywhere, so the ignore label must appear and paint 255
    assert any(names[a["category_id"]] == "__ignore__" for a in pseudo_anns)
    from trashseg.coco import load_coco
    from trashseg.masks import paint_mask
    cs = load_coco(coco_dir / "train_data_pseudo0.json", coco_dir, {})
    assert any((paint_mask(cs, i) == 255).any() for i in cs.image_ids[-4:])


def test_report_and_predict(trained, tmp_path):
    _, _, coco_dir, lb = trained
    run = lb / "runs" / "fpn" / "fold0"
    out = make("report", RUN=run, N=3)
    report = run / "report"
    for name in ("per_class_iou.md", "confusion_matrix.png", "curves.png", "legend.png"):
        assert (report / name).stat().st_size > 0
    assert len(list((report / "overlays").glob("*.png"))) == 3
    table = (report / "per_class_iou.md").read_text()
    metrics = torch.load(run / "best.pt", weights_only=True)["metrics"]
    assert f"**{metrics['miou']:.4f}**" in table      # report re-scores to the trainer's own figure
    assert "| Clothing |" in out
    make("predict", RUN=run, IMAGES=coco_dir / "batch_01", OUT=tmp_path / "pred")
    overlays = list((tmp_path / "pred").glob("*_overlay.png"))
    assert len(overlays) == len(list((coco_dir / "batch_01").glob("*.jpg"))) and (tmp_path / "pred" / "legend.png").is_file()


def test_copy_paste_adds_rare_class_pixels(coco_dir, base_cfg):
    from trashseg.classes import class_index
    from trashseg.coco import load_coco
    from trashseg.dataset import CopyPaste, SegDataset, make_items
    from trashseg.masks import MaskCache
    from trashseg.transforms import eval_transform
    cfg = {**base_cfg, "train": {**base_cfg["train"], "img_size": 64}}
    cs = load_coco(coco_dir / "train_all.json", coco_dir, {})
    items = make_items(cs, MaskCache(cfg["data"]["cache_dir"]), progress=False)
    battery = class_index("Battery")
    plain = SegDataset(items, eval_transform(cfg))
    pasted = SegDataset(items, eval_transform(cfg), copy_paste=CopyPaste(items, [battery], p=1.0, max_objects=2))
    np.random.seed(0)
    before = sum(int((plain[i]["mask"] == battery).sum()) for i in range(len(items)))
    after = sum(int((pasted[i]["mask"] == battery).sum()) for i in range(len(items)))
    assert after > before
    assert pasted.copy_paste.donors and all(c == battery for _, c in pasted.copy_paste.donors)


def test_crf_pulls_labels_onto_colour_edges():
    from trashseg.config import load_config
    from trashseg.crf import refine
    rgb = np.zeros((64, 64, 3), dtype=np.uint8)
    rgb[:, 32:] = 255                                  # two flat halves
    truth = np.zeros((64, 64), dtype=np.int64)
    truth[:, 32:] = 1
    rng = np.random.default_rng(0)
    probs = np.full((2, 64, 64), 0.3, dtype=np.float32)
    probs[truth, np.arange(64)[:, None], np.arange(64)[None, :]] = 0.7
    flip = rng.random((64, 64)) < 0.2                    # 20% of pixels made wrong but unsure
    probs[:, flip] = probs[::-1][:, flip] * 0.9 + 0.05
    before = (probs.argmax(0) == truth).mean()
    after = (refine(probs, rgb, load_config())[:2].argmax(0) == truth).mean()
    assert before < 0.85 and after > 0.98
