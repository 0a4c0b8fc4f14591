"""One error type for every problem caused by the user's input, so CLIs can print it without a traceback."""

import difflib


class TrashsegError(Exception):
    """Bad input (file, config, data) explained in words that name the file and the problem."""


def friendly_errors(func):
    """Print TrashsegError as 'error: ...' (no traceback) and exit 2."""
    import functools
    import sys

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except TrashsegError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper


def closest(name: str, names, n: int = 3) -> str:
    close = difflib.get_close_matches(name, list(names), n=n, cutoff=0.5)
    return f"; closest: {', '.join(close)}" if close else ""
