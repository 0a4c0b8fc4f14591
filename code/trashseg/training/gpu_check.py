"""`make gpu-check` (and `make docker-gpu-check`, inside the image): what a GPU host gives the kit.
Prints the torch / CUDA / cuDNN versions and the GPUs seen, then times one AMP training step of FPN
at 512 px with the kit's GPU defaults. Without a visible GPU it stops with one line saying what is
missing (in a container: `--gpus all` and the NVIDIA container toolkit on the host), exit 3."""

from __future__ import annotations

import sys
import time

import torch

NO_GPU = 3


def versions() -> str:
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {cudnn}"


def training_step(encoder: str, size: int, batch: int) -> dict:
    """One forward/backward/step of FPN on random data under the kit's speed defaults."""
    from trashseg.config import load_config
    from trashseg.modeling.architectures import build_model
    from trashseg.training.losses import build_loss
    from trashseg.training.speed import configure_backends, speed_choice

    cfg = load_config(None, [f"model.encoder={encoder}", "model.weights=none", f"train.img_size={size}"], models=False)
    device = torch.device("cuda")
    configure_backends(cfg, device)
    choice = speed_choice(cfg, device)
    amp = choice.amp
    model = build_model(cfg).to(device)
    if choice.channels_last:
        model = model.to(memory_format=torch.channels_last)
    loss_fn = build_loss(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    images = torch.randn(batch, 3, size, size, device=device)
    masks = torch.randint(0, 11, (batch, size, size), device=device)
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.autocast("cuda", dtype=amp or torch.float32, enabled=amp is not None):
        loss = loss_fn(model(images), masks)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    torch.cuda.synchronize()
    return {
        "seconds": time.perf_counter() - start,
        "loss": float(loss),
        "amp": str(amp).replace("torch.", "") if amp else "off",
        "peak_gb": torch.cuda.max_memory_allocated() / 1e9,
    }


def check(encoder: str, size: int, batch: int) -> int:
    """Print the versions and GPUs; one AMP training step on the first GPU. NO_GPU when none is seen."""
    print(versions())
    if not torch.cuda.is_available():
        print(
            "error: no GPU visible: on the host, the NVIDIA driver and the NVIDIA container toolkit, and "
            "`docker run --gpus all` (make: DOCKER_GPUS=all, the default); on a GPU-less host this check cannot pass",
            file=sys.stderr,
        )
        return NO_GPU
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        print(f"GPU {i}: {props.name}, {props.total_memory / 2**30:.1f} GiB, compute {props.major}.{props.minor}")
    step = training_step(encoder, size, batch)
    print(
        f"one training step: FPN ({encoder}) {size} px, batch {batch}, amp {step['amp']}: "
        f"{step['seconds']:.2f} s (first step, cuDNN autotuning included), loss {step['loss']:.3f}, "
        f"peak {step['peak_gb']:.2f} GB"
    )
    return 0
