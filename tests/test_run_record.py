"""The run folder's record of the installed packages is `pip freeze`'s, read in-process (an editable
install as its folder: pip writes a git checkout's remote and commit there, which run_record.json keeps)."""

import subprocess
import sys

from helpers import ROOT
from trashseg.training.run_record import installed


def test_installed_packages_are_pip_freezes_lines():
    freeze = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--disable-pip-version-check"], capture_output=True, text=True
    )
    assert freeze.returncode == 0, freeze.stderr
    expected = [line for line in freeze.stdout.splitlines() if not line.startswith(("#", "-e "))]
    ours = installed().splitlines()
    assert len(ours) > 50 and any(line.startswith("torch==") for line in ours)
    assert f"-e {ROOT}" in ours  # the kit itself, editable (make setup)
    assert sorted(line for line in ours if not line.startswith("-e ")) == sorted(expected)
