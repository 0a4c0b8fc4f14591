"""A model folder's own scripts (code/<Arch>/train.py, infer.py) as the verb for that folder's model."""

from __future__ import annotations

import sys
from pathlib import Path

from trashseg.cli import main


def run_folder(script: str, verb: str) -> None:
    from trashseg import registry

    folder = Path(script).resolve().parent
    name = next((m.name for m in registry.models().values() if m.folder.resolve() == folder), None)
    if name is None:
        print(f"error: {folder}/config.yaml: not a model folder the kit finds (trashseg config list)", file=sys.stderr)
        raise SystemExit(2)
    main([verb, "--model", name, *sys.argv[1:]])
