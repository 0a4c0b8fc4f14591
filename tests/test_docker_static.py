"""No Docker engine runs here, so the image is checked statically: hadolint, and that it installs
exactly the pinned stack with the hub closed at run time."""

import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

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


def test_installs_exactly_the_pinned_requirements():
    installs = [line for line in DOCKERFILE.splitlines() if "pip install" in line]
    assert installs == [
        "    && /opt/venv/bin/pip install -r requirements.txt -c constraints.txt",
        "RUN /opt/venv/bin/pip install --no-deps --no-build-isolation -e . \\",
    ]  # the kit, no deps
    assert "COPY requirements.txt constraints.txt ./" in DOCKERFILE
    requirements, constraints = pins(ROOT / "requirements.txt"), pins(ROOT / "constraints.txt")
    for name, version in requirements.items():
        assert constraints.get(name) == version, f"{name}: requirements {version}, constraints {constraints.get(name)}"
    assert all(
        "==" in line
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )


def test_image_is_pinned_non_root_and_offline_at_run_time():
    base = re.search(r"^FROM (\S+)", DOCKERFILE, re.M).group(1)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base
    major_minor = ".".join(base.split(":")[1].split(".")[:2])
    assert major_minor == f"{sys.version_info.major}.{sys.version_info.minor}"  # the pins were resolved here
    assert re.search(r"^USER 1000:1000$", DOCKERFILE, re.M)
    assert "HF_HUB_OFFLINE=1" in DOCKERFILE
    assert "kaggle.json" not in DOCKERFILE and "KAGGLE_KEY" not in DOCKERFILE
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "runs", "weights"} <= set(ignored)
