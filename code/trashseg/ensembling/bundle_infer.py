"""`trashseg bundle-infer`: what a kaggle-bundle's notebook runs, offline. Each member of bundle.json is
inferred with the kit's own predictor on the competition's test.json, and the predictor must describe the
very views (scoring size, TTA, classes) and checkpoint the bundle recorded, or it stops before any
image: the notebook cannot run other TTA views or weights than those validated. The files are then
merged with the recorded weights by the same merge as `make ensemble`, and the CSV validated."""

from __future__ import annotations

import json
from pathlib import Path

from trashseg.ensembling.bundle import FORMAT
from trashseg.ensembling.ensemble import ensemble_to_csv
from trashseg.ensembling.submission import expected_ids_from_test_json, validate_submission
from trashseg.errors import TrashsegError
from trashseg.paths import contained


def read_bundle(bundle: Path) -> dict:
    path = Path(bundle) / "bundle.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrashsegError(f"{path}: not found (`make kaggle-bundle NAME={Path(bundle).name}` writes it)") from None
    except (OSError, ValueError) as exc:
        raise TrashsegError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT or not record.get("members"):
        raise TrashsegError(f"{path}: not a format-{FORMAT} bundle with members (make it again with this kit)")
    return record


def find_test_json(data: Path) -> Path:
    """The competition folder's test.json: at its top, else the one file of that name below it."""
    data = Path(data)
    if not data.is_dir():
        there = sorted(p.name for p in data.parent.iterdir()) if data.parent.is_dir() else []
        raise TrashsegError(
            f"{data}: no such folder (COMPETITION names it when the bundle is made); {data.parent} holds: "
            f"{', '.join(there) or 'nothing'}"
        )
    if (data / "test.json").is_file():
        return data / "test.json"
    found = sorted(p for p in data.rglob("test.json") if len(p.relative_to(data).parts) <= 4)
    if len(found) == 1:
        return found[0]
    if not found:
        raise TrashsegError(f"{data}: no test.json in it or below it (is --data-dir the competition's folder?)")
    raise TrashsegError(
        f"{data}: {len(found)} test.json files below it ({', '.join(map(str, found))}); give one's folder"
    )


def bundle_infer(bundle: Path, data: Path, out_csv: Path, work: Path) -> list[float]:
    """Infer every member, merge with the bundle's weights into ``out_csv`` and validate it."""
    from trashseg.data.loaders import load_set
    from trashseg.inference.predictor import Predictor, write_probabilities
    from trashseg.inference.probs import making
    from trashseg.runs import load_run
    from trashseg.settings import changed

    bundle = Path(bundle)
    record = read_bundle(bundle)
    test_json = find_test_json(data)
    print(f"bundle-infer: {len(record['members'])} member(s) of {bundle} on {test_json}", flush=True)
    files, weights = [], []
    for i, m in enumerate(record["members"]):
        run = contained(bundle, str(m.get("run", "")), f"{bundle / 'bundle.json'} members[{i}].run")
        views = m.get("views") or {}
        tta = views.get("tta") or {}
        cfg, ckpt = load_run(run)
        settings = {
            "data.data_dir": str(test_json.parent),
            "train.runs_dir": str(work),
            "train.device": "auto",
            "eval.score_size": views.get("resolution", cfg.eval.score_size),
            "tta.enabled": bool(tta),
            "crf.enabled": False,
        }
        if tta:
            settings.update({"tta.hflip": tta["hflip"], "tta.scales": list(tta["scales"])})
        cfg = changed(cfg, settings)
        predictor = Predictor(ckpt, cfg)
        now = making(predictor.cfg, predictor.checkpoint_sha256)
        expected = {**views, "checkpoint_sha256": m.get("checkpoint_sha256")}
        differ = sorted(k for k in expected if now.get(k) != expected[k])
        if differ:
            raise TrashsegError(
                f"{run}: the predictor would differ from what the bundle validated in {', '.join(differ)} "
                f"(bundle: {[expected[k] for k in differ]}, here: {[now.get(k) for k in differ]}); "
                "make the bundle again"
            )
        where = f"{m.get('model')}/{m.get('fold')}/probs_test{record.get('variant', '')}.npy"
        out = contained(Path(work) / "runs", where, f"{bundle / 'bundle.json'} members[{i}]")
        write_probabilities(predictor, load_set(cfg, test_json), out, "test")
        files.append(out)
        weights.append(float(m["weight"]))
    used = ensemble_to_csv(files, Path(out_csv), test_json, weights, progress=False)
    print("merged " + ", ".join(f"{m['model']}/{m['fold']} (w={w:.3f})" for m, w in zip(record["members"], used)))
    n = validate_submission(Path(out_csv), expected_ids_from_test_json(test_json))
    print(f"{out_csv}: valid submission, {n} rows")
    return used
