"""bench-bundle: what a code competition's bundle weighs and costs, on the demo's runs (make demo):
`make kaggle-bundle` (fp16 checkpoints, the default) and its notebook checked offline with
`make kaggle-bundle-check`, in the stand-in container (--network none) and in a fresh venv, then the
same bundle with HALF=0 (checkpoints as trained), whose CSV must equal the runs' own merge. Each check
leaves its figures in bundles/.check-NAME/check.json; this keeps them, with the bundles' sizes and
times, in bench/results/bundle.json (in git), which docs/containers-and-gpus.md's figures are read from.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path

from common import ROOT, keep, results_path
from trashseg.ensembling.bundle import megabytes

NAME = "bench-bundle"


def make(target: str, **variables) -> float:
    """Run a make target of this checkout; its seconds (a failure stops the bench with its output)."""
    cmd = ["make", "--no-print-directory", "-C", str(ROOT), target, *(f"{k}={v}" for k, v in variables.items())]
    print("$ " + " ".join(cmd), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench-bundle: make {target} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    print("\n".join(proc.stdout.strip().splitlines()[-3:]), flush=True)
    return time.perf_counter() - start


DEMO_MODELS = "cpu-lite cpu-lite-deeplab"  # make demo's runs (their presets infer with TTA)


def bundle(runs: Path, name: str, half: int) -> dict:
    seconds = make(
        "kaggle-bundle",
        RUNS=runs,
        MODELS=DEMO_MODELS,
        DATA_DIR="data/sample",
        COMPETITION="trash-seg",
        NAME=name,
        HALF=half,
    )
    folder = ROOT / "bundles" / name
    record = json.loads((folder / "bundle.json").read_text())
    wheels, checkpoints = sorted((folder / "wheels").glob("*.whl")), sorted((folder / "runs").rglob("best.pt"))
    every = [p for p in folder.rglob("*") if p.is_file()]
    return {
        "seconds": round(seconds, 1),
        "precision": record["precision"],
        "wheels": len(wheels),
        "checkpoints": len(checkpoints),
        "sizes_mb": {
            k: round(megabytes(v), 1) for k, v in (("wheels", wheels), ("checkpoints", checkpoints), ("all", every))
        },
    }


def check(runs: Path, name: str, where: str, docker: str, base: str | None, ca: str | None) -> dict:
    variables = {"NAME": name, "DATA_DIR": "data/sample", "RUNS": runs, "CHECK_IN": where, "DOCKER": docker}
    variables |= {k: v for k, v in (("BASE_IMAGE", base), ("CA_BUNDLE", ca)) if v}
    seconds = make("kaggle-bundle-check", **variables)
    return {
        "seconds": round(seconds, 1),
        **json.loads((ROOT / "bundles" / f".check-{name}" / "check.json").read_text()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "demo", help="runs to bundle (make demo's)")
    parser.add_argument("--docker", default="podman" if shutil.which("podman") else "docker")
    parser.add_argument("--base-image", default=None, help="the stand-in image's base (BASE_IMAGE)")
    parser.add_argument("--ca-bundle", default=None, help="a proxy's CA for building the stand-in image")
    parser.add_argument("--out", type=Path, default=None, help="result JSON (default bench/results/bundle.json)")
    args = parser.parse_args()
    if not list(args.runs.glob("*/fold*/probs_test*.npy")):
        raise SystemExit(f"bench-bundle: no runs with test probabilities under {args.runs}: run make demo first")
    standin = subprocess.run([args.docker, "image", "exists", "trashseg-kaggle:standin"], capture_output=True)
    figures = {
        "fp16": bundle(args.runs, NAME, 1),
        "fp16_container": check(args.runs, NAME, "container", args.docker, args.base_image, args.ca_bundle),
        "fp16_venv": check(args.runs, NAME, "venv", args.docker, None, None),
        "as_trained": bundle(args.runs, f"{NAME}-as-trained", 0),
        "as_trained_venv": check(args.runs, f"{NAME}-as-trained", "venv", args.docker, None, None),
    }
    figures["fp16_container"]["stand_in_image_was_built"] = standin.returncode != 0
    c, v, t = figures["fp16_container"], figures["fp16_venv"], figures["as_trained_venv"]
    print(
        f"\nbundle {figures['fp16']['sizes_mb']['all']} MB ({figures['fp16']['wheels']} wheels, fp16 checkpoints), "
        f"made in {figures['fp16']['seconds']:.0f} s; notebook offline {c['notebook_seconds']:.0f} s (container), "
        f"{v['notebook_seconds']:.0f} s (venv); fp16 vs the runs' own merge: {c['pixels_differing_from_runs_own']} of "
        f"{c['pixels']} pixels; as trained ({figures['as_trained']['sizes_mb']['all']} MB): "
        f"{t['pixels_differing_from_runs_own']}"
    )
    settings = {"runs": str(args.runs.relative_to(ROOT)) if args.runs.is_relative_to(ROOT) else str(args.runs)}
    keep(
        "bench-bundle",
        figures,
        {**settings, "data": "data/sample", "docker": args.docker},
        args.out or results_path("bundle"),
    )


if __name__ == "__main__":
    main()
