"""Weighted mean of saved probability files -> argmax -> competition CSV, one image at a time.

The files are the ones given, or every fold's test probabilities of the chosen models in the chosen
post-processing variant (plain, TTA, CRF), found through the run layout; files holding different
post-processing are refused unless mixing is asked for. Weights are given, or fitted out of fold
for the same variant (`make fit-ensemble`), or equal.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from trashseg.ensembling.submission import SubmissionWriter, expected_ids_from_test_json
from trashseg.errors import TrashsegError
from trashseg.inference.probs import ProbsReader
from trashseg.runs import Layout, post_flags


def check_manifests(readers: list[ProbsReader], expected_ids: list[str] | None) -> None:
    """Refuse files whose image lists, resolution or classes disagree."""
    first = readers[0]
    for r in readers:
        for key in ("resolution", "classes"):
            if r.manifest.get(key) != first.manifest.get(key):
                raise TrashsegError(
                    f"{r.path}: {key} {r.manifest.get(key)!r} differs from {first.path}: {first.manifest.get(key)!r}"
                )
        ids = expected_ids if expected_ids is not None else first.image_ids
        if r.image_ids != ids:
            diff = next(
                (i for i, (a, b) in enumerate(zip(r.image_ids, ids)) if a != b), min(len(ids), len(r.image_ids))
            )
            raise TrashsegError(
                f"{r.path}: image list differs from {'test.json' if expected_ids is not None else first.path} "
                f"({len(r.image_ids)} vs {len(ids)} images; first difference at position {diff})"
            )


def post_processing(reader: ProbsReader) -> str:
    """'plain', 'tta', 'crf' or 'tta+crf': what a probability file holds, from its manifest."""
    kinds = [k for k in ("tta", "crf") if reader.manifest.get(k)]
    return "+".join(kinds) or "plain"


def check_same_post_processing(readers: list[ProbsReader]) -> None:
    kinds = {post_processing(r) for r in readers}
    if len(kinds) > 1:
        listing = ", ".join(f"{r.path} ({post_processing(r)})" for r in readers)
        raise TrashsegError(
            f"probability files hold different post-processing ({listing}); ensemble one kind "
            "(TTA=1 / CRF=1 select the variant) or pass MIXED=1 (--allow-mixed) to merge them anyway"
        )


def normalise_weights(weights: list[float] | None, n: int) -> np.ndarray:
    if not weights:
        return np.full(n, 1.0 / n)
    if len(weights) != n:
        raise TrashsegError(f"{len(weights)} weights given for {n} probability files")
    w = np.asarray(weights, dtype=np.float64)
    if (w < 0).any() or w.sum() <= 0:
        raise TrashsegError(f"weights {weights} must be non-negative and not all zero")
    return w / w.sum()


def weights_source(given: list[float] | None, weights_file: Path | None) -> str:
    """Where a merge's weights come from, as the merge says it: given, fitted (and the file) or equal."""
    return "given" if given else (f"fitted, {weights_file}" if weights_file else "equal")


def weights_from_file(path: Path, readers: list[ProbsReader]) -> list[float]:
    """Per-file weights from a fit-ensemble result: a model's weight shared equally by its folds."""
    try:
        fitted = json.loads(Path(path).read_text(encoding="utf-8"))["fitted"]["weights"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise TrashsegError(f"{path}: not a fit-ensemble weights file ({exc})") from None
    models = [r.manifest.get("model") for r in readers]
    unknown = sorted({m for m in models if m not in fitted})
    if unknown:
        raise TrashsegError(f"{path}: no weight for model(s) {unknown}; run `make fit-ensemble` with them")
    return [fitted[m] / models.count(m) for m in models]


def ensemble_to_csv(
    prob_files: list[Path],
    out_csv: Path,
    test_json: Path | None,
    weights: list[float] | None = None,
    progress: bool = True,
    weights_file: Path | None = None,
    allow_mixed: bool = False,
) -> list[float]:
    if not prob_files:
        raise TrashsegError("no probability files given (run `make infer MODEL=<name>` first)")
    readers = [ProbsReader(p) for p in prob_files]
    try:
        expected = expected_ids_from_test_json(test_json) if test_json else None
        check_manifests(readers, expected)
        if not allow_mixed:
            check_same_post_processing(readers)
        if weights is None and weights_file is not None:
            weights = weights_from_file(weights_file, readers)
        w = normalise_weights(weights, len(readers)).astype(np.float32)
        ids = readers[0].image_ids
        writer = SubmissionWriter(out_csv)
        try:
            for i in tqdm(range(len(ids)), desc="ensemble", disable=not progress, leave=False):
                acc = readers[0].row(i).astype(np.float32) * w[0]
                for r, wk in zip(readers[1:], w[1:]):
                    acc += r.row(i).astype(np.float32) * wk
                writer.add(ids[i], acc.argmax(axis=0))
        except BaseException as exc:
            writer.close(exc)
            raise
        writer.close()
    finally:
        for r in readers:
            r.close()
    return [float(x) for x in w]


def other_variants(layout: Layout) -> dict[str, str]:
    """Models under the runs folder with test probabilities of another post-processing variant than
    ``layout``'s, each with the make switches that select its variant."""
    if not layout.runs_dir.is_dir():
        return {}
    found = {}
    for p in sorted(layout.runs_dir.glob("*/fold*/probs_test*.npy")):
        post = p.stem.removeprefix("probs_test")
        if post != layout.post:
            found[p.parent.parent.name] = post_flags(post)
    return found


def find_test_probs(layout: Layout, models: list[str] | None) -> list[Path]:
    """Every fold's test probabilities of ``models`` (each must have some), or of every model that has
    them in this variant when none are named."""
    if models:
        return [p for m in models for p in layout.require_fold_probs(m, "test")]
    found = layout.models()
    if not found:
        others = sorted(other_variants(layout).items())
        hint = (
            "; there are other variants' (" + ", ".join(f"{m}:{flags or ' plain'}" for m, flags in others) + "): "
            f'give MODELS="{" ".join(m for m, _ in others)}" (their runs say which variant) or the variant\'s switch'
            if others
            else f": run `make infer MODEL=<name> FOLD=k{post_flags(layout.post)}` first"
        )
        raise TrashsegError(f"no {layout.runs_dir}/<model>/fold*/probs_test{layout.post}.npy{hint}")
    return [p for m in found for p in layout.fold_probs(m, "test")]


def merge_inputs(
    layout: Layout, probs: list[Path], models: list[str] | None, weights_file: Path | None, use_fitted: bool = True
) -> tuple[list[Path], Path | None]:
    """What `ensemble` and `pseudo` merge: the files given, or every fold's test probabilities of
    ``models`` in this variant; and the weights file given, else this variant's fitted weights when
    `make fit-ensemble` has written them (unless ``use_fitted`` is off)."""
    files = list(probs) or find_test_probs(layout, models)
    if weights_file is None and use_fitted and layout.fitted_weights().is_file():
        weights_file = layout.fitted_weights()
    return files, weights_file
