"""Content hashes of files: a stage that records what it read (the train_all.json a set of folds
split, the checkpoint a probability file came from) can tell later whether it is still that file."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
