"""The one owner of where things live: a run's inputs (the data files of a fold) and every file a
run, its post-processed variants and the stages after it write (checkpoints, probabilities, OOF
scores, fitted ensemble weights). Commands and the Makefile pass settings; paths come from here.

    <runs>/<model>/fold<k>/best.pt, last.pt, config.yaml, metrics.csv, run_record.json
    <runs>/<model>/all/...    the same for a run on all data (TRAIN_ALL=1): test probabilities only,
                              never read by OOF; the ensemble takes it beside the model's folds
    <runs>/<model>/fold<k>/probs_{test,valid}<post>.npy (+ .json manifest), eval_<json>.json
    <runs>/<model>/fold<k>/report/, predict/
    <runs>/<model>/oof<post>.json
    <runs>/ensemble_weights<post>.json

``<post>`` names the post-processing the probabilities hold: '', '_tta', '_crf' or '_tta_crf'.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trashseg.errors import TrashsegError
from trashseg.settings import Settings

ALL = "all"  # the run folder of a model trained on all data


def data_dir(cfg: Settings) -> Path:
    return Path(cfg.data.data_dir)


def data_json(cfg: Settings, key: str) -> Path:
    """data_dir / data.<key> with {fold} filled in; a missing file names the fix."""
    fold = cfg.train.fold
    path = data_dir(cfg) / str(getattr(cfg.data, key)).format(fold=fold)
    if not path.is_file() and "pseudo" in path.name:
        misspelt = path.with_name(path.name.replace("pseudo", "pesudo"))  # the original's spelling
        path = misspelt if misspelt.is_file() else path
    if not path.is_file():
        hint = ""
        if key in ("train_json", "valid_json"):
            hint = f" (run `make folds DATA_DIR={data_dir(cfg)}` to create the fold files)"
        if "pseudo" in path.name:
            hint = " (run `make pseudo` first)"
        if not (data_dir(cfg) / "train_all.json").is_file():
            hint = (
                f" ({data_dir(cfg)} has no train_all.json: put the competition data there "
                f"(batch_*/ folders, train_all.json, test.json) or try the bundled sample with "
                f"DATA_DIR=data/sample, e.g. `make demo`)"
            )
        raise TrashsegError(f"{path}: not found{hint}")
    return path


def post_suffix(cfg: Settings) -> str:
    """'', '_tta', '_crf' or '_tta_crf': which post-processing this config's probabilities hold."""
    return ("_tta" if cfg.tta.enabled else "") + ("_crf" if cfg.crf.enabled else "")


def make_target(name: str) -> str:
    """How make names the runs of ``name``: EXP= for a preset, MODEL= for a model folder."""
    from trashseg import registry

    return f"EXP={name}" if name in registry.presets() else f"MODEL={name}"


def post_flags(suffix: str) -> str:
    """The make variables that select a post-processing variant, for messages."""
    return (" TTA=1" if "_tta" in suffix else "") + (" CRF=1" if "_crf" in suffix else "")


