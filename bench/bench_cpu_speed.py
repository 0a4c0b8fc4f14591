"""bench-cpu-speed: what this CPU trains the CPU presets' model fastest with, measured in one run.

1. Precision and layout: training images/s of FPN on EfficientNet-Lite0 (256 px, batch 8, the kit's
   loss) in fp32 and the default memory layout (the baseline), fp32 channels_last, and channels_last
   with bf16 autocast, as ratios to fp32; the three alternate round by round in one process, so the
   machine's drift hits each alike (each figure is the median round). Also each setting's loss on one
   batch (the same weights), bf16's precision cost, and what `speed: auto` picks here and why.
2. The other knobs a 2-core run depends on: torch's intra-op threads and DataLoader workers, timed
   end to end (loader + training step, cpu-lite's augmentations on the bundled sample's photos, --size)
   at the precision picked in 1. Pinned memory only serves host-to-GPU copies: a CPU run leaves it off.

`--isa avx2` reruns the bench with oneDNN and ATen capped at AVX2 (ONEDNN_MAX_CPU_ISA,
ATEN_CPU_CAPABILITY): a CPU without AVX512 or native bf16, on a machine that has them. The figures go
to bench/results/cpu-speed-<kind>.json (docs/results.md quotes them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, cpu_flags

MODES = {
    "fp32": ["speed.channels_last=false", "speed.amp=off"],
    "channels_last": ["speed.channels_last=true", "speed.amp=off"],
    "channels_last_bf16": ["speed.channels_last=true", "speed.amp=bf16"],
}
# (intra-op threads, loader workers); the kit's defaults: threads = torch's own (the cores), workers auto
KNOBS = [(2, 0), (2, 1), (2, 2), (1, 1), (1, 2)]
CAPPED = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


def precision_rounds(args, torch) -> tuple[dict, dict]:
    import copy

    from trashseg.config import load_config
    from trashseg.modeling.architectures import build_model
    from trashseg.runtime.precision import choose
    from trashseg.training.losses import build_loss

    device = torch.device("cpu")
    torch.manual_seed(0)
    base = [f"model.encoder={args.encoder}", "model.weights=none", "loss.lovasz_weight=0.07", "loss.focal_weight=0.28"]
    model0 = build_model(load_config(None, base))
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 11, (args.batch, args.size, args.size))
    setups = {}
    for name, sets in MODES.items():
        cfg = load_config(None, base + sets)
        choice = choose(cfg.speed, device)
        model = copy.deepcopy(model0)
        if choice.channels_last:
            model = model.to(memory_format=torch.channels_last)
        images = x.contiguous(memory_format=torch.channels_last) if choice.channels_last else x
        setups[name] = (model, images, choice.amp, build_loss(cfg), torch.optim.AdamW(model.parameters(), 1e-3))

    def step(name: str) -> None:
        model, images, amp, loss_fn, opt = setups[name]
        opt.zero_grad()
        with torch.autocast("cpu", dtype=amp or torch.float32, enabled=amp is not None):
            logits = model(images)
        loss_fn(logits.float(), y).backward()
        opt.step()

    def eval_loss(name: str) -> float:  # eval mode: no dropout, so the same weights give comparable losses
        model, images, amp, loss_fn, _ = setups[name]
        model.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=amp or torch.float32, enabled=amp is not None):
            logits = model(images)
        model.train()
        return loss_fn(logits.float(), y).item()

    losses = {name: eval_loss(name) for name in MODES}  # before any step: the same weights in each
    for name in MODES:
        step(name)  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in MODES}
    for _ in range(args.rounds):
        for name in MODES:
            start = time.perf_counter()
            for _ in range(args.steps):
                step(name)
            rates[name].append(args.batch * args.steps / (time.perf_counter() - start))
    return {name: statistics.median(r) for name, r in rates.items()}, losses


def knob_rates(args, torch) -> tuple[dict[str, float], str]:
    """Images/s of whole training steps (loader included) for each (threads, workers), and the name of
    the kit's default setting among them."""
    from trashseg.config import load_config
    from trashseg.data.loaders import load_set, loader_workers, make_loader
    from trashseg.data.transforms import train_transform
    from trashseg.modeling.architectures import build_model
    from trashseg.runtime.precision import choose
    from trashseg.settings import changed
    from trashseg.training.losses import build_loss

    sample = ROOT / "data" / "sample"
    cache = tempfile.mkdtemp(prefix="bench-cpu-speed-")
    preset = ROOT / "configs" / "cpu-lite.yaml"
    cfg = load_config(
        ROOT / "code" / "FPN" / "config.yaml",
        ["model.weights=none", f"data.data_dir={sample}", f"data.cache_dir={cache}", f"train.img_size={args.size}"],
        preset=preset,
    )
    device = torch.device("cpu")
    choice = choose(cfg.speed, device)
    cs = load_set(cfg, sample / "train_all.json", quiet=True)
    rates = {}
    for threads, workers in KNOBS:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = build_model(cfg)
        if choice.channels_last:
            model = model.to(memory_format=torch.channels_last)
        loss_fn, opt = build_loss(cfg, quiet=True), torch.optim.AdamW(model.parameters(), 1e-3)
        run_cfg = changed(cfg, {"data.num_workers": workers})
        loader = make_loader(
            run_cfg,
            cs,
            train_transform(run_cfg),
            with_masks=True,
            train=True,
            generator=torch.Generator().manual_seed(0),
            progress=False,
        )
        seen, start = 0, None
        for index, batch in enumerate(loader):
            if index == 1:  # the first batch starts the workers: not counted
                seen, start = 0, time.perf_counter()
            images = batch["image"]
            if choice.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            opt.zero_grad()
            with torch.autocast("cpu", dtype=choice.amp or torch.float32, enabled=choice.amp is not None):
                logits = model(images)
            loss_fn(logits.float(), batch["mask"]).backward()
            opt.step()
            seen += images.shape[0]
            if index >= args.loader_steps:
                break
        rates[f"threads={threads} workers={workers}"] = seen / (time.perf_counter() - start)
        del loader
    torch.set_num_threads(args.threads0)
    return rates, f"threads={args.threads0} workers={loader_workers(cfg)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2, help="training steps a round")
    parser.add_argument("--loader-steps", type=int, default=5, help="timed steps a (threads, workers) setting")
    parser.add_argument("--encoder", default="tu-tf_efficientnet_lite0")
    parser.add_argument("--isa", choices=("native", "avx2"), default="native", help="avx2: cap oneDNN and ATen at AVX2")
    parser.add_argument("--no-knobs", action="store_true", help="only part 1 (precision and layout)")
    parser.add_argument(
        "--out", type=Path, default=None, help="result JSON (default bench/results/cpu-speed-<kind>.json)"
    )
    args = parser.parse_args()
    if args.isa == "avx2" and any(os.environ.get(k) != v for k, v in CAPPED.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **CAPPED})

    import torch

    from trashseg.atomic import write_json
    from trashseg.runtime.precision import choose, cpu_bf16

    args.threads0 = torch.get_num_threads()
    native, why = cpu_bf16()
    auto = choose(argparse.Namespace(amp="auto", channels_last="auto"), torch.device("cpu"))
    rates, losses = precision_rounds(args, torch)
    cpu = cpu_flags()
    capped = args.isa == "avx2"
    print(
        f"{cpu['model']} ({'ISA capped at AVX2: ' if capped else ''}CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}), {args.threads0} threads; "
        f"native bf16: {'yes' if native else 'no'} ({why})"
    )
    print(f"FPN {args.encoder}, {args.size} px, batch {args.batch}, {args.rounds} rounds x {args.steps} steps")
    base = rates["fp32"]
    for name in MODES:
        print(f"  {name:<20} {rates[name]:6.2f} images/s (x{rates[name] / base:.2f})  loss {losses[name]:.5f}")
    print(f"the kit picks here (speed auto): {auto.describe()}")
    knobs, default = ({}, "") if args.no_knobs else knob_rates(args, torch)
    if knobs:
        best = max(knobs, key=knobs.get)
        print(
            f"cpu-lite steps with the loader ({args.loader_steps} timed steps of 8 images, sample photos, "
            f"amp {auto.amp_name}):"
        )
        for name, rate in knobs.items():
            mark = " <- the kit's default" if name == default else ""
            print(f"  {name:<20} {rate:6.2f} images/s (x{rate / knobs[default]:.2f}){mark}")
        print(f"fastest: {best}")
    kind = "avx2-capped" if capped else ("bf16-native" if native else "no-native-bf16")
    result = {
        "cpu": cpu,
        "isa_cap": {k: os.environ.get(k) for k in CAPPED} if capped else None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": args.threads0,
        "torch": torch.__version__,
        "native_bf16": native,
        "native_bf16_why": why,
        "model": f"FPN {args.encoder} {args.size} px batch {args.batch}",
        "images_per_s": {k: round(v, 3) for k, v in rates.items()},
        "ratio_to_fp32": {k: round(v / base, 3) for k, v in rates.items()},
        "loss": {k: round(v, 5) for k, v in losses.items()},
        "auto_picks": auto.record(),
        "loader_knobs_images_per_s": {k: round(v, 3) for k, v in knobs.items()},
        "kit_default_knobs": default,
    }
    out = args.out or ROOT / "bench" / "results" / f"cpu-speed-{kind}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    for name in ("channels_last", "channels_last_bf16"):
        print(f"{name}_speedup={rates[name] / base:.3f}")
    print(f"bf16_loss_difference={abs(losses['channels_last_bf16'] - losses['fp32']):.5f}")
    print(f"native_bf16={int(native)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
