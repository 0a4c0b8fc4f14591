"""Verbs of the data stage: check-data and folds."""

from __future__ import annotations

from pathlib import Path

from trashseg.cli import options
from trashseg.errors import friendly_errors


@friendly_errors
def check_data(argv: list[str]) -> int:
    p = options.parser(
        "check-data", "Counts per class and every problem of train_all.json and test.json.", ["DATA_DIR"], sets=True
    )
    p.add_argument(
        "--json", dest="JSON", default="train_all.json test.json", help="COCO files in the data folder (a list)"
    )
    args = options.parse(p, argv)
    from trashseg.data.check_data import check_data as run

    cfg = options.config(args, models=False)
    return run(cfg, Path(cfg.data.data_dir), options.words(args, "JSON"))


@friendly_errors
def folds(argv: list[str]) -> None:
    p = options.parser(
        "folds", "Write K train/valid fold files from train_all.json.", ["DATA_DIR", "K", "SEED", "GROUP"], sets=True
    )
    args = options.parse(p, argv)
    from trashseg.data.folds import write_folds

    cfg = options.config(args, models=False)  # SEED (train.seed) seeds the split too
    write_folds(cfg, Path(cfg.data.data_dir), options.count(args, "K"), cfg.train.seed, args.GROUP)
