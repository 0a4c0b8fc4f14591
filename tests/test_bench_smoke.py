"""The GPU bench script itself runs end to end (on CPU, tiny encoder, 64 px, one step), so a lent
GPU's few minutes are not lost to a bug in it. Figures are printed, never asserted."""

import subprocess
import sys

import pytest

from helpers import ROOT, TINY_ENCODER

pytestmark = pytest.mark.slow  # drives make targets / trains in subprocesses


def test_bench_gpu_script_runs_and_prints_every_figure():
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_gpu.py"),
            "--device",
            "cpu",
            "--size",
            "64",
            "--batch",
            "2",
            "--infer-batch",
            "2",
            "--warmup",
            "0",
            "--iters",
            "1",
            "--encoder",
            TINY_ENCODER,
            "--smoke",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    keys = {line.split("=")[0] for line in proc.stdout.splitlines() if "=" in line and " " not in line}
    for model in ("fpn", "deeplab", "upernet_convnext", "upernet_swin", "segformer_mit_b2"):
        assert {
            f"{model}_train_speedup",
            f"{model}_infer_speedup",
            f"{model}_train_images_per_s_fp32",
            f"{model}_train_images_per_s_defaults",
            f"{model}_infer_images_per_s_defaults",
        } <= keys


def test_bench_gpu_without_cuda_says_so():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_gpu.py")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""},
        timeout=300,
    )
    assert proc.returncode != 0 and "needs a CUDA GPU" in proc.stderr and "Traceback" not in proc.stderr
