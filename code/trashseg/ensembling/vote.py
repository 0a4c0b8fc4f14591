"""`make vote`: pixel-wise majority vote of competition CSVs from any toolkit (mmsegmentation, SMP,
this kit...), as the first-place teams blended their final submissions.

The files are read row by row in lockstep, each checked like a submission (order against
test.json, integers, 256x256, range), so memory stays flat however many images there are. A tie is
broken by a priority order of classes (PRIORITY="Battery Clothing ..."; earlier wins, unlisted classes
after, by index), or else by file order (the earliest file voting for a tied class wins). The result
is written atomically and validated like every submission.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from trashseg.data.classes import CLASSES, NUM_CLASSES, class_index
from trashseg.ensembling.submission import (
    SubmissionWriter,
    expected_ids_from_test_json,
    read_rows,
    validate_submission,
)
from trashseg.errors import TrashsegError


def priority_ranks(priority: list[str] | None) -> np.ndarray | None:
    """Class index -> rank (lower wins a tie); None for file order."""
    if not priority:
        return None
    order = []
    for name in priority:
        index = int(name) if str(name).isdigit() else class_index(name)
        if not 0 <= index < NUM_CLASSES:
            raise TrashsegError(f"PRIORITY: class {name!r} is not one of 0..{NUM_CLASSES - 1}")
        if index in order:
            raise TrashsegError(f"PRIORITY: class {CLASSES[index]!r} is listed twice")
        order.append(index)
    order += [c for c in range(NUM_CLASSES) if c not in order]
    ranks = np.empty(NUM_CLASSES, dtype=np.int64)
    ranks[order] = np.arange(NUM_CLASSES)
    return ranks


def vote(votes: list[np.ndarray], ranks: np.ndarray | None = None) -> np.ndarray:
    """Per-pixel majority of equally long class-id arrays, ties by ``ranks`` or else by file order."""
    pixels = np.arange(votes[0].size)
    counts = np.zeros((NUM_CLASSES, votes[0].size), dtype=np.int64)
    for v in votes:
        np.add.at(counts, (v, pixels), 1)
    if ranks is not None:
        return np.argmax(counts * (NUM_CLASSES + 1) - ranks[:, None], axis=0)
    top = counts.max(axis=0)
    result = counts.argmax(axis=0)
    for v in reversed(votes):  # the earliest file among those voting for a top class wins
        tied = counts[v, pixels] == top
        result[tied] = v[tied]
    return result


def vote_files(
    files: list[Path], test_json: Path, out: Path, priority: list[str] | None = None, progress: bool = True
) -> int:
    if len(files) < 2:
        raise TrashsegError(f"FILES: give at least two CSV files to vote, got {len(files)}")
    missing = [str(f) for f in files if not Path(f).is_file()]
    if missing:
        raise TrashsegError(f"FILES: not found: {', '.join(missing)}")
    ranks = priority_ranks(priority)
    expected = expected_ids_from_test_json(test_json)
    readers = [read_rows(f, expected) for f in files]
    writer = SubmissionWriter(out)
    try:
        for rows in tqdm(
            zip(*readers, strict=False), total=len(expected), desc="vote", disable=not progress, leave=False
        ):
            writer.add(rows[0][0], vote([values for _, values in rows], ranks))
        for reader in readers:  # every file ends where the others do (raises on a short file)
            for _ in reader:
                pass
    except BaseException as exc:
        writer.close(exc)
        raise
    writer.close()
    return validate_submission(out, expected)
