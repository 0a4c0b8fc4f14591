"""The run folder's record of the installed packages is `pip freeze`'s, read in-process."""

import subprocess
import sys

from trashseg.training.run_record import installed


def test_installed_packages_are_pip_freezes_lines():
    freeze = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--disable-pip-version-check"], capture_output=True, text=True
    )
    assert freeze.returncode == 0, freeze.stderr
    expected = [line for line in freeze.stdout.splitlines() if not line.startswith("#")]
    ours = installed().splitlines()
    assert len(ours) > 50 and any(line.startswith("torch==") for line in ours)
    assert sorted(ours, key=str.lower) == sorted(expected, key=str.lower)
