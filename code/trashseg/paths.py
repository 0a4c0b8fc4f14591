"""One containment check for every path the kit builds from a name it read in a JSON or CSV file
(a COCO ``file_name``, another toolkit's output named after it): the name must stay inside its
folder. Refused: absolute names, ``..`` parts, and names that a symbolic link leads out of the
folder (the folder itself may be a link: it is resolved first). Every refusal is a TrashsegError
naming the file the name came from, the name and the folder.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from trashseg.errors import TrashsegError


def check_name(name: str, source: str, root: Path | str = "the data folder") -> str:
    """``name`` as read from ``source`` (a file, with where in it), refused when it is absolute or
    climbs out with ``..``; lexical only, so it also holds for files that do not exist yet."""
    posix = PurePosixPath(str(name).replace("\\", "/"))
    if (
        not str(name)
        or posix.is_absolute()
        or Path(str(name)).is_absolute()
        or ".." in posix.parts
        or bool(posix.parts and re.fullmatch(r"[A-Za-z]:", posix.parts[0]))  # a Windows drive, C:/...
    ):
        raise TrashsegError(f"{source}: {name!r} escapes {root} (absolute or '..'); names must stay inside it")
    return str(name)


def contained(root: Path | str, name: str, source: str) -> Path:
    """``root / name``, refused (see check_name) unless it stays inside ``root`` once symbolic
    links are followed."""
    root = Path(root)
    check_name(name, source, root)
    path = root / name
    real_root = root.resolve()
    real = path.resolve()
    if real != real_root and real_root not in real.parents:
        raise TrashsegError(
            f"{source}: {name!r} leads out of {root} through a symbolic link (to {real}); "
            "keep the files themselves in the folder, or link the whole folder instead"
        )
    return path
