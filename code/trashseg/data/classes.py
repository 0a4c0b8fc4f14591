"""The 11 competition classes and the mapping of dataset category *names* onto them.

Categories are always matched by name, never by COCO id or position, so the 12-class variant
(with UNKNOWN and the "Backgroud" typo) and other datasets' names plug in through ``class_map``.
"""

from __future__ import annotations

from trashseg.errors import TrashsegError

CLASSES: tuple[str, ...] = (
    "Background",
    "General trash",
    "Paper",
    "Paper pack",
    "Metal",
    "Glass",
    "Plastic",
    "Styrofoam",
    "Plastic bag",
    "Battery",
    "Clothing",
)
NUM_CLASSES = len(CLASSES)
IGNORE_INDEX = 255
IGNORE = "ignore"  # class_map target: category not painted (stays background)
IGNORE_CATEGORY = "__ignore__"  # category name painted as IGNORE_INDEX: pixels the loss and metric skip


def normalise(name: str) -> str:
    """Case- and spacing-insensitive key, so 'general  Trash' matches 'General trash'."""
    return " ".join(str(name).replace("_", " ").split()).lower()


_CLASS_INDEX = {normalise(name): i for i, name in enumerate(CLASSES)}


def class_index(name: str) -> int:
    """Index of a kit class name; raises with the list of valid names otherwise."""
    try:
        return _CLASS_INDEX[normalise(name)]
    except KeyError:
        raise TrashsegError(f"unknown class {name!r}; valid classes: {', '.join(CLASSES)}") from None


def resolve_category_ids(categories: list[dict], class_map: dict[str, str], source: str) -> dict[int, int | None]:
    """Map COCO category ids to class indices (None = not painted) by name.

    A category name is looked up in ``class_map`` first (source name -> class name or 'ignore'),
    then among the kit's own class names. Anything else is an error naming the file and category.
    """
    alias = {normalise(k): v for k, v in (class_map or {}).items()}
    resolved: dict[int, int | None] = {}
    unknown = []
    for cat in categories:
        name = cat.get("name")
        key = normalise(name)
        if key == normalise(IGNORE_CATEGORY):
            resolved[cat["id"]] = IGNORE_INDEX
            continue
        target = alias.get(key, name if key in _CLASS_INDEX else None)
        if target is None:
            unknown.append(f"id {cat.get('id')} {name!r}")
            continue
        resolved[cat["id"]] = None if normalise(target) == IGNORE else class_index(target)
    if unknown:
        raise TrashsegError(
            f"{source}: unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
            f"add them to data.class_map (source name -> one of {', '.join(CLASSES)} or 'ignore')"
        )
    return resolved
