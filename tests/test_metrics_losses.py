import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import settings
from trashseg.config import load_config
from trashseg.evaluation.metrics import Scorer, confusion_matrix, format_table, iou_per_class, mean_iou
from trashseg.training.losses import build_loss


def test_confusion_matrix_rows_truth_cols_prediction_skip_ignore():
    t = np.array([[0, 0, 1, 255]])
    p = np.array([[0, 1, 1, 2]])
    cm = confusion_matrix(t, p, num_classes=3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]


def test_dataset_and_per_image_miou_by_hand():
    # image A: truth [0,0,1,1], pred [0,1,1,1] -> IoU0 = 1/2, IoU1 = 2/3, mean 7/12
    # image B: truth [2,2,2,2], pred [2,2,2,0] -> IoU0 = 0/1, IoU2 = 3/4, mean 3/8
    scorer = Scorer(num_classes=3)
    scorer.update(np.array([[0, 0], [1, 1]]), np.array([[0, 1], [1, 1]]))
    scorer.update(np.array([[2, 2], [2, 2]]), np.array([[2, 2], [2, 0]]))
    r = scorer.result()
    # whole set: class0 inter 1, union (2 truth + 2 pred - 1) = 3 -> 1/3; class1 2/3; class2 3/4
    assert r["miou"] == pytest.approx((1 / 3 + 2 / 3 + 3 / 4) / 3)
    assert r["miou_per_image"] == pytest.approx((7 / 12 + 3 / 8) / 2)
    assert r["pixel_accuracy"] == pytest.approx(6 / 8)
    assert r["per_class_iou"]["General trash"] == pytest.approx(2 / 3)


def test_classes_absent_from_truth_and_prediction_are_skipped():
    cm = confusion_matrix(np.zeros((4, 4)), np.zeros((4, 4)))
    ious = iou_per_class(cm)
    assert ious[0] == 1.0 and np.isnan(ious[1:]).all()
    assert mean_iou(cm) == 1.0
    assert Scorer().result()["per_class_iou"]["Battery"] is None


def test_class_predicted_but_not_in_truth_is_named_in_the_table():
    # truth: background + General trash; a stray Battery pixel scores IoU 0 and costs a whole class
    scorer = Scorer()
    scorer.update(np.array([[0, 0], [1, 1]]), np.array([[0, 9], [1, 1]]))
    r = scorer.result()
    assert r["predicted_not_in_truth"] == ["Battery"] and r["per_class_iou"]["Battery"] == 0.0
    assert r["miou"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    table = format_table(r)
    battery = next(line for line in table.splitlines() if line.startswith("Battery"))
    assert battery.split()[1] == "0.0000" and battery.endswith("(not in truth; predicted pixels only)")
    assert "General trash" in table and table.count("not in truth") == 1


def test_ce_dice_is_weighted_sum_of_label_smoothed_ce_and_dice():
    torch.manual_seed(0)
    logits = torch.randn(2, 11, 8, 8)
    target = torch.randint(0, 11, (2, 8, 8))
    loss = build_loss(load_config())(logits, target)
    ce = F.cross_entropy(logits, target, label_smoothing=0.1)
    probs = logits.softmax(1)
    onehot = F.one_hot(target, 11).permute(0, 3, 1, 2).float()
    inter = (probs * onehot).sum((0, 2, 3))
    card = (probs + onehot).sum((0, 2, 3))
    dice = 2 * inter / card.clamp(min=1e-7)
    present = onehot.sum((0, 2, 3)) > 0
    dice_loss = ((1 - dice) * present).mean()
    assert float(loss) == pytest.approx(float(0.6 * ce + 0.4 * dice_loss), rel=1e-4)


def test_losses_ignore_255_and_prefer_right_answers():
    target = torch.randint(0, 11, (1, 8, 8))
    good = F.one_hot(target, 11).permute(0, 3, 1, 2).float() * 20
    for name in ("ce_dice", "bce_dice"):
        fn = build_loss(settings(f"loss.name={name}"))
        assert float(fn(good, target)) < float(fn(torch.zeros_like(good), target))
        ignored = target.clone()
        ignored[:, :4] = 255
        wrong_there = good.clone()
        wrong_there[:, :, :4] = good[:, :, :4].roll(1, dims=1)
        assert float(fn(wrong_there, ignored)) == pytest.approx(float(fn(good, ignored)), abs=1e-5)
