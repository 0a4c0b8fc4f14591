"""`trashseg runs` (make runs): every run under the runs folder in one table, so that which of twenty
runs is best, and what differed between them, is one command instead of a metrics.csv and a
settings.txt opened by hand. Read from the files each run already writes (config.yaml, metrics.csv,
run_record.json, the model's oof*.json); an unfinished run or a broken folder is a row that says so."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from trashseg.errors import TrashsegError
from trashseg.runs import ALL

# keys that differ between runs by construction (where a run lives, which fold it is): not "what differed"
PLACE_KEYS = ("data.data_dir", "data.cache_dir", "train.runs_dir", "train.fold", "model.name", "train.resume")
COLUMNS = {
    "run": "run folder (model/fold)",
    "model": "architecture and encoder",
    "preset": "the preset it was trained with",
    "fold": "fold (all: trained on all data)",
    "epochs": "epochs done / planned",
    "best_epoch": "epoch of best.pt",
    "miou": "best validation mIoU (dataset)",
    "miou_per_image": "the same epoch's per-image mIoU",
    "oof": "the model's OOF mIoU per image (make oof)",
    "oof_tta": "the same with TTA",
    "seconds": "training seconds (the epochs' sum)",
    "date": "when it started (UTC)",
    "commit": "git commit (+ when the tree was dirty)",
    "status": "finished | unfinished | broken: why",
}


@dataclass
class Row:
    run: str
    model: str = ""
    preset: str = ""
    fold: str = ""
    epochs: str = ""
    best_epoch: int | None = None
    miou: float | None = None
    miou_per_image: float | None = None
    oof: float | None = None
    oof_tta: float | None = None
    seconds: float | None = None
    date: str = ""
    commit: str = ""
    status: str = ""
    settings: dict = field(default_factory=dict)  # flattened config.yaml
    differs: list[str] = field(default_factory=list)  # key=value where this run differs from the others
    folder: Path | None = None

    def value(self, column: str):
        return getattr(self, column)


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in ("class_map",):
            out.update(_flat(value, name + "."))
        else:
            out[name] = json.dumps(value, sort_keys=True, default=str)
    return out


def _oof(path: Path) -> float | None:
    try:
        return float(json.loads(path.read_text())["miou_per_image"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_run(folder: Path, runs_dir: Path, presets: set[str]) -> Row:
    row = Row(run=str(folder.relative_to(runs_dir)), folder=folder, fold=folder.name.removeprefix("fold"))
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text())
        if not isinstance(config, dict):
            raise ValueError("not a mapping")
    except (OSError, ValueError, yaml.YAMLError) as exc:
        row.status = f"broken: config.yaml {type(exc).__name__}"
        return row
    row.settings = _flat(config)
    model, train = config.get("model") or {}, config.get("train") or {}
    row.model = f"{model.get('arch', '?')} {model.get('encoder', '?')}"
    row.preset = model.get("name", "") if model.get("name") in presets else ""
    planned = train.get("epochs")
    try:
        with open(folder / "metrics.csv", newline="") as fh:
            epochs = list(csv.DictReader(fh))
    except OSError:
        epochs = []
    scored = [r for r in epochs if r.get("val_miou") not in (None, "")]
    if scored:
        best = max(scored, key=lambda r: float(r["val_miou"]))  # the first of equals, as the trainer keeps it
        row.best_epoch, row.miou = int(best["epoch"]), float(best["val_miou"])
        row.miou_per_image = float(best["val_miou_per_image"])
    row.seconds = round(sum(float(r.get("seconds") or 0) for r in epochs), 1) if epochs else None
    row.epochs = f"{len(epochs)}/{planned}"
    record = folder / "run_record.json"
    if record.is_file():
        try:
            rec = json.loads(record.read_text())
            row.date = str(rec.get("started", ""))[:16].replace("T", " ")
            commit = rec.get("git_commit") or ""
            row.commit = commit[:8] + ("+" if rec.get("git_dirty") else "")
        except (OSError, ValueError):
            row.status = "broken: run_record.json unreadable"
            return row
    row.oof = _oof(folder.parent / "oof.json")
    row.oof_tta = _oof(folder.parent / "oof_tta.json")
    if not (folder / "best.pt").is_file() and folder.name != ALL:
        row.status = "unfinished (no best.pt)" if epochs else "unfinished (no epoch done)"
    elif planned is not None and len(epochs) < int(planned):
        row.status = f"unfinished (epoch {len(epochs)} of {planned}; RESUME=1 goes on)"
    else:
        row.status = "finished"
    return row


def collect(runs_dir: Path) -> list[Row]:
    """Every run folder (<runs>/<name>/fold<k> or /all) under ``runs_dir``, with what differs."""
    from trashseg import registry

    if not runs_dir.is_dir():
        raise TrashsegError(f"RUNS={runs_dir}: no such folder (train a run first, or give RUNS=)")
    presets = set(registry.presets())
    folders = sorted(
        f
        for model in runs_dir.iterdir()
        if model.is_dir()
        for f in model.iterdir()
        if f.is_dir() and (f.name.startswith("fold") or f.name == ALL)
    )
    rows = [read_run(f, runs_dir, presets) for f in folders]
    keys = sorted({k for r in rows for k in r.settings} - set(PLACE_KEYS))
    for row in rows:
        if row.settings:
            row.differs = [
                f"{k}={row.settings.get(k, '(unset)')}"
                for k in keys
                if len({r.settings.get(k) for r in rows if r.settings}) > 1
            ]
    return rows


def sort_rows(rows: list[Row], column: str) -> list[Row]:
    """Numbers best first (highest mIoU, most seconds), text in order; empty cells last."""
    if column not in COLUMNS:
        import difflib

        near = difflib.get_close_matches(column, list(COLUMNS), n=1)
        hint = f"did you mean {near[0]}?" if near else f"columns: {' '.join(COLUMNS)}"
        raise TrashsegError(f"SORT={column}: no such column; {hint}")
    numeric = [r for r in rows if isinstance(r.value(column), int | float)]
    if numeric:
        present = sorted(numeric, key=lambda r: -r.value(column))
    else:
        present = sorted((r for r in rows if r.value(column) not in ("", None)), key=lambda r: str(r.value(column)))
    return present + [r for r in rows if r not in present]


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if value <= 1.0 else f"{value:.0f}"
    return str(value)


def as_text(rows: list[Row]) -> str:
    head = list(COLUMNS) + ["differs"]
    table = [head] + [[cell(r.value(c)) for c in COLUMNS] + [" ".join(r.differs)] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(line, widths)) + "  " + line[-1] for line in table]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def as_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*COLUMNS, "differs"])
    for r in rows:
        writer.writerow([cell(r.value(c)) for c in COLUMNS] + [" ".join(r.differs)])
    return out.getvalue()


def write_html(rows: list[Row], runs_dir: Path) -> Path:
    """runs/index.html: the table, each run linking to its report page (or its folder), sortable with a
    few lines of script (the page reads as a plain table with script off); no network, no server."""
    from trashseg.evaluation.pages import write_page

    links = {}
    for r in rows:
        page = r.folder / "report" / "index.html"
        links[r.run] = (page if page.is_file() else r.folder).relative_to(runs_dir).as_posix()
    return write_page(
        runs_dir / "index.html",
        "runs.html.j2",
        rows=rows,
        columns=COLUMNS,
        cell=cell,
        links=links,
        runs_dir=str(runs_dir),
    )
