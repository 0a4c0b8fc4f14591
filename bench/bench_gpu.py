"""bench-gpu: training and inference images/s and peak GPU memory at 512 px, plain fp32 against
the kit's GPU defaults (bf16/fp16 autocast, channels_last, cuDNN autotuning, TF32) in the same run,
for FPN and DeepLabV3Plus with an EfficientNet-B3 encoder and for the GPU presets (configs/:
UPerNet-ConvNeXt, UPerNet-Swin, Segformer-MiT-B2, each at its own batch size and optimizer).
Synthetic batches already on the GPU, so the figures are the model's step, not the data loader's.
`--device cpu --smoke` with tiny encoders is the test suite's run of this very script (on CPU the
kit's defaults are plain fp32)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from trashseg.config import load_config
from trashseg.modeling.architectures import build_model
from trashseg.training.losses import build_loss
from trashseg.training.optim import build_optimizer
from trashseg.training.speed import configure_backends, speed_choice

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"fpn": "FPN", "deeplab": "DeepLabV3Plus", "upernet": "UPerNet", "segformer": "Segformer"}
GPU_PRESETS = ("upernet-convnext", "upernet-swin", "segformer-mit-b2")
# --smoke: the smallest encoder of each preset's family
SMOKE_ENCODERS = {"convnext": "tu-convnext_atto", "swin": "tu-swin_tiny_patch4_window7_224", "mit_b": "mit_b0"}


def preset_config(name: str, overrides: list[str]) -> dict:
    import yaml

    path = ROOT / "configs" / f"{name}.yaml"
    base = yaml.safe_load(path.read_text())["base"]
    return load_config(ROOT / "code" / FOLDERS[base] / "config.yaml", overrides, preset=path)


def setup(spec, fast: bool, device: torch.device, smoke: bool):
    """``spec``: (arch, encoder) or a preset name."""
    overrides = ["model.weights=none"]
    if not fast:
        overrides += ["speed.amp=off", "speed.channels_last=false", "speed.cudnn_benchmark=false"]
    if isinstance(spec, str):
        cfg = preset_config(spec, overrides)
        if smoke:
            encoder = cfg.model.encoder
            tiny = next((t for family, t in SMOKE_ENCODERS.items() if family in encoder), encoder)
            cfg = preset_config(spec, overrides + [f"model.encoder={tiny}"])
    else:
        arch, encoder = spec
        cfg = load_config(None, overrides + [f"model.arch={arch}", f"model.encoder={encoder}"])
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    if fast:
        configure_backends(cfg, device)  # what the trainer turns on
    model = build_model(cfg).to(device)
    choice = speed_choice(cfg, device)
    if choice.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return cfg, model, choice.amp, choice.channels_last


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step, warmup: int, iters: int, device: torch.device) -> float:
    for _ in range(warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        step()
    synchronize(device)
    return time.perf_counter() - start


def bench(spec, fast, args, device) -> tuple[float, float, float]:
    cfg, model, amp, cl = setup(spec, fast, device, args.smoke)
    loss_fn = build_loss(cfg)
    opt = build_optimizer(model, cfg)  # the recipe's own (AdamW groups for the presets)
    batch = args.batch if not isinstance(spec, str) or args.smoke else cfg.train.batch_size
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    x = torch.randn(batch, 3, args.size, args.size, device=device)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 11, (batch, args.size, args.size), device=device)

    def train_step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    model.train()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    train_s = timed(train_step, args.warmup, args.iters, device)
    peak_gb = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")
    model.eval()
    xi = torch.randn(args.infer_batch, 3, args.size, args.size, device=device)
    if cl:
        xi = xi.contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def infer_step():
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            model(xi).float().softmax(1)

    infer_s = timed(infer_step, args.warmup, args.iters, device)
    return batch * args.iters / train_s, args.infer_batch * args.iters / infer_s, peak_gb


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--infer-batch", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--encoder", default="tu-tf_efficientnet_b3")
    parser.add_argument("--device", default="cuda", help="cuda (the benchmark) or cpu (a smoke run)")
    parser.add_argument("--presets", nargs="*", default=list(GPU_PRESETS), help="configs/<name>.yaml to bench")
    parser.add_argument("--smoke", action="store_true", help="tiny encoders of each preset's family")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench-gpu needs a CUDA GPU (torch.cuda.is_available() is False)")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"{name}, torch {torch.__version__}, {args.size} px, train batch {args.batch}, "
        f"infer batch {args.infer_batch}, encoder {args.encoder}"
    )
    if device.type != "cuda":
        print("smoke run: on CPU the defaults are fp32 too, so these figures are not a benchmark")
    figures = {}
    rows = [(("FPN", args.encoder), "fpn"), (("DeepLabV3Plus", args.encoder), "deeplab")]
    rows += [(name, name.replace("-", "_")) for name in args.presets]
    for spec, short in rows:
        title = spec[0] if isinstance(spec, tuple) else spec
        for fast, label in ((False, "fp32"), (True, "defaults")):
            train, infer, peak = bench(spec, fast, args, device)
            figures[f"{short}_train_images_per_s_{label}"] = train
            figures[f"{short}_infer_images_per_s_{label}"] = infer
            figures[f"{short}_train_peak_gb_{label}"] = peak
            print(f"{title:<18} {label:<9} train {train:8.1f} img/s  infer {infer:8.1f} img/s  peak {peak:5.1f} GB")
        figures[f"{short}_train_speedup"] = (
            figures[f"{short}_train_images_per_s_defaults"] / figures[f"{short}_train_images_per_s_fp32"]
        )
        figures[f"{short}_infer_speedup"] = (
            figures[f"{short}_infer_images_per_s_defaults"] / figures[f"{short}_infer_images_per_s_fp32"]
        )
    for key, value in figures.items():
        print(f"{key}={value:.2f}")


if __name__ == "__main__":
    main()
