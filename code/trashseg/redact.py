"""No secret leaves the kit: passwords in URLs (``scheme://user:password@host``) and the values of
secret-looking settings (``--key``, ``KAGGLE_KEY=...``, ``token: ...``) are masked before any text
the kit writes to a file or prints: run records, sweep messages, logs."""

from __future__ import annotations

import re

MASK = "****"
# scheme://user:password@host -> scheme://user:****@host (the password ends at the last @ before the host)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^\s]*)(?P<tail>@[^@\s/]+)")
_SECRET_NAME = r"[A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|_key|access[_-]?key)"
# NAME=value, NAME: value, --name value / --name=value for secret-looking names
_ASSIGNED = re.compile(rf"(?i)(?P<head>\b{_SECRET_NAME}\b\s*[=:]\s*)(?P<secret>[^\s'\",]+)")
_FLAG = re.compile(rf"(?i)^--?{_SECRET_NAME}$")


def redact(text: str) -> str:
    """``text`` with URL passwords and secret-looking assignments masked."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['tail']}", str(text))
    return _ASSIGNED.sub(lambda m: f"{m['head']}{MASK}", text)


def redact_argv(argv: list[str]) -> list[str]:
    """A command line with secrets masked: in each argument, and the value after a secret flag."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        hide_next = bool(_FLAG.match(arg))
        out.append(redact(arg))
    return out
