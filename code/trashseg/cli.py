"""Shared command-line plumbing: every entry point takes the model config plus ``--set`` overrides
and turns the kit's own errors into one readable line and exit code 2."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from trashseg.errors import TrashsegError


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=3 (repeatable)",
    )
    parser.add_argument(
        "--preset", type=Path, help="experiment preset layered over the model config (make: EXP=<name>)"
    )
    return parser


def friendly_errors(func):
    """Print TrashsegError as 'error: ...' (no traceback) and exit 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except TrashsegError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
