"""`make docker-build` and `make docker-smoke`: the kit's image built with docker or podman, on any base
(the pinned Python image, or `make docker-base` for hosts with no registry), with a proxy's CA bundle as
a build secret (used by apt and pip, never stored in a layer); and the proof that it runs: `make demo`
inside it with no network, no GPU, as its non-root user, the CSV validated on the host, then one
`make docker-<target>` passthrough. Prints build and run times and the image's size."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE_USER = 1000  # the Dockerfile's `useradd --uid 1000 trashseg`


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def engine(docker: str) -> str:
    if shutil.which(docker) is None:
        fail(f"DOCKER={docker}: not found; install docker, or podman (make setup-podman) and pass DOCKER=podman")
    return docker


def image_size(docker: str, image: str) -> int | None:
    proc = subprocess.run([docker, "image", "inspect", "--format", "{{.Size}}", image], capture_output=True, text=True)
    return int(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip().isdigit() else None


def build(args) -> float:
    docker = engine(args.docker)
    cmd = [docker, "build", "-t", args.image, "--build-arg", f"DOCKER_WEIGHTS={args.weights}"]
    if args.base:
        cmd += ["--build-arg", f"BASE_IMAGE={args.base}"]
    if args.encoder:
        cmd += ["--build-arg", f"ENCODER={args.encoder}"]
    if args.weights == "none":
        cmd += ["--build-arg", "WEIGHTS_PATH=none"]
    elif args.weights not in ("offline-lite0", "hub"):
        fail(f"DOCKER_WEIGHTS={args.weights}: use offline-lite0, hub or none")
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
    size = image_size(docker, args.image)
    print(
        f"docker-smoke: passed; image {args.image} {size / 1e9:.2f} GB"
        + (f", built in {built:.0f} s" if built is not None else " (already built)")
        + f", make demo inside it (no network, no GPU, uid {owner}) {demo_seconds:.0f} s"
    )


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
    parser.add_argument("--weights", default="offline-lite0")
    parser.add_argument("--encoder")
    parser.add_argument("--gpus", default="all", help="DOCKER_GPUS: the --gpus value; empty for none")
    args = parser.parse_args(argv)
    {"build": build, "smoke": smoke, "gpu-check": gpu_check}[args.what](args)


if __name__ == "__main__":
    main()
