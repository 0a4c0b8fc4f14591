"""Verbs that turn checkpoints into predictions and scores: infer, eval, oof, report and predict."""

from __future__ import annotations

from pathlib import Path

from trashseg.cli import options
from trashseg.errors import TrashsegError, friendly_errors


@friendly_errors
def infer(argv: list[str]) -> None:
    p = options.parser(
        "infer",
        "MODEL's (or EXP's) probabilities for test.json and FOLD's validation images, as the run's "
        "probs_<split><variant>.npy (TTA=1, CRF=1 pick the variant).",
        ["MODEL", "EXP", *options.RUN_SETTINGS, "SPLITS"],
        sets=True,
    )
    p.add_argument("--checkpoint", type=Path, help="default: <run dir>/best.pt")
    args = options.parse(p, argv)
    splits = options.words(args, "SPLITS") or ["test", "valid"]
    bad = [s for s in splits if s not in ("test", "valid")]
    if bad:
        raise TrashsegError(f"SPLITS={args.SPLITS}: use test and/or valid")
    cfg = options.config(args)
    from trashseg.inference.predictor import infer as run
    from trashseg.runs import run_dir

    run(cfg, args.checkpoint or run_dir(cfg) / "best.pt", splits)


@friendly_errors
def evaluate(argv: list[str]) -> None:
    p = options.parser(
        "eval",
        "Score MODEL's (or EXP's) best checkpoint, with the configured TTA/CRF, on JSON=annotated.json.",
        ["MODEL", "EXP", *options.RUN_SETTINGS, "JSON", "OUT"],
        sets=True,
    )
    p.add_argument("--checkpoint", type=Path, help="default: <run dir>/best.pt")
    p.add_argument("--image-root", type=Path, help="the JSON's images (default: DATA_DIR when given, else its folder)")
    args = options.parse(p, argv)
    if not args.JSON:
        raise TrashsegError("JSON=: give the annotated COCO file to score")
    cfg = options.config(args)
    from trashseg.evaluation.scoring import evaluate_checkpoint
    from trashseg.runs import run_dir

    root = args.image_root or (Path(args.DATA_DIR) if args.DATA_DIR else None)
    evaluate_checkpoint(
        cfg, args.checkpoint or run_dir(cfg) / "best.pt", Path(args.JSON), root, Path(args.OUT) if args.OUT else None
    )


@friendly_errors
def oof(argv: list[str]) -> None:
    p = options.parser(
        "oof",
        "Score each model's (MODEL, EXP or MODELS; default every model) out-of-fold predictions against "
        "train_all.json -> RUNS/<model>/oof<variant>.json; with TTA/CRF, the gain over the plain variant.",
        ["MODEL", "EXP", "MODELS", *options.STAGE_SETTINGS],
        sets=True,
    )
    args = options.parse(p, argv)
    from trashseg import registry
    from trashseg.data.loaders import load_set
    from trashseg.evaluation.oof import Truth, score_and_write
    from trashseg.runs import Layout, data_dir

    one = args.MODEL or args.EXP  # MODEL first: EXP=cpu-lite MODEL=cpu-lite-soup scores the soup
    models = [one] if one else options.words(args, "MODELS") or list(registry.models())
    cfg = options.config(args, models=False, trained=models)
    layout = Layout.of(cfg)
    for model in models:
        layout.require_fold_probs(model, "valid")  # every model checked before the truth is built
    truth = Truth(cfg, load_set(cfg, data_dir(cfg) / "train_all.json"), cfg.eval.score_size)
    for model in models:
        score_and_write(layout, truth, model)


@friendly_errors
def report(argv: list[str]) -> None:
    p = options.parser(
        "report",
        "RUN's report page: headline, changed settings, per-class IoU, confusion matrix, curves and a gallery "
        "of every validation image (or the N worst), worst first -> RUN/report/index.html. Without RUN, MODELS: "
        "the same page for their merged out-of-fold probabilities (fitted or equal weights; TTA=1: the TTA "
        "files) against train_all.json -> RUNS/report-<models>/index.html.",
        ["RUN", "N", "MODELS", *options.STAGE_SETTINGS],
        sets=True,
    )
    args = options.parse(p, argv)
    n = options.count(args, "N")
    models = options.words(args, "MODELS")
    if args.RUN and models:
        raise TrashsegError("RUN= and MODELS=: give one (a run's report, or an ensemble's out-of-fold report)")
    ignored = [n for n in options.STAGE_SETTINGS if getattr(args, n, None) not in (None, "")]
    ignored += ["ARGS (--set)"] if args.overrides else []
    if args.RUN and ignored:
        raise TrashsegError(
            f"{', '.join(ignored)}: RUN='s report scores the run with its own settings (its config.yaml); "
            "these apply to an ensemble's report (MODELS=)"
        )
    if args.RUN:
        from trashseg.evaluation.report import report as run

        out = run(Path(args.RUN), n)
    elif models:
        from trashseg.evaluation.report import ensemble_report

        out = ensemble_report(options.config(args, models=False, trained=models), models, n)
    else:
        raise TrashsegError("RUN=: give a run folder, e.g. RUN=runs/fpn/fold0 (or MODELS=... for an ensemble's OOF)")
    print((out / "per_class_iou.md").read_text())
    print(f"wrote {out}/index.html (open it in a browser), per_class_iou.md, confusion_matrix.png, gallery/")


@friendly_errors
def runs(argv: list[str]) -> None:
    p = options.parser(
        "runs",
        "Every run under RUNS as one table: model, preset, fold, epochs, best validation mIoU (dataset, per "
        "image), OOF (plain, TTA), training seconds, date, commit, status, and the settings it differs in.",
        ["RUNS", "SORT", "CSV", "HTML"],
    )
    args = options.parse(p, argv)
    options.check(args)
    from trashseg.evaluation.runs_table import as_csv, as_text, collect, sort_rows, write_html

    runs_dir = Path(args.RUNS or "runs")
    rows = sort_rows(collect(runs_dir), args.SORT)
    print(as_csv(rows) if options.switch(args, "CSV") else as_text(rows), end="")
    if options.switch(args, "HTML"):
        print(f"wrote {write_html(rows, runs_dir)}")


@friendly_errors
def predict(argv: list[str]) -> None:
    p = options.parser(
        "predict",
        "RUN's overlays (photo | prediction) for any folder of photos, and a legend -> OUT or RUN/predict/.",
        ["RUN", "IMAGES", "OUT"],
    )
    args = options.parse(p, argv)
    if not args.RUN:
        raise TrashsegError("RUN=: give a run folder")
    if not args.IMAGES:
        raise TrashsegError("IMAGES=: give a folder of photos")
    from trashseg.inference.predict import predict_folder

    run = Path(args.RUN)
    written = predict_folder(run, Path(args.IMAGES), Path(args.OUT) if args.OUT else run / "predict")
    print(f"wrote {len(written)} overlays and legend.png to {written[0].parent}")
