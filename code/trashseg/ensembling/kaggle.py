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


def upload_dataset(folder: Path, message: str, dry_run: bool) -> None:
    """Create ``folder`` (a kaggle-bundle: dataset-metadata.json) as a Kaggle dataset, or version it when
    it exists. Sub-folders go up as archives that Kaggle unpacks (--dir-mode zip)."""
    meta_path = folder / "dataset-metadata.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        ident = str(meta["id"])
    except FileNotFoundError:
        raise TrashsegError(f"{meta_path}: not found (make kaggle-bundle NAME={folder.name} writes it)") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise TrashsegError(f"{meta_path}: not a dataset metadata file with an id") from None
    if ident.startswith("your-kaggle-username/"):
        raise TrashsegError(
            f"{meta_path}: id {ident} names no Kaggle user; make the bundle again with KAGGLE_DATASET=<you>/<slug> "
            "(or with credentials present)"
        )
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in files) / 1e6
    tops = sorted({p.relative_to(folder).parts[0] for p in files})
    print(f"kaggle-upload: {ident} from {folder}: {len(files)} files, {size:.1f} MB ({', '.join(tops)})")
    if dry_run:
        print(
            f"DRY_RUN=1: nothing sent. Would run `kaggle datasets status {ident}`, then `kaggle datasets version -p "
            f"{folder} -m {message!r} --dir-mode zip` if it exists, else `kaggle datasets create -p {folder} "
            "--dir-mode zip` (private)"
        )
        return
    masked = secrets()
    status = subprocess.run([kaggle_binary(), "datasets", "status", ident], capture_output=True, text=True)
    if status.returncode == 0 and any(w in status.stdout.lower() for w in ("ready", "pending")):
        print(f"{ident} exists: uploading a new version")
        run_masked(["datasets", "version", "-p", str(folder), "-m", message, "--dir-mode", "zip"], masked)
    else:
        print(f"{ident} not found on Kaggle: creating it (private)")
        run_masked(["datasets", "create", "-p", str(folder), "--dir-mode", "zip"], masked)
