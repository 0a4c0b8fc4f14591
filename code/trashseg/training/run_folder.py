"""A finished run is a competitor's evidence: training into a folder that holds a run stops with one
line (how to resume, extend or train under another name) unless FORCE=1 says to start over; then the
old run is deleted first, so no checkpoint, probability file or report of it is left beside the new one."""

from __future__ import annotations

import shutil

from trashseg.errors import TrashsegError
from trashseg.runs import progress, run_dir
from trashseg.settings import Settings
from trashseg.training.tracking import flat_config


def claim(cfg: Settings, force: bool) -> None:
    """Check ``cfg``'s run folder before any work: free, resumable (RESUME=1) or given up (FORCE=1)."""
    out = run_dir(cfg)
    found = progress(out)
    if cfg.train.resume:
        if force:
            raise TrashsegError("RESUME=1 and FORCE=1: give one (go on from last.pt, or start the run over)")
        if not (out / "last.pt").is_file():
            raise TrashsegError(
                f"RESUME=1: no {out / 'last.pt'} to go on from (no epoch of it ended); "
                + ("FORCE=1 starts it over" if found is not None else "train without RESUME=1")
            )
        if found is not None and found.finished and found.done >= cfg.train.epochs:
            raise TrashsegError(
                f"RESUME=1: {out} is finished ({found.describe()}); nothing left to train: "
                f"EPOCHS={found.done + 1} or more extends it"
            )
        return
    if found is None:
        return
    if force:
        print(f"FORCE=1: deleting {out} ({found.describe()}) to train it again from scratch", flush=True)
        shutil.rmtree(out)
    elif found.finished:
        raise TrashsegError(
            f"{out} holds a finished run ({found.describe()}): RESUME=1 EPOCHS=<more> extends it, "
            "another EXP=, RUNS= or --set model.name= trains beside it, FORCE=1 trains over it (deleting it)"
        )
    elif not (out / "last.pt").is_file():
        raise TrashsegError(
            f"{out} holds a run killed before its first epoch ended (no last.pt): FORCE=1 starts it over"
        )
    else:
        raise TrashsegError(
            f"{out} holds an unfinished run ({found.describe()}): RESUME=1 goes on from its last.pt, "
            "FORCE=1 starts over (deleting it)"
        )


# the settings that make a run what it is; the rest (device, workers, paths of caches and runs,
# tracking, inference-time TTA/CRF) can change between a killed run and its resumption
RECIPE = (
    *("data.data_dir", "data.train_json", "data.valid_json", "data.class_map", "model.arch", "model.encoder"),
    *("model.weights", "model.params", "train.epochs", "train.batch_size", "train.img_size", "train.seed"),
    *("train.accumulate", "train.sync_bn", "train.train_all", "speed.amp", "loss", "optimizer", "scheduler"),
    *("ema", "augment"),
)


def differences(folder, cfg: Settings) -> list[str]:
    """The recipe keys in which the run in ``folder`` (its config.yaml) differs from ``cfg``."""
    import yaml

    from trashseg.config import upgrade

    try:
        saved = flat_config(upgrade(yaml.safe_load((folder / "config.yaml").read_text())).model_dump())
    except (OSError, TrashsegError, yaml.YAMLError, AttributeError, TypeError):
        return [f"{folder / 'config.yaml'} unreadable"]
    now = flat_config(cfg.model_dump())
    keys = [k for k in dict.fromkeys([*saved, *now]) if any(k == r or k.startswith(r + ".") for r in RECIPE)]
    return [f"{k} {saved.get(k)!r} -> {now.get(k)!r}" for k in keys if saved.get(k) != now.get(k)]


def fold_plan(cfg: Settings, force: bool) -> str:
    """What `make cv` does with ``cfg``'s run folder: train (empty), force (FORCE=1: start over),
    resume (an unfinished run of the same recipe) or keep (a finished one); a run of another recipe
    stops with one line, so a fold is never silently kept from other settings."""
    out = run_dir(cfg)
    found = progress(out)
    if found is None:
        return "train"
    if force:
        return "force"
    diff = differences(out, cfg)
    if diff:
        more = f" and {len(diff) - 3} more" if len(diff) > 3 else ""
        raise TrashsegError(
            f"{out} holds a run of other settings ({'; '.join(diff[:3])}{more}): FORCE=1 trains every fold "
            "again, another RUNS= or EXP= keeps both"
        )
    if found.finished:
        return "keep"
    return "resume" if (out / "last.pt").is_file() else "force"  # killed in its first epoch: nothing to go on from
