"""Verbs of the ensembling stage: ensemble, fit-ensemble, soup, vote, import-probs, pseudo, and the
submission's own (validate-submission, Kaggle download and submit)."""

from __future__ import annotations

from pathlib import Path

from trashseg.cli import options
from trashseg.errors import TrashsegError, friendly_errors
from trashseg.settings import Settings

MERGED = ["MODELS", "PROBS", *options.STAGE_SETTINGS]


def _test_json(cfg: Settings) -> Path:
    return Path(cfg.data.data_dir) / cfg.data.test_json


def given_weights(args) -> list[float] | None:
    """ENSEMBLE_WEIGHTS as numbers (None: not given), or one line naming the variable."""
    try:
        return [float(w) for w in options.words(args, "ENSEMBLE_WEIGHTS")] or None
    except ValueError:
        raise TrashsegError(f"ENSEMBLE_WEIGHTS={args.ENSEMBLE_WEIGHTS}: give one number per file") from None


@friendly_errors
def ensemble(argv: list[str]) -> None:
    p = options.parser(
        "ensemble",
        "Merge every fold of MODELS (default: every model with test probabilities in the variant; or the "
        "files PROBS) into SUBMISSIONS/NAME.csv: fitted weights when fit-ensemble has run, else equal.",
        [*MERGED, "SUBMISSIONS", "NAME", "ENSEMBLE_WEIGHTS", "MIXED"],
        sets=True,
    )
    p.add_argument("--out", type=Path, help="the CSV (default: SUBMISSIONS/NAME.csv)")
    p.add_argument("--test-json", type=Path, help="sets row order and count (default: DATA_DIR's test.json)")
    p.add_argument("--weights-file", type=Path, help="a fit-ensemble result (default: this variant's, if any)")
    p.add_argument("--equal", action="store_true", help="ignore fitted weights")
    p.add_argument("--no-validate", action="store_true")
    args = options.parse(p, argv)
    cfg = options.config(args, models=False, trained=options.words(args, "MODELS"))
    weights = given_weights(args)
    from trashseg.ensembling.ensemble import ensemble_to_csv, merge_inputs, weights_source
    from trashseg.ensembling.submission import expected_ids_from_test_json, validate_submission
    from trashseg.runs import Layout

    files, weights_file = merge_inputs(
        Layout.of(cfg),
        [Path(f) for f in options.words(args, "PROBS")],
        options.words(args, "MODELS") or None,
        args.weights_file,
        use_fitted=not weights and not args.equal,
    )
    out = args.out or Path(args.SUBMISSIONS) / f"{args.NAME}.csv"
    test_json = args.test_json or _test_json(cfg)
    w = ensemble_to_csv(
        files, out, test_json, weights, weights_file=weights_file, allow_mixed=options.switch(args, "MIXED")
    )
    print(
        f"merged ({weights_source(weights, weights_file)} weights) "
        + ", ".join(f"{p} (w={x:.3f})" for p, x in zip(files, w))
    )
    if not args.no_validate:
        n = validate_submission(out, expected_ids_from_test_json(test_json))
        print(f"{out}: valid submission, {n} rows")


