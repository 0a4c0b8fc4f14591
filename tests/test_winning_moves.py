"""The winning moves on constructed inputs, against hand-computed answers: pseudo-labels keep confident
pixels and ignore unsure ones, copy-paste adds pixels of the chosen class only, DenseCRF moves labels
onto colour edges. Through make on the sample's runs: test_sample_end_to_end.py."""

import numpy as np
import pytest
import torch

from trashseg.data.classes import CLASSES
from trashseg.settings import changed


def test_pseudo_labels_keep_confident_pixels_and_ignore_unsure_ones():
    """By hand: the left half is Paper at 0.95, the right half unsure (0.5); at threshold 0.9 the
    left half is labelled Paper and the right half ignored (255), painted back exactly so."""
    from pycocotools import mask as coco_mask

    from trashseg.ensembling.pseudo import pseudo_annotations

    probs = np.full((len(CLASSES), 32, 32), 0.05 / (len(CLASSES) - 1), np.float32)
    probs[2, :, :16] = 0.95  # Paper, confident
    probs[:, :, 16:] = 0.5 / (len(CLASSES) - 1)
    probs[3, :, 16:] = 0.5  # Paper pack, unsure
    found = {cls: (rle, area) for cls, rle, area, weight in pseudo_annotations(probs, 32, 32, 0.9) if weight is None}
    assert set(found) == {2, 255}  # no label for the unsure Paper pack
    left = np.zeros((32, 32), bool)
    left[:, :16] = True
    assert np.array_equal(coco_mask.decode(found[2][0]).astype(bool), left) and found[2][1] == left.sum()
    assert np.array_equal(coco_mask.decode(found[255][0]).astype(bool), ~left)


def test_soft_pseudo_labels_weigh_each_pixels_cross_entropy_by_the_ensembles_confidence(tmp_path):
    """By hand, soft labels at threshold 0.5: the left half Paper at 0.95, the right half Paper pack at
    0.6, a strip below 0.5 ignored. Each region keeps its class and its confidence in 1/15 steps (0.933
    and 0.6), painted into the mask as class + 16 x level; the loss reads class and weight back and its
    cross-entropy term is the weighted mean of the pixels' cross-entropies. (True labels, level 0, keep
    the original sum exactly: test_metrics_losses.)"""
    import json

    import torch.nn.functional as F

    from helpers import settings
    from trashseg.data.coco import load_coco
    from trashseg.data.masks import paint_mask
    from trashseg.ensembling.pseudo import pseudo_annotations, with_pseudo
    from trashseg.training.losses import build_loss, split_target

    probs = np.full((len(CLASSES), 32, 32), 0.0, np.float32)
    probs[2, :, :16], probs[0, :, :16] = 0.95, 0.05  # Paper, sure
    probs[3, :, 16:], probs[0, :, 16:] = 0.6, 0.4  # Paper pack, less sure
    probs[:, :4, 16:] = 1 / len(CLASSES)  # unsure: ignored
    found = pseudo_annotations(probs, 32, 32, 0.5, soft=True)
    assert sorted((cls, weight) for cls, _, _, weight in found) == [(2, 0.933333), (3, 0.6), (255, None)]
    train = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "Paper"}]}
    image = {"id": 0, "file_name": "a.jpg", "height": 32, "width": 32}
    (tmp_path / "p.json").write_text(json.dumps(with_pseudo(train, "t", {}, [image], [found])))
    cs = load_coco(tmp_path / "p.json", tmp_path, {})
    mask = paint_mask(cs, cs.image_ids[0])
    assert (mask[:, :16] == 2 + 16 * 1).all() and (mask[4:, 16:] == 3 + 16 * 6).all() and (mask[:4, 16:] == 255).all()
    target = torch.as_tensor(mask, dtype=torch.long)[None]
    classes, weight = split_target(target)
    assert (classes[0, :, :16] == 2).all() and (classes[0, :4, 16:] == 255).all()
    assert torch.allclose(weight[0, 4:, 16:], torch.tensor(0.6)) and torch.allclose(
        weight[0, :, :16], torch.tensor(14 / 15)
    )
    torch.manual_seed(0)
    logits = torch.randn(1, len(CLASSES), 32, 32)
    ce_only = build_loss(settings("loss.ce_weight=1", "loss.dice_weight=0", "loss.smoothing=0"))
    per_pixel = F.cross_entropy(logits, classes, ignore_index=255, reduction="none")
    valid = classes != 255
    want = (per_pixel * weight)[valid].sum() / valid.sum()
    assert float(ce_only(logits, target)) == pytest.approx(float(want), rel=1e-5)


def test_copy_paste_adds_rare_class_pixels(coco_dir, base_cfg):
    from trashseg.data.classes import class_index
    from trashseg.data.coco import load_coco
    from trashseg.data.copy_paste import CopyPaste
    from trashseg.data.dataset import SegDataset
    from trashseg.data.items import make_items
    from trashseg.data.masks import MaskCache
    from trashseg.data.transforms import eval_transform

    cfg = changed(base_cfg, {"train.img_size": 64})
    cs = load_coco(coco_dir / "train_all.json", coco_dir, {})
    items = make_items(cs, MaskCache(cfg.data.cache_dir), progress=False)
    battery = class_index("Battery")
    plain = SegDataset(items, eval_transform(cfg))
    pasted = SegDataset(items, eval_transform(cfg), copy_paste=CopyPaste(items, [battery], p=1.0, max_objects=2))
    np.random.seed(0)
    before = [int((plain[i]["mask"] == battery).sum()) for i in range(len(items))]
    after = [int((pasted[i]["mask"] == battery).sum()) for i in range(len(items))]
    assert sum(after) > sum(before) and sum(a > b for a, b in zip(after, before)) >= len(items) // 2
    assert pasted.copy_paste.donors and all(c == battery for _, c in pasted.copy_paste.donors)
    # only the chosen class is pasted: no other class gains a pixel anywhere
    np.random.seed(0)
    for i in range(len(items)):
        grown = pasted[i]["mask"].numpy()
        assert set(np.unique(grown)) <= set(np.unique(plain[i]["mask"].numpy())) | {battery}
    none = SegDataset(items, eval_transform(cfg), copy_paste=CopyPaste(items, [battery], p=0.0, max_objects=2))
    assert all(torch.equal(none[i]["mask"], plain[i]["mask"]) for i in range(len(items)))


def test_crf_pulls_labels_onto_colour_edges():
    """Half the pixels of a two-colour image are made wrong but unsure; DenseCRF puts nearly all of
    them back onto the colour edge. `make test` installs pydensecrf2 (make setup-crf) first."""
    try:
        import pydensecrf.densecrf  # noqa: F401
    except ImportError:
        pytest.skip("CRF not available: pydensecrf2 is not installed (`make setup-crf`; `make test` runs it)")
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
    refined = refine(probs, rgb, load_config().crf)
    after = (refined[:2].argmax(0) == truth).mean()
    assert before < 0.85 and after > 0.98
    assert refined.shape == probs.shape and np.allclose(refined.sum(0), 1.0, atol=1e-3)