@dataclass(frozen=True)
class Layout:
    """Paths under one runs folder for one post-processing variant."""

    runs_dir: Path
    post: str = ""

    @classmethod
    def of(cls, cfg: Settings) -> Layout:
        return cls(Path(cfg.train.runs_dir), post_suffix(cfg))

    def model_dir(self, model: str) -> Path:
        return self.runs_dir / model

    def run(self, model: str, fold: int | str) -> Path:
        """fold<k>, or ``all`` (fold="all"): the run on all data."""
        return self.model_dir(model) / (fold if fold == ALL else f"fold{fold}")

    def probs(self, model: str, fold: int | str, split: str) -> Path:
        return self.run(model, fold) / f"probs_{split}{self.post}.npy"

    def fold_probs(self, model: str, split: str) -> list[Path]:
        """Every fold's probability file of ``model`` for ``split`` in this variant, fold order; for
        the test split the all-data run's too (after the folds). OOF reads valid: folds only."""
        files = list(self.model_dir(model).glob(f"fold*/probs_{split}{self.post}.npy"))
        ordered = sorted(files, key=lambda p: (len(p.parent.name), p.parent.name))
        everything = self.model_dir(model) / ALL / f"probs_{split}{self.post}.npy"
        return ordered + ([everything] if split == "test" and everything.is_file() else [])

    def require_fold_probs(self, model: str, split: str) -> list[Path]:
        files = self.fold_probs(model, split)
        if not files:
            splits = "" if split == "test" else f" SPLITS={split}"
            raise TrashsegError(
                f"no {self.model_dir(model)}/fold*/probs_{split}{self.post}.npy: run "
                f"`make infer {make_target(model)} FOLD=k{post_flags(self.post)}{splits}` for every fold first"
            )
        return files

    def models(self) -> list[str]:
        """Models under the runs folder that have test probabilities in this variant."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(d.name for d in self.runs_dir.iterdir() if d.is_dir() and self.fold_probs(d.name, "test"))

    def oof_result(self, model: str) -> Path:
        return self.model_dir(model) / f"oof{self.post}.json"

    def fitted_weights(self) -> Path:
        return self.runs_dir / f"ensemble_weights{self.post}.json"


def load_run(run: Path) -> tuple[dict, Path]:
    """A run folder's own config (completed with today's defaults) and its best checkpoint."""
    import yaml

    from trashseg.config import upgrade

    cfg_path, ckpt = Path(run) / "config.yaml", Path(run) / "best.pt"
    if not cfg_path.is_file() or not ckpt.is_file():
        raise TrashsegError(f"{run}: not a run folder (needs config.yaml and best.pt from `make train MODEL=...`)")
    return upgrade(yaml.safe_load(cfg_path.read_text())), ckpt


@dataclass(frozen=True)
class Progress:
    """How far the run in a folder got: epochs done (metrics.csv, which is never ahead of last.pt),
    epochs planned (its config.yaml) and its best validation epoch and mIoU, when it scored any."""

    folder: Path
    done: int
    planned: int | None
    best: tuple[int, float] | None = None

    @property
    def finished(self) -> bool:
        has_best = (self.folder / "best.pt").is_file() or self.folder.name == ALL
        return has_best and self.planned is not None and self.done >= self.planned

    def describe(self) -> str:
        best = f", best mIoU {self.best[1]:.4f} at epoch {self.best[0]}" if self.best else ""
        return f"epoch {self.done} of {self.planned if self.planned is not None else '?'}{best}"


def progress(folder: Path) -> Progress | None:
    """The run in ``folder``, or None when it holds none (no checkpoint, no metrics.csv)."""
    import csv

    import yaml

    folder = Path(folder)
    if not any((folder / name).is_file() for name in ("last.pt", "best.pt", "metrics.csv")):
        return None
    try:
        with open(folder / "metrics.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, csv.Error):
        rows = []
    try:
        planned = int(((yaml.safe_load((folder / "config.yaml").read_text()) or {}).get("train") or {})["epochs"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError):
        planned = None
    scored = [r for r in rows if r.get("val_miou") not in (None, "")]
    best = max(scored, key=lambda r: float(r["val_miou"])) if scored else None  # the first of equals
    return Progress(folder, len(rows), planned, (int(best["epoch"]), float(best["val_miou"])) if best else None)


def epoch_checkpoint(run: Path, epoch: int) -> Path:
    """One kept epoch's weights (train.keep_last), which `make soup` averages."""
    return Path(run) / f"epoch{epoch}.pt"


def epoch_checkpoints(run: Path) -> list[tuple[int, Path]]:
    """(epoch, file) of every kept epoch in a run folder, oldest first."""
    found = [(p.stem.removeprefix("epoch"), p) for p in Path(run).glob("epoch*.pt")]
    return sorted((int(n), p) for n, p in found if n.isdigit())


def run_fold(cfg: Settings) -> int | str:
    return ALL if cfg.train.train_all else cfg.train.fold


def run_dir(cfg: Settings) -> Path:
    return Layout.of(cfg).run(cfg.model.name, run_fold(cfg))


def probs_path(cfg: Settings, split: str) -> Path:
    return Layout.of(cfg).probs(cfg.model.name, run_fold(cfg), split)


def eval_result(cfg: Settings, json_path: Path) -> Path:
    return run_dir(cfg) / f"eval_{Path(json_path).stem}{post_suffix(cfg)}.json"


def trained_tta(runs_dir: str | Path, models: list[str]) -> bool:
    """Whether every one of ``models`` was trained with TTA as its inference default (``tta.enabled``
    in each fold's config.yaml, as its preset set it): then its probabilities are the TTA variant, and
    the merge stages read that one unless TTA=0/1 says otherwise. Runs without a config count as off."""
    import yaml

    if not models:
        return False
    for model in models:
        configs = sorted((Path(runs_dir) / model).glob("*/config.yaml"))
        if not configs:
            return False
        for path in configs:
            try:
                tta = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("tta") or {}
            except (OSError, yaml.YAMLError):
                return False
            if tta.get("enabled") is not True:
                return False
    return True
