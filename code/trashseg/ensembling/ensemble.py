"""Weighted mean of saved probability files -> argmax -> competition CSV, one image at a time."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from trashseg.cli import friendly_errors
from trashseg.errors import TrashsegError
from trashseg.inference.probs import ProbsReader
from trashseg.ensembling.submission import SubmissionWriter, expected_ids_from_test_json, validate_submission


def check_manifests(readers: list[ProbsReader], expected_ids: list[str] | None) -> None:
    """Refuse files whose image lists, resolution or classes disagree."""
    first = readers[0]
    for r in readers:
        for key in ("resolution", "classes"):
            if r.manifest.get(key) != first.manifest.get(key):
                raise TrashsegError(f"{r.path}: {key} {r.manifest.get(key)!r} differs from "
                                    f"{first.path}: {first.manifest.get(key)!r}")
        ids = expected_ids if expected_ids is not None else first.image_ids
        if r.image_ids != ids:
            diff = next((i for i, (a, b) in enumerate(zip(r.image_ids, ids)) if a != b), min(len(ids), len(r.image_ids)))
            raise TrashsegError(
                f"{r.path}: image list differs from {'test.json' if expected_ids is not None else first.path} "
                f"({len(r.image_ids)} vs {len(ids)} images; first difference at position {diff})")


def normalise_weights(weights: list[float] | None, n: int) -> np.ndarray:
    if not weights:
        return np.full(n, 1.0 / n)
    if len(weights) != n:
        raise TrashsegError(f"{len(weights)} weights given for {n} probability files")
    w = np.asarray(weights, dtype=np.float64)
    if (w < 0).any() or w.sum() <= 0:
        raise TrashsegError(f"weights {weights} must be non-negative and not all zero")
    return w / w.sum()


def weights_from_file(path: Path, readers: list[ProbsReader]) -> list[float]:
    """Per-file weights from a fit-ensemble result: a model's weight shared equally by its folds."""
    import json
    try:
        fitted = json.loads(Path(path).read_text(encoding="utf-8"))["fitted"]["weights"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise TrashsegError(f"{path}: not a fit-ensemble weights file ({exc})") from None
    models = [r.manifest.get("model") for r in readers]
    unknown = sorted({m for m in models if m not in fitted})
    if unknown:
        raise TrashsegError(f"{path}: no weight for model(s) {unknown}; run `make fit-ensemble` with them")
    return [fitted[m] / models.count(m) for m in models]


def ensemble_to_csv(prob_files: list[Path], out_csv: Path, test_json: Path | None,
                    weights: list[float] | None = None, progress: bool = True,
                    weights_file: Path | None = None) -> list[float]:
    if not prob_files:
        raise TrashsegError("no probability files given (run `make infer-fpn` / `make infer-deeplab` first)")
    readers = [ProbsReader(p) for p in prob_files]
    try:
        expected = expected_ids_from_test_json(test_json) if test_json else None
        check_manifests(readers, expected)
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("probs", nargs="+", type=Path, help="probs_test.npy files (manifest beside each)")
    parser.add_argument("--weights", type=float, nargs="+", help="one weight per file (default: equal)")
    parser.add_argument("--test-json", type=Path, required=True, help="test.json: sets row order and count")
    parser.add_argument("--out", type=Path, default=Path("submissions/ensemble.csv"))
    parser.add_argument("--weights-file", type=Path, help="fit-ensemble result (used when --weights is not given)")
    parser.add_argument("--no-validate", action="store_true")
    args = parser.parse_args(argv)

    @friendly_errors
    def run():
        w = ensemble_to_csv(args.probs, args.out, args.test_json, args.weights, weights_file=args.weights_file)
        source = "given" if args.weights else (f"fitted, {args.weights_file}" if args.weights_file else "equal")
        print(f"merged ({source} weights) " + ", ".join(f"{p} (w={x:.3f})" for p, x in zip(args.probs, w)))
        if not args.no_validate:
            n = validate_submission(args.out, expected_ids_from_test_json(args.test_json))
            print(f"{args.out}: valid submission, {n} rows")

    run()
