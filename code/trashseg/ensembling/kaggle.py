"""`make download` / `make submit`: the Kaggle CLI with the kit's checks around it.

Credentials are looked for where the Kaggle CLI looks (KAGGLE_USERNAME + KAGGLE_KEY, KAGGLE_API_TOKEN,
kaggle.json in KAGGLE_CONFIG_DIR, ~/.kaggle or ~/.config/kaggle) and only their presence is checked:
their values are never printed, and any echo of them in the CLI's output is masked. A submission is
validated against test.json before anything is sent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from trashseg.ensembling.submission import expected_ids_from_test_json, validate_submission
from trashseg.errors import TrashsegError


def credential_files() -> list[Path]:
    home = Path.home()
    dirs = [os.environ.get("KAGGLE_CONFIG_DIR"), home / ".kaggle", home / ".config" / "kaggle"]
    return [Path(d) / "kaggle.json" for d in dirs if d]


def secrets() -> list[str]:
    """The secret values present (to mask them); raises when there are none."""
    values = [os.environ[k] for k in ("KAGGLE_KEY", "KAGGLE_API_TOKEN") if os.environ.get(k)]
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return values
    if os.environ.get("KAGGLE_API_TOKEN"):
        return values
    for path in credential_files():
        if path.is_file():
            try:
                key = json.loads(path.read_text(encoding="utf-8")).get("key")
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                raise TrashsegError(
                    f'{path}: not a valid kaggle.json (expected {{"username": ..., "key": ...}})'
                ) from None
            return values + ([key] if key else [])
    raise TrashsegError(
        "no Kaggle credentials found: create an API token on kaggle.com (Settings -> API), then either save "
        f"kaggle.json to {Path.home() / '.kaggle' / 'kaggle.json'} (chmod 600) or export KAGGLE_USERNAME and "
        "KAGGLE_KEY. The kit never prints or stores them."
    )


def kaggle_binary() -> str:
    found = os.environ.get("TRASHSEG_KAGGLE_BIN") or shutil.which(
        "kaggle", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    )
    if not found:
        raise TrashsegError("the kaggle command is not installed (run `make setup`)")
    return found


def run_masked(args: list[str], masked: list[str]) -> None:
    proc = subprocess.run([kaggle_binary(), *args], capture_output=True, text=True)
    for stream, dest in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr)):
        for value in masked:
            if value:
                stream = stream.replace(value, "****")
        dest.write(stream)
    if proc.returncode != 0:
        raise TrashsegError(f"kaggle {args[0]} {args[1]} failed (exit {proc.returncode}); see its message above")


def safe_extract(archive: Path, dest: Path) -> None:
    """Unzip, refusing members that would land outside ``dest``."""
    root = dest.resolve()
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            target = (dest / member.filename).resolve()
            if root != target and root not in target.parents:
                raise TrashsegError(f"{archive}: member {member.filename!r} would be written outside {dest}")
        zf.extractall(dest)


def download(competition: str, dest: Path) -> None:
    masked = secrets()
    dest.mkdir(parents=True, exist_ok=True)
    run_masked(["competitions", "download", "-c", competition, "-p", str(dest)], masked)
    for archive in sorted(dest.glob("*.zip")):
        safe_extract(archive, dest)
        archive.unlink()
        print(f"unpacked {archive.name} into {dest}")


def submit(competition: str, csv_path: Path, message: str, test_json: Path) -> None:
    rows = validate_submission(csv_path, expected_ids_from_test_json(test_json))
    print(f"{csv_path}: valid ({rows} rows); submitting to {competition}")
    run_masked(["competitions", "submit", "-c", competition, "-f", str(csv_path), "-m", message], secrets())
