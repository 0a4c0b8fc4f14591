"""The leaderboard moves through the real make targets on the bundled sample of real photos
(3 folds split by recording date, both models, tiny budget): out-of-fold scoring, fitted ensemble
weights, TTA, CRF, pseudo-labels (and training on them with copy-paste on), reports, predict."""

import json

import numpy as np
import pytest
import torch

from conftest import run_make


@pytest.mark.slow
def test_oof_fit_tta_ensemble_pseudo(sample_runs):
    s = sample_runs
    runs, base = s.runs, s.base
    out = run_make("oof", **base, MODEL="fpn")
    oof = json.loads((runs / "fpn" / "oof.json").read_text())
    assert oof["images"] == 45 and len(oof["folds"]) == 3 and "mIoU (dataset)" in out
    assert sorted(oof["folds"]) == [str(runs / "fpn" / f"fold{k}" / "probs_valid.npy") for k in range(3)]
    assert "warning" not in out  # every train_all.json image has exactly one out-of-fold prediction
    out_tta = run_make("oof", **base, MODEL="fpn", TTA=1)
    tta = json.loads((runs / "fpn" / "oof_tta.json").read_text())
    assert tta["post"] == "tta" and tta["images"] == 45 and tta["miou"] != oof["miou"]
    assert tta["vs_plain"]["miou"] == pytest.approx(tta["miou"] - oof["miou"])
    assert (
        f"tta vs plain OOF: {'gain' if tta['miou'] > oof['miou'] else 'loss'} {tta['vs_plain']['miou']:+.4f}" in out_tta
    )
    run_make("oof", **base, MODEL="fpn", CRF=1)
    assert json.loads((runs / "fpn" / "oof_crf.json").read_text())["post"] == "crf"
    plain = np.load(runs / "fpn" / "fold0" / "probs_valid.npy").astype(np.float32)
    crf = np.load(runs / "fpn" / "fold0" / "probs_valid_crf.npy").astype(np.float32)
    assert np.allclose(crf.sum(1), 1.0, atol=1e-2) and not np.allclose(crf, plain, atol=1e-3)
    manifest = json.loads((runs / "fpn" / "fold0" / "probs_valid_tta.json").read_text())
    assert manifest["tta"] == {"hflip": True, "scales": [0.75, 1.0, 1.25]}

    out = run_make("fit-ensemble", **base)
    fitted = json.loads((runs / "ensemble_weights.json").read_text())
    assert fitted["images"] == 45 and abs(sum(fitted["fitted"]["weights"].values()) - 1) < 1e-9
    best = fitted["fitted"]["oof_miou"]
    assert best >= fitted["equal_mean"]["oof_miou"] and best >= max(r["oof_miou"] for r in fitted["per_model"].values())
    assert fitted["per_model"]["fpn"]["oof_miou"] == pytest.approx(oof["miou"], abs=1e-9)
    assert "OOF mIoU equal mean" in out

    out = run_make("ensemble", **base, SUBMISSIONS=s.tmp / "subs", NAME="fit")
    assert "fitted" in out and "valid submission, 15 rows" in out

    run_make("pseudo", **base, K=3)
    pseudo = json.loads((s.data / "train_data_pseudo0.json").read_text())
    fold_train = json.loads((s.data / "train_data0.json").read_text())
    assert len(pseudo["images"]) == len(fold_train["images"]) + 15
    names = {c["id"]: c["name"] for c in pseudo["categories"]}
    pseudo_anns = [a for a in pseudo["annotations"] if a.get("pseudo")]
    assert pseudo_anns and all(isinstance(a["segmentation"]["counts"], str) for a in pseudo_anns)
    # a one-epoch tiny model is unsure almost everywhere, so the ignore label must appear and paint 255
    assert any(names[a["category_id"]] == "__ignore__" for a in pseudo_anns)
    from trashseg.data.coco import load_coco
    from trashseg.data.masks import paint_mask

    cs = load_coco(s.data / "train_data_pseudo0.json", s.data, {})
    assert any((paint_mask(cs, i) == 255).any() for i in cs.image_ids[-15:])

    copy_paste = "--set augment.copy_paste.p=1.0 --set 'augment.copy_paste.classes=[Plastic bag]'"
    out = run_make(
        "train-fpn",
        **{**s.train, "RUNS": s.tmp / "pseudo_runs", "ARGS": f"{base['ARGS']} {copy_paste}"},
        FOLD=0,
        PSEUDO=1,
    )
    assert "best epoch 1" in out and "copy-paste: Plastic bag from" in out
    used = torch.load(s.tmp / "pseudo_runs" / "fpn" / "fold0" / "best.pt", weights_only=True)["config"]
    assert used["data"]["train_json"] == "train_data_pseudo{fold}.json"


@pytest.mark.slow
def test_report_and_predict(sample_runs, tmp_path):
    run = sample_runs.runs / "fpn" / "fold0"
    out = run_make("report", RUN=run, N=3)
    report = run / "report"
    for name in ("per_class_iou.md", "confusion_matrix.png", "curves.png", "legend.png"):
        assert (report / name).stat().st_size > 0
    assert len(list((report / "overlays").glob("*.png"))) == 3
    table = (report / "per_class_iou.md").read_text()
    metrics = torch.load(run / "best.pt", weights_only=True)["metrics"]
    assert f"**{metrics['miou']:.4f}**" in table  # report re-scores to the trainer's own figure
    assert "| Plastic bag |" in out and "| General trash |" in out
    test_images = sample_runs.data / "batch_04"
    run_make("predict", RUN=run, IMAGES=test_images, OUT=tmp_path / "pred")
    overlays = list((tmp_path / "pred").glob("*_overlay.png"))
    assert len(overlays) == len(list(test_images.glob("*.jpg"))) == 15
    assert (tmp_path / "pred" / "legend.png").is_file()


@pytest.mark.slow
def test_copy_paste_without_donors_says_so(sample_runs):
    """The defaults (Battery, Clothing) have no objects in the sample: the log says nothing is pasted."""
    out = run_make(
        "train-fpn",
        **{
            **sample_runs.train,
            "RUNS": sample_runs.tmp / "cp_runs",
            "ARGS": f"{sample_runs.base['ARGS']} --set augment.copy_paste.p=0.5",
        },
        FOLD=1,
    )
    assert "copy-paste: no Battery, Clothing in the training masks" in out


def test_copy_paste_adds_rare_class_pixels(coco_dir, base_cfg):
    from trashseg.data.classes import class_index
    from trashseg.data.coco import load_coco
    from trashseg.data.copy_paste import CopyPaste
    from trashseg.data.dataset import SegDataset, make_items
    from trashseg.data.masks import MaskCache
    from trashseg.data.transforms import eval_transform

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
    from trashseg.inference.crf import refine

    rgb = np.zeros((64, 64, 3), dtype=np.uint8)
    rgb[:, 32:] = 255  # two flat halves
    truth = np.zeros((64, 64), dtype=np.int64)
    truth[:, 32:] = 1
    rng = np.random.default_rng(0)
    probs = np.full((2, 64, 64), 0.3, dtype=np.float32)
    probs[truth, np.arange(64)[:, None], np.arange(64)[None, :]] = 0.7
    flip = rng.random((64, 64)) < 0.2  # 20% of pixels made wrong but unsure
    probs[:, flip] = probs[::-1][:, flip] * 0.9 + 0.05
    before = (probs.argmax(0) == truth).mean()
    after = (refine(probs, rgb, load_config())[:2].argmax(0) == truth).mean()
    assert before < 0.85 and after > 0.98
