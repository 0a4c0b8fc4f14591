"""Where a run's inputs and outputs live, derived from the config (no globals)."""
from __future__ import annotations

from pathlib import Path

from trashseg.errors import TrashsegError


def data_dir(cfg: dict) -> Path:
    return Path(cfg["data"]["data_dir"])


def data_json(cfg: dict, key: str) -> Path:
    """data_dir / data.<key> with {fold} filled in; a missing file names the fix."""
    fold = cfg["train"]["fold"]
    path = data_dir(cfg) / str(cfg["data"][key]).format(fold=fold)
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
            hint = (f" ({data_dir(cfg)} has no train_all.json: put the competition data there "
                    f"(batch_*/ folders, train_all.json, test.json) or try the bundled sample with "
                    f"DATA_DIR=data/sample, e.g. `make demo`)")
        raise TrashsegError(f"{path}: not found{hint}")
    return path


def run_dir(cfg: dict) -> Path:
    return Path(cfg["train"]["runs_dir"]) / cfg["model"]["name"] / f"fold{cfg['train']['fold']}"