@friendly_errors
def fit_ensemble(argv: list[str]) -> None:
    p = options.parser(
        "fit-ensemble",
        "Weights of MODELS (default: every model) maximising the OOF mIoU of their merge, on a simplex grid "
        "-> RUNS/ensemble_weights<variant>.json, which ensemble then uses.",
        ["MODELS", "OBJECTIVE", *options.STAGE_SETTINGS],
        sets=True,
    )
    p.add_argument("--step", type=float, default=0.05, help="the grid's step, within (0, 0.5]")
    args = options.parse(p, argv)
    options.check(args)
    from trashseg import registry
    from trashseg.atomic import write_json
    from trashseg.ensembling.fit import fit
    from trashseg.runs import Layout, post_flags

    models = options.words(args, "MODELS") or list(registry.models())
    cfg = options.config(args, models=False, trained=models)
    if len(set(models)) < 2:
        raise TrashsegError(f"MODELS={' '.join(models)}: fit-ensemble needs at least two different models")
    if not 0 < args.step <= 0.5:
        raise TrashsegError(f"--step {args.step}: must be within (0, 0.5]")
    result = fit(cfg, models, args.step, "train_all.json", by_image=args.OBJECTIVE == "per-image")
    out = Layout.of(cfg).fitted_weights()
    write_json(out, result)
    for m, r in result["per_model"].items():
        print(f"OOF mIoU {m:<22} {r['oof_miou']:.4f} (per image {r['oof_miou_per_image']:.4f})")
    e, f = result["equal_mean"], result["fitted"]
    print(f"OOF mIoU {'equal mean':<22} {e['oof_miou']:.4f} (per image {e['oof_miou_per_image']:.4f})")
    w = ", ".join(f"{m}={v:.2f}" for m, v in f["weights"].items())
    print(
        f"OOF mIoU {'fitted (' + w + ')':<22} {f['oof_miou']:.4f} (per image {f['oof_miou_per_image']:.4f}; "
        f"weights maximise the {result['objective']} mIoU)"
    )
    print(
        f"wrote {out} ({result['images']} out-of-fold images; `make ensemble{post_flags(Layout.of(cfg).post)}` "
        "now uses these weights)"
    )


@friendly_errors
def soup(argv: list[str]) -> None:
    p = options.parser(
        "soup",
        "MODEL (or EXP): average each fold's last kept epochs (train.keep_last=N) -> RUNS/<name>-soup/fold<k>, "
        "scored out of fold beside the run; SOUP=folds: the folds' best.pt -> RUNS/<name>-soup/all.",
        ["MODEL", "EXP", "SOUP", *options.RUN_SETTINGS],
        sets=True,
    )
    args = options.parse(p, argv)
    if args.SOUP not in ("epochs", "folds"):
        raise TrashsegError(f"SOUP={args.SOUP}: use epochs or folds")
    cfg = options.config(args)
    from trashseg.ensembling.soup import score
    from trashseg.ensembling.soup import soup as run

    made = run(cfg, args.SOUP)
    if args.SOUP == "epochs" and made:
        score(cfg, [cfg.model.name, f"{cfg.model.name}-soup"])


@friendly_errors
def vote(argv: list[str]) -> None:
    p = options.parser(
        "vote",
        "Pixel-wise majority vote of competition CSVs from any toolkit (FILES) -> SUBMISSIONS/NAME.csv; "
        "ties go by PRIORITY, else file order.",
        ["FILES", "PRIORITY", "DATA_DIR", "SUBMISSIONS", "NAME"],
    )
    args = options.parse(p, argv)
    files = [Path(f) for f in options.words(args, "FILES")]
    if not files:
        raise TrashsegError("FILES=: give the CSV files to vote")
    from trashseg.ensembling.vote import vote_files

    priority = options.words(args, "PRIORITY") or None
    out = Path(args.SUBMISSIONS) / f"{args.NAME}.csv"
    n = vote_files(files, options.data_folder(args) / "test.json", out, priority)
    ties = f"priority {' > '.join(priority)}" if priority else "file order"
    print(f"voted {len(files)} files ({', '.join(map(str, files))}; ties by {ties})")
    print(f"{out}: valid submission, {n} rows")


@friendly_errors
def import_probs(argv: list[str]) -> None:
    p = options.parser(
        "import-probs",
        "Another toolkit's per-image outputs (SRC: .npy probabilities/logits or .png label maps) as MODEL's "
        "RUNS/MODEL/fold<k>/probs_<SPLITS>.npy, which oof, fit-ensemble and ensemble then take.",
        ["SRC", "MODEL", "SPLITS", "KIND", "CLASSES", "JSON", "DATA_DIR", "FOLD", "RUNS"],
        sets=True,
    )
    args = options.parse(p, argv)
    if not args.SRC:
        raise TrashsegError("SRC=: give the folder of per-image outputs")
    if not args.MODEL:
        raise TrashsegError("MODEL=: name the imported model")
    if not args.MODEL.replace("-", "").replace("_", "").isalnum():
        raise TrashsegError(f"MODEL={args.MODEL!r}: use letters, digits, - and _ (it names a folder)")
    split = args.SPLITS or "test"
    if split not in ("test", "valid"):
        raise TrashsegError(f"SPLITS={split}: import one split, test or valid")
    if args.KIND not in ("auto", "probs", "logits"):
        raise TrashsegError(f"KIND={args.KIND}: use auto, probs or logits")
    cfg = options.config(args, models=False)
    from trashseg.ensembling.import_probs import import_probs as run
    from trashseg.runs import data_json

    json_path = Path(args.JSON) if args.JSON else (_test_json(cfg) if split == "test" else data_json(cfg, "valid_json"))
    names = options.words(args, "CLASSES") or None
    out = run(cfg, Path(args.SRC), args.MODEL, split, json_path, args.KIND, names)
    print(f"wrote {out} ({split}, fold {cfg.train.fold}) from {args.SRC}")


