"""The GPU bench script itself runs end to end (on CPU, tiny encoder, 64 px, one step), so a lent
GPU's few minutes are not lost to a bug in it. Figures are printed, never asserted."""

import json
import subprocess
import sys

import pytest

from helpers import ROOT, TINY_ENCODER, make_process

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


def test_bench_ensemble_runs_its_kit_and_baseline_commands_at_smoke_size():
    """make bench-ensemble's script at 8 and 16 generated images: the kit's code/ensemble.py and the
    original-style baseline both run and write the same CSV (the figures themselves are not asserted)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_ensemble.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proc.stdout.count("(identical CSV: True)") == 2
    keys = {line.split("=")[0] for line in proc.stdout.splitlines() if "=" in line and " " not in line}
    assert {"peak_rss_mb_8", "images_per_s_16", "rss_growth_8_to_16", "baseline_over_kit_rss_16"} <= keys


def test_make_gpu_check_without_a_gpu_fails_with_one_line():
    """make gpu-check on a machine with no GPU (this one, CUDA hidden): the versions, then one line
    saying what is missing, and a non-zero exit: the check cannot pass by accident."""
    proc = make_process("gpu-check", env={"CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no GPU visible" in errors[0] and "torch " in proc.stdout


def bench(script: str, *args: str, timeout: int = 300) -> dict[str, str]:
    """Run bench/<script> with ``args``; its key=value lines (figures are printed, never asserted)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line and " " not in line)


def test_bench_data_cpu_durable_and_tracking_scripts_run_at_smoke_size():
    """make bench-data (4 sample photos at 64 px), bench-cpu (tiny encoder, 64 px, one step), bench-durable
    (one write each), bench-fit (2 generated images at 64 px) and bench-tracking (tiny encoder, one epoch
    per tracking variant) run to their figures: a bench that no longer runs is found here, not by the next
    person who needs its numbers."""
    assert {"mask_speedup", "item_speedup"} <= set(bench("bench_data.py", "--smoke"))
    cpu = bench("bench_cpu.py", "--smoke")
    assert {"train_images_per_s_default", "infer_images_per_s_tuned", "alloc_speedup"} <= set(cpu)
    assert bench("bench_durable.py", "--smoke") == {}  # a table, no key=value lines: it ran
    assert {"fit_speedup_2", "fit_speedup_3"} <= set(bench("bench_fit.py", "--smoke"))
    tracking = bench("bench_tracking.py", "--smoke", "--epochs", "1", "--reps", "1", timeout=600)
    assert {"epoch_overhead_tensorboard", "epoch_overhead_wandb", "epoch_overhead_tensorboard_wandb"} <= set(tracking)


def test_bench_recipes_runs_its_make_steps_at_smoke_size(tmp_path):
    """make bench-recipes' script with --smoke: the bundled sample split by date, the baseline row trained
    on each fold, inferred and scored out of fold through the real make targets at a tiny budget, its
    figures in a ledger of the smoke run's own (the committed ledger untouched), read back, not
    retrained, by a second run."""
    ledger = ROOT / "bench" / "recipes-ledger.json"
    before = ledger.read_text()
    figures = bench("bench_recipes.py", "--smoke", "--runs", str(tmp_path), timeout=600)
    assert {"orig_miou_per_image", "orig_per_image_gain"} <= set(figures) and figures[
        "orig_per_image_gain"
    ] == "+0.0000"
    kept = json.loads((tmp_path / "ledger.json").read_text())["runs"]["orig"]
    assert float(figures["orig_miou_per_image"]) == pytest.approx(kept["plain"]["miou_per_image"], abs=1e-4)
    assert all((tmp_path / "orig" / f"fold{k}" / "best.pt").is_file() for k in range(3))
    assert ledger.read_text() == before
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_recipes.py"), "--smoke", "--runs", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "make train" not in proc.stdout  # the scored row is read, not trained again
