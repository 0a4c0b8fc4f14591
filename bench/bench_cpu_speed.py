"""bench-cpu-speed: training images/s on CPU of the CPU presets' model (FPN, EfficientNet-Lite0, 256 px,
batch 8, the kit's loss) with the config's speed switches as `make train` resolves them: fp32 in the
default memory layout (speed auto on CPU, the baseline), channels_last, and channels_last with bf16
autocast (what configs/cpu-lite.yaml sets). The three alternate round by round in one process, so the
machine's drift hits each alike; each figure is the median round. Also the loss of one batch (eval
mode, the same weights) under each setting, to show bf16's precision cost, and whether the CPU has
native bf16 (without it bf16 is emulated and slower: such a CPU should keep speed.amp=off).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

MODES = {
    "fp32": ["speed.channels_last=auto", "speed.amp=auto"],
    "channels_last": ["speed.channels_last=true", "speed.amp=off"],
    "channels_last_bf16": ["speed.channels_last=true", "speed.amp=bf16"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2, help="training steps a round")
    parser.add_argument("--encoder", default="tu-tf_efficientnet_lite0")
    args = parser.parse_args()

    import copy

    import torch

    from trashseg.config import load_config
    from trashseg.modeling.architectures import build_model
    from trashseg.training.losses import build_loss
    from trashseg.training.speed import amp_dtype, cpu_has_native_bf16, use_channels_last

    device = torch.device("cpu")
    torch.manual_seed(0)
    base = [f"model.encoder={args.encoder}", "model.weights=none", "loss.lovasz_weight=0.07", "loss.focal_weight=0.28"]
    model0 = build_model(load_config(None, base))
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 11, (args.batch, args.size, args.size))
    setups = {}
    for name, sets in MODES.items():
        cfg = load_config(None, base + sets)
        amp, last = amp_dtype(cfg, device), use_channels_last(cfg, device)
        model = copy.deepcopy(model0)
        if last:
            model = model.to(memory_format=torch.channels_last)
        images = x.contiguous(memory_format=torch.channels_last) if last else x
        setups[name] = (model, images, amp, build_loss(cfg), torch.optim.AdamW(model.parameters(), 1e-3))

    def step(name: str) -> float:
        model, images, amp, loss_fn, opt = setups[name]
        opt.zero_grad()
        with torch.autocast("cpu", dtype=amp or torch.float32, enabled=amp is not None):
            logits = model(images)
        loss = loss_fn(logits.float(), y)
        loss.backward()
        opt.step()
        return loss.item()

    def eval_loss(name: str) -> float:  # eval mode: no dropout, so the same weights give comparable losses
        model, images, amp, loss_fn, _ = setups[name]
        model.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=amp or torch.float32, enabled=amp is not None):
            logits = model(images)
        model.train()
        return loss_fn(logits.float(), y).item()

    first = {name: eval_loss(name) for name in MODES}  # before any step: the same weights in each
    for name in MODES:
        step(name)  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in MODES}
    for _ in range(args.rounds):
        for name in MODES:
            start = time.perf_counter()
            for _ in range(args.steps):
                step(name)
            rates[name].append(args.batch * args.steps / (time.perf_counter() - start))
    native = cpu_has_native_bf16()
    print(
        f"FPN {args.encoder}, {args.size} px, batch {args.batch}, {torch.get_num_threads()} threads, "
        f"{args.rounds} rounds x {args.steps} steps; CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"native bf16: {'yes' if native else 'no (bf16 is emulated: keep speed.amp=off)'}"
    )
    base_rate = statistics.median(rates["fp32"])
    for name in MODES:
        rate = statistics.median(rates[name])
        print(f"{name:<20} {rate:6.2f} images/s (x{rate / base_rate:.2f})  eval loss {first[name]:.5f}")
    for name in ("channels_last", "channels_last_bf16"):
        print(f"{name}_speedup={statistics.median(rates[name]) / base_rate:.3f}")
    print(f"bf16_loss_difference={abs(first['channels_last_bf16'] - first['fp32']):.5f}")
    print(f"native_bf16={int(native)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
