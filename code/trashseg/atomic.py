"""Atomic, durable file writes: write to a temp file in the same folder, flush it to disk, rename
it over the target, then flush the folder (as git and SQLite do).

An interrupted run therefore leaves either the old file or the new one, never half of one; and
because the data reaches the disk before the rename, and the rename before the call returns, a power
cut cannot leave a renamed but empty checkpoint, probability file or CSV. A run killed outright
(SIGKILL, power loss) leaves its hidden temp file behind; the next write of the same target removes
those whose writer, on this host, is gone. `make bench-durable` measures what the flushes cost.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import tempfile
from pathlib import Path

HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"
# the permissions a plain open() would give (mkstemp makes 0600 files: a CSV or checkpoint written
# inside a container would be unreadable to the host's user)
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


def _writer_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs; a killed one not yet reaped (zombie) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _sweep(folder: Path, name: str | None) -> None:
    """Delete the temp files in ``folder`` (of target ``name``, or of any target) whose writer, on
    this host, no longer runs."""
    target = re.escape(name) if name else ".+"
    pattern = re.compile(rf"^\.{target}\.{re.escape(HOST)}-(\d+)\..*\.tmp$")
    for candidate in Path(folder).glob(f".{name or '*'}.{HOST}-*.tmp"):
        match = pattern.match(candidate.name)
        if match and int(match.group(1)) != os.getpid() and not _writer_alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()


def remove_stale_temps(path: Path) -> None:
    """Delete temp files of ``path`` left by writers of this host that no longer run."""
    _sweep(path.parent, path.name)


def remove_stale_temps_in(folder: Path) -> None:
    """Delete every temp file in ``folder`` left by writers of this host that no longer run (a run
    killed mid-write, resumed: a target it does not write again keeps no orphan beside it)."""
    _sweep(folder, None)


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a written file's data and metadata to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename in it) to the disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on folders; the file itself is flushed
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "", durable: bool = True):
    """Yield a temp path beside ``path``; when the block succeeds, flush it to disk (``durable``),
    rename it onto ``path`` and flush the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{HOST}-{os.getpid()}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, FILE_MODE)
    try:
        yield Path(tmp)
        if durable:
            fsync_file(tmp)
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs):
    """Open a temp file for writing that replaces ``path`` when closed without error."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def write_json(path: str | os.PathLike, obj) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2)
        fh.write("\n")
