"""`make setup`'s installer (scripts/setup_venv.py): uv installs the pinned files into the venv and pip
is the fallback when uv fails; every phase prints its seconds, and the kit ends installed editable.
Run on a two-package requirements file from the package index (the real stack is what CI's own
`make setup` installs)."""

import re
import subprocess
import sys

import pytest

from helpers import ROOT

pytestmark = pytest.mark.slow  # a venv and downloads from the package index


def setup(tmp_path, *extra, env=None):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("setuptools==84.2.1\nsix==1.17.0\n")
    cmd = [sys.executable, str(ROOT / "scripts" / "setup_venv.py"), "--venv", str(tmp_path / "venv"), "-r", str(reqs)]
    return subprocess.run([*cmd, *extra], capture_output=True, text=True, cwd=ROOT, env=env)


def installed(tmp_path) -> str:
    python = tmp_path / "venv" / "bin" / "python"
    code = "import six, trashseg, pathlib; print(six.__version__, pathlib.Path(trashseg.__file__).parent)"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_uv_installs_the_pinned_files_and_the_kit_editable_timing_each_phase(tmp_path):
    proc = setup(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for phase in ("create the venv", "install uv==", "the pinned stack (uv)", "the kit, editable"):
        assert re.search(rf"setup: {re.escape(phase)}[^:]*: \d+\.\d s\n", out), (phase, out)
    assert re.search(r"setup: done in \d+\.\d s \(uv\)", out)
    assert installed(tmp_path) == f"1.17.0 {ROOT / 'code' / 'trashseg'}"
    again = setup(tmp_path)  # a second run: the venv and uv are there, the files already satisfied
    assert again.returncode == 0 and "create the venv" not in again.stdout and "install uv" not in again.stdout


def test_pip_takes_over_when_uv_fails_and_when_asked(tmp_path):
    import os

    broken = {**os.environ, "UV_DEFAULT_INDEX": (tmp_path / "no-such-index").as_uri(), "UV_OFFLINE": "1"}
    proc = setup(tmp_path, env=broken)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "setup: the pinned stack (uv):" in proc.stdout and "(failed)" in proc.stdout
    assert "setup: uv failed; pip installs the stack instead" in proc.stdout
    assert re.search(r"setup: done in \d+\.\d s \(pip\)", proc.stdout)
    assert installed(tmp_path).startswith("1.17.0 ")
    (tmp_path / "p").mkdir()
    asked = setup(tmp_path / "p", "--installer", "pip")
    assert asked.returncode == 0 and "the pinned stack (pip)" in asked.stdout
    assert "uv==" not in asked.stdout and "(uv)" not in asked.stdout
