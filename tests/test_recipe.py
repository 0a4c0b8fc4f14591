"""The leaderboard recipe: parameter groups, per-step schedules with warmup, exact resume of the
learning-rate curve, gradient accumulation, EMA weights in best.pt, Lovasz/focal/class weights,
multi-scale crops and presets."""

import csv
import math

import numpy as np
import pytest
import torch

from conftest import ROOT, TINY_ENCODER, tiny_run
from trashseg.config import load_config
from trashseg.errors import TrashsegError
from trashseg.training.optim import Schedule, build_optimizer, param_groups


def recipe_cfg(*sets, models=False):
    return load_config(None, list(sets), models=models)


class Toy(torch.nn.Module):
    """An SMP-shaped toy: encoder (conv + norm) and decoder/head parts."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.GroupNorm(2, 4))
        self.decoder = torch.nn.Conv2d(4, 11, 1)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def test_param_groups_split_encoder_and_norms_biases():
    cfg = recipe_cfg(
        "optimizer.name=adamw",
        "optimizer.lr=1e-3",
        "optimizer.encoder_lr_mult=0.1",
        "optimizer.weight_decay=0.05",
        "optimizer.decay_norms_biases=false",
    )
    groups = {g["name"]: g for g in param_groups(Toy(), cfg)}
    assert set(groups) == {"decoder", "decoder_no_decay", "encoder", "encoder_no_decay"}
    assert groups["encoder"]["lr"] == pytest.approx(1e-4) and groups["decoder"]["lr"] == pytest.approx(1e-3)
    assert [p.ndim for p in groups["encoder"]["params"]] == [4]  # conv weight only
    assert len(groups["encoder_no_decay"]["params"]) == 3  # conv bias, norm weight, norm bias
    assert groups["encoder_no_decay"]["weight_decay"] == 0 and groups["decoder"]["weight_decay"] == 0.05
    optimizer = build_optimizer(Toy(), cfg)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.param_groups[0]["name"] == "decoder"
    original = build_optimizer(Toy(), recipe_cfg())  # Adam, decay on everything: two groups
    assert isinstance(original, torch.optim.Adam) and [g["name"] for g in original.param_groups] == [
        "decoder",
        "encoder",
    ]
    sgd = build_optimizer(Toy(), recipe_cfg("optimizer.name=sgd", "optimizer.momentum=0.9"))
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["nesterov"]


def lr_curve(cfg, steps_per_epoch, epochs, losses=()):
    optimizer = build_optimizer(Toy(), cfg)
    schedule = Schedule(optimizer, cfg, steps_per_epoch, epochs)
    curve = []
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            curve.append([g["lr"] for g in optimizer.param_groups])
            optimizer.step()
            schedule.step()
        schedule.epoch_end(losses[epoch] if losses else 1.0)
    return curve


@pytest.mark.parametrize("name", ["poly", "cosine"])
def test_warmup_then_decay_by_hand(name):
    cfg = recipe_cfg(
        f"scheduler.name={name}",
        "scheduler.warmup_epochs=0.5",
        "scheduler.warmup_factor=0.1",
        "scheduler.power=1.0",
        "scheduler.min_lr=0",
        "optimizer.lr=1.0",
        "optimizer.encoder_lr_mult=0.5",
    )
    curve = lr_curve(cfg, 10, 2)  # 20 steps, 5 of warmup
    decay = (lambda p: 1 - p) if name == "poly" else (lambda p: 0.5 * (1 + math.cos(math.pi * p)))
    for step, lrs in enumerate(curve):
        warm = 0.1 + 0.9 * step / 5 if step < 5 else 1.0
        assert lrs[0] == pytest.approx(decay(step / 20) * warm)
        assert lrs[-1] == pytest.approx(0.5 * lrs[0])  # the encoder's group keeps its multiplier


def test_plateau_follows_torch_rule_after_warmup():
    cfg = recipe_cfg("scheduler.warmup_epochs=1", "scheduler.patience=1", "scheduler.factor=0.5", "optimizer.lr=1.0")
    curve = [lrs[0] for lrs in lr_curve(cfg, 4, 5, losses=[1.0, 0.9, 0.95, 0.95, 0.95])]
    # epoch 1 warms up; loss improves at epochs 1-2, then 2 bad epochs (> patience 1) halve it
    assert curve[:4] == pytest.approx([0.001 + 0.999 * s / 4 for s in range(4)])
    assert curve[4:16] == pytest.approx([1.0] * 12) and curve[16:] == pytest.approx([0.5] * 4)
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), factor=0.5, patience=1
    )
    for loss in [1.0, 0.9, 0.95, 0.95, 0.95]:
        reference.step(loss)
    assert reference.get_last_lr()[0] == pytest.approx(curve[-1])


def test_accumulation_matches_one_bigger_batch():
    from trashseg.training import distributed
    from trashseg.training.trainer import Stepper, train_one_epoch

    torch.manual_seed(1)
    images, masks = torch.randn(8, 3, 8, 8), torch.randint(0, 11, (8, 8, 8))
    loss_fn = torch.nn.CrossEntropyLoss()

    def run(batch, accumulate):
        model = Toy()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        stepper = Stepper(model, optimizer, scaler, accumulate=accumulate, clip=0)
        loader = [{"image": images[i : i + batch], "mask": masks[i : i + batch]} for i in range(0, 8, batch)]
        train_one_epoch(
            model, loader, loss_fn, stepper, torch.device("cpu"), "t", None, False, distributed.Context(), 1
        )
        return [p.detach().clone() for p in model.parameters()]

    big = run(8, 1)
    for mine, theirs in zip(run(2, 4), big):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(a, b) for a, b in zip(run(2, 1), big))  # without accumulation: 4 steps differ


def test_auto_class_weights_match_a_hand_count(coco_dir, tmp_path):
    from trashseg.data.loaders import load_set
    from trashseg.data.masks import MaskCache, read_mask
    from trashseg.training.losses import auto_class_weights, class_weights, pixel_counts

    cfg = load_config(
        None,
        [f"data.data_dir={coco_dir}", f"data.cache_dir={tmp_path / 'cache'}", "loss.class_weights=auto"],
        models=False,
    )
    cs = load_set(cfg, coco_dir / "train_all.json")
    hand = np.zeros(11, dtype=np.int64)
    for path in MaskCache(tmp_path / "cache").build(cs, progress=False):
        mask = read_mask(path)
        for c in range(11):
            hand[c] += int((mask == c).sum())
    assert pixel_counts(cfg, cs).tolist() == hand.tolist()
    freq = hand / hand.sum()
    median = np.median(freq[hand > 0])
    expected = [min(10.0, median / f) if f > 0 else 1.0 for f in freq]
    assert class_weights(cfg, cs, quiet=True).tolist() == pytest.approx(expected, rel=1e-6)
    assert auto_class_weights([0, 10, 30, 60], cap=2.0).tolist() == pytest.approx([1.0, 2.0, 1.0, 0.5])


def test_loss_terms_and_weighted_cross_entropy():
    from trashseg.training.losses import build_loss

    torch.manual_seed(0)
    logits, target = torch.randn(2, 11, 8, 8), torch.randint(0, 11, (2, 8, 8))
    target[0, 0, 0] = 255
    parts = {
        "ce": recipe_cfg("loss.dice_weight=0", "loss.ce_weight=1", "loss.smoothing=0"),
        "lovasz": recipe_cfg("loss.dice_weight=0", "loss.ce_weight=0", "loss.lovasz_weight=1"),
        "focal": recipe_cfg("loss.dice_weight=0", "loss.ce_weight=0", "loss.focal_weight=1"),
    }
    values = {k: build_loss(cfg)(logits, target).item() for k, cfg in parts.items()}
    both = recipe_cfg("loss.dice_weight=0", "loss.ce_weight=1", "loss.smoothing=0", "loss.lovasz_weight=0.5")
    assert build_loss(both)(logits, target).item() == pytest.approx(values["ce"] + 0.5 * values["lovasz"], rel=1e-5)
    assert all(v > 0 for v in values.values())
    weights = [float(i + 1) for i in range(11)]
    weighted = recipe_cfg("loss.dice_weight=0", "loss.smoothing=0", f"loss.class_weights={weights}")
    expected = torch.nn.functional.cross_entropy(logits, target, weight=torch.tensor(weights), ignore_index=255)
    assert build_loss(weighted)(logits, target).item() == pytest.approx(0.6 * expected.item(), rel=1e-5)
    with pytest.raises(TrashsegError, match=r"loss.class_weights: 3 numbers given; give one per class \(11"):
        recipe_cfg("loss.class_weights=[1,2,3]")
    with pytest.raises(TrashsegError, match="are all 0"):
        recipe_cfg("loss.ce_weight=0", "loss.dice_weight=0")


def test_scale_crop_gives_img_size_crops_with_ignored_padding():
    from trashseg.data.transforms import train_transform

    cfg = recipe_cfg("train.img_size=64")
    cfg["augment"]["train"] = [{"ScaleCrop": {"scale": [0.5, 0.5]}}]  # always half size: padded
    out = train_transform(cfg)(image=np.zeros((100, 100, 3), np.uint8), mask=np.ones((100, 100), np.uint8))
    assert tuple(out["image"].shape) == (3, 64, 64)
    assert set(np.unique(out["mask"].numpy())) == {1, 255} and (out["mask"] == 1).sum() == 32 * 32
    cfg["augment"]["train"] = [{"ScaleCrop": {"scale": [2.0, 2.0]}}]  # always double: a crop
    out = train_transform(cfg)(image=np.zeros((100, 100, 3), np.uint8), mask=np.ones((100, 100), np.uint8))
    assert tuple(out["image"].shape) == (3, 64, 64) and set(np.unique(out["mask"].numpy())) == {1}
    cfg["augment"]["train"] = [{"ScaleCrop": {"scale": [2.0, 0.5]}}]
    with pytest.raises(TrashsegError, match="ScaleCrop scale=.*need 0 < low <= high"):
        train_transform(cfg)


def test_presets_name_their_run_and_layer_over_their_model():
    import yaml

    for preset in sorted((ROOT / "configs").glob("*.yaml")):
        base = yaml.safe_load(preset.read_text())["base"]
        folder = dict(
            m.split("=") for m in ["fpn=FPN", "deeplab=DeepLabV3Plus", "upernet=UPerNet", "segformer=Segformer"]
        )[base]
        cfg = load_config(ROOT / "code" / folder / "config.yaml", ["model.weights=none"], models=False, preset=preset)
        assert cfg["model"]["name"] == preset.stem
    lite = load_config(
        ROOT / "code/FPN/config.yaml", ["train.epochs=2"], models=False, preset=ROOT / "configs/cpu-lite.yaml"
    )
    assert lite["model"]["weights"] == "offline" and lite["train"]["img_size"] == 256 and lite["train"]["epochs"] == 2


def train_in_process(coco_dir, runs, *sets, on_epoch=None):
    from trashseg.training.trainer import train

    cfg = load_config(
        ROOT / "code/FPN/config.yaml",
        [
            f"data.data_dir={coco_dir}",
            f"data.cache_dir={runs / 'cache'}",
            f"train.runs_dir={runs}",
            f"model.encoder={TINY_ENCODER}",
            "model.weights=none",
            "train.img_size=64",
            "train.batch_size=2",
            "eval.batch_size=2",
            "data.num_workers=0",
            "train.device=cpu",
            *sets,
        ],
    )
    return train(cfg, on_epoch=on_epoch)


def tensorboard_lr(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars("train/lr")]


class Killed(Exception):
    pass


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["poly", "plateau"])
def test_a_run_killed_mid_warmup_resumes_the_same_learning_rate_curve(coco_dir, tmp_path, schedule):
    tiny_run(coco_dir, tmp_path)  # fold files
    sets = [
        "train.epochs=3",
        "optimizer.name=adamw",
        "optimizer.lr=1e-3",
        f"scheduler.name={schedule}",
        "scheduler.warmup_epochs=1.5",  # the kill after epoch 1 lands inside the warmup
        "scheduler.patience=0",
        "ema.enabled=true",
        "train.accumulate=2",
        "optimizer.clip_grad_norm=1.0",
    ]
    train_in_process(coco_dir, tmp_path / "whole", *sets)

    def kill_after_first(epoch, val):
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        train_in_process(coco_dir, tmp_path / "killed", *sets, on_epoch=kill_after_first)
    train_in_process(coco_dir, tmp_path / "killed", *sets, "train.resume=true")
    whole, resumed = (tmp_path / d / "fpn" / "fold0" for d in ("whole", "killed"))
    curve = tensorboard_lr(whole)
    assert len(curve) == 3 * 2 and curve[0][1] < curve[2][1]  # 4 batches / accumulate 2 = 2 steps an epoch
    again = tensorboard_lr(resumed)
    assert [s for s, _ in again] == [s for s, _ in curve] == list(range(1, 7))
    assert [v for _, v in again] == pytest.approx([v for _, v in curve], rel=1e-6)

    def rows(run):
        with open(run / "metrics.csv", newline="") as fh:
            return [
                {k: float(v) for k, v in r.items() if k in ("lr", "train_loss", "val_loss")} for r in csv.DictReader(fh)
            ]

    for a, b in zip(rows(whole), rows(resumed), strict=True):
        assert a == pytest.approx(b, rel=1e-4)


@pytest.mark.slow
def test_best_pt_holds_the_ema_weights(coco_dir, tmp_path):
    tiny_run(coco_dir, tmp_path)
    train_in_process(coco_dir, tmp_path, "train.epochs=1", "ema.enabled=true", "tracking.loggers=[]")
    run = tmp_path / "fpn" / "fold0"
    best = torch.load(run / "best.pt", weights_only=True)
    last = torch.load(run / "last.pt", weights_only=True)
    ema, raw = last["training"]["ema"], last["training"]["raw_model"]
    assert all(torch.equal(best["model"][k], ema[k]) for k in ema)
    assert any(not torch.equal(ema[k], raw[k]) for k in raw if raw[k].is_floating_point())