@friendly_errors
def pseudo(argv: list[str]) -> None:
    p = options.parser(
        "pseudo",
        "Pseudo-labels from the ensembled test probabilities -> train_data_pseudo{k}.json for K folds (each "
        "fold's training images + the test images; unsure pixels ignored). Train on them with PSEUDO=1.",
        [*MERGED, "K"],
        sets=True,
    )
    p.add_argument("--weights-file", type=Path, help="default: the fitted weights of this variant, if any")
    p.add_argument("--out-dir", type=Path, help="default: the data folder")
    args = options.parse(p, argv)
    cfg = options.config(args, models=False)
    k = options.count(args, "K")
    if k < 2:
        raise TrashsegError(f"K={k}: the number of folds must be 2 or more")
    from trashseg.ensembling.ensemble import merge_inputs
    from trashseg.ensembling.pseudo import make_pseudo
    from trashseg.runs import Layout

    files, weights_file = merge_inputs(
        Layout.of(cfg),
        [Path(f) for f in options.words(args, "PROBS")],
        options.words(args, "MODELS") or None,
        args.weights_file,
    )
    for out in make_pseudo(cfg, files, weights_file, cfg.pseudo.threshold, k, args.out_dir, cfg.pseudo.soft):
        print(f"wrote {out}")


@friendly_errors
def validate_submission(argv: list[str]) -> None:
    p = options.parser(
        "validate-submission", "Check FILE (a submission CSV) against DATA_DIR's test.json.", ["FILE", "DATA_DIR"]
    )
    args = options.parse(p, argv)
    if not args.FILE:
        raise TrashsegError("FILE=: give the submission CSV to check")
    from trashseg.ensembling.submission import SUBMISSION_SIZE, expected_ids_from_test_json, validate_submission

    test_json = options.data_folder(args) / "test.json"
    n = validate_submission(Path(args.FILE), expected_ids_from_test_json(test_json))
    print(f"{args.FILE}: valid submission, {n} rows x {SUBMISSION_SIZE * SUBMISSION_SIZE} class ids")


@friendly_errors
def download(argv: list[str]) -> None:
    p = options.parser(
        "download",
        "Kaggle: download and unzip COMPETITION's data into DATA_DIR (needs credentials).",
        ["COMPETITION", "DATA_DIR"],
    )
    args = options.parse(p, argv)
    if not args.COMPETITION:
        raise TrashsegError("name the competition: COMPETITION=<slug>")
    from trashseg.ensembling.kaggle import download as run

    run(args.COMPETITION, options.data_folder(args))


@friendly_errors
def submit(argv: list[str]) -> None:
    p = options.parser(
        "submit",
        "Kaggle: validate FILE against test.json, then submit it to COMPETITION.",
        ["COMPETITION", "FILE", "MESSAGE", "DATA_DIR"],
    )
    args = options.parse(p, argv)
    if not args.COMPETITION:
        raise TrashsegError("name the competition: COMPETITION=<slug>")
    if not args.FILE:
        raise TrashsegError("FILE=: give the submission CSV to send")
    from trashseg.ensembling.kaggle import submit as run

    run(args.COMPETITION, Path(args.FILE), args.MESSAGE, options.data_folder(args) / "test.json")
