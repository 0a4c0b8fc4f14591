"""Verbs of a code competition: kaggle-bundle (what `make ensemble` merges, as a Kaggle dataset with an
offline notebook), bundle-infer (what that notebook runs), kaggle-bundle-check (the notebook run offline,
its CSV against the kit's own) and kaggle-upload (the dataset created or versioned)."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from trashseg.cli import options
from trashseg.errors import TrashsegError, friendly_errors

WHEEL_CACHE = Path("cache") / "wheels"


def bundle_folder(args) -> Path:
    name = args.NAME
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise TrashsegError(f"NAME={name!r}: use letters, digits, '-', '_' and '.' (it names bundles/NAME)")
    return Path(args.BUNDLES) / name


@friendly_errors
def kaggle_bundle(argv: list[str]) -> None:
    p = options.parser(
        "kaggle-bundle",
        "What `make ensemble` with these variables merges (every fold of MODELS, their TTA views, the fitted "
        "weights) as a Kaggle dataset -> bundles/NAME/: the kit and its runtime wheels, the checkpoints "
        "(fp16, model weights only), bundle.json and inference.ipynb, which runs offline.",
        [
            *("MODELS", "PROBS", "DATA_DIR", "RUNS", "TTA", "CRF", "ENSEMBLE_WEIGHTS", "NAME", "COMPETITION"),
            *("BUNDLES", "KAGGLE_DATASET", "KAGGLE_TITLE", "KAGGLE_PYTHON", "INCLUDE_TORCH", "HALF"),
        ],
        sets=True,
    )
    p.add_argument("--weights-file", type=Path, help="a fit-ensemble result (default: this variant's, if any)")
    p.add_argument("--equal", action="store_true", help="ignore fitted weights")
    p.add_argument("--wheel-cache", type=Path, default=WHEEL_CACHE, help=f"downloaded wheels (default {WHEEL_CACHE})")
    args = options.parse(p, argv)
    if not args.COMPETITION:
        raise TrashsegError(
            "COMPETITION=<slug>: name the competition (its data appear to the notebook at /kaggle/input/<slug>/)"
        )
    out = bundle_folder(args)
    cfg = options.config(args, models=False, trained=options.words(args, "MODELS"))
    from trashseg.cli.merge import given_weights
    from trashseg.ensembling.bundle import Options, build, members
    from trashseg.runs import Layout

    found, source, fitted = members(
        Layout.of(cfg),
        options.words(args, "MODELS") or None,
        [Path(f) for f in options.words(args, "PROBS")],
        given_weights(args),
        args.weights_file,
        use_fitted=not args.equal,
    )
    opts = Options(
        name=args.NAME,
        dataset=args.KAGGLE_DATASET,
        title=args.KAGGLE_TITLE,
        competition=args.COMPETITION,
        python=args.KAGGLE_PYTHON,
        include_torch=options.switch(args, "INCLUDE_TORCH"),
        half=args.HALF is None or options.switch(args, "HALF"),
        wheel_cache=args.wheel_cache,
    )
    record = build(found, source, fitted, opts, out)
    for m in record["members"]:
        tta = m["views"].get("tta") or {}
        views = f"TTA hflip={tta.get('hflip')} scales={tta.get('scales')}" if tta else "no TTA"
        print(f"  {m['run']:<28} w={m['weight']:.3f}  {views}, scored at {m['views']['resolution']} px")
    sizes = record["sizes_mb"]
    print(
        f"wrote {out}/ for {record['dataset']} ({source} weights, {record['precision']} checkpoints): "
        f"{len(record['wheels'])} wheels {sizes['wheels']} MB, {len(record['members'])} checkpoints "
        f"{sizes['checkpoints']} MB, {sizes['all']} MB in all"
    )
    if record["dataset"].startswith("your-kaggle-username/"):
        print("  (owner unknown: set KAGGLE_DATASET=<you>/<slug>, or credentials, before make kaggle-upload)")
    print(f"next: make kaggle-bundle-check NAME={args.NAME} DATA_DIR=<competition folder>, then make kaggle-upload")


@friendly_errors
def bundle_infer(argv: list[str]) -> None:
    p = options.parser(
        "bundle-infer",
        "What a kaggle-bundle's notebook runs: every member of BUNDLE/bundle.json inferred with its recorded "
        "views on DATA_DIR's test.json, merged with its weights -> OUT (validated).",
    )
    p.add_argument("--bundle", type=Path, required=True, help="the bundle's folder (bundle.json)")
    p.add_argument("--data-dir", type=Path, required=True, help="the competition folder (test.json in or below it)")
    p.add_argument("--out", type=Path, required=True, help="the submission CSV")
    p.add_argument("--work", type=Path, required=True, help="where the members' probabilities are written")
    args = options.parse(p, argv)
    from trashseg.ensembling.bundle_infer import bundle_infer as run

    run(args.bundle, args.data_dir, args.out, args.work)


def _verb(func, argv: list[str], step: str) -> None:
    """A verb of the kit run here, as `make` runs it: its error becomes this check's one line."""
    try:
        func.__wrapped__(argv)
    except TrashsegError as exc:
        raise TrashsegError(f"kaggle-bundle-check: the reference ({step}) failed: {exc}") from None


def reference_csv(record: dict, bundle: Path, data: Path, work: Path) -> Path:
    """`trashseg infer` then `trashseg ensemble` on the bundle's own runs (its checkpoints as bundled)."""
    from trashseg import registry
    from trashseg.cli.merge import ensemble
    from trashseg.cli.predict import infer
    from trashseg.paths import contained

    runs = work / "runs"
    files, weights = [], []
    for i, m in enumerate(record["members"]):
        source = contained(bundle, str(m["run"]), f"{bundle / 'bundle.json'} members[{i}].run")
        name, fold = str(m["model"]), str(m["fold"])
        if name in registry.models():
            kind = "--model"
        elif name in registry.presets():
            kind = "--exp"
        else:
            raise TrashsegError(
                f"kaggle-bundle-check: {name} is neither a model folder nor a preset, so `trashseg infer` cannot "
                "stand as the reference for it"
            )
        shutil.copytree(source, runs / name / fold)
        views = m["views"]
        tta = views.get("tta") or {}
        argv = [kind, name, "--runs", str(runs), "--data-dir", str(data), "--splits", "test"]
        argv += ["--train-all", "1"] if fold == "all" else ["--fold", fold.removeprefix("fold")]
        argv += ["--tta", "1" if tta else "0", "--set", f"eval.score_size={views['resolution']}"]
        if tta:
            argv += ["--set", f"tta.hflip={str(tta['hflip']).lower()}", "--set", f"tta.scales={list(tta['scales'])}"]
        _verb(infer, argv, f"trashseg infer {' '.join(argv[:2])} {fold}")
        files.append(runs / name / fold / f"probs_test{record.get('variant', '')}.npy")
        weights.append(repr(float(m["weight"])))
    out = work / "reference.csv"
    argv = ["--probs", " ".join(map(str, files)), "--ensemble-weights", " ".join(weights), "--out", str(out)]
    _verb(ensemble, [*argv, "--data-dir", str(data), "--runs", str(runs)], "trashseg ensemble")
    return out


def runs_own_csv(record: dict, runs: Path, test_json: Path, out: Path) -> Path | None:
    """The merge of the runs' own test probabilities (before fp16), when they are still those the bundle
    was made from; else None."""
    from trashseg.ensembling.ensemble import ensemble_to_csv
    from trashseg.hashing import file_sha256

    files, weights = [], []
    for m in record["members"]:
        made = m.get("made_from") or {}
        folder = runs / str(m["model"]) / str(m["fold"])
        probs = folder / str(made.get("probs", ""))
        if not probs.is_file() or not (folder / "best.pt").is_file():
            return None
        if file_sha256(folder / "best.pt") != made.get("checkpoint_sha256"):
            return None
        files.append(probs)
        weights.append(float(m["weight"]))
    ensemble_to_csv(files, out, test_json, weights, progress=False)
    return out


@friendly_errors
def kaggle_bundle_check(argv: list[str]) -> None:
    p = options.parser(
        "kaggle-bundle-check",
        "Run bundles/NAME's notebook offline (CHECK_IN=container: the stand-in image with --network none; "
        "venv: a fresh venv, index off) on DATA_DIR as the competition folder, and check its CSV equals "
        "`trashseg infer` + `trashseg ensemble` on the bundle's runs, pixel for pixel.",
        ["NAME", "BUNDLES", "DATA_DIR", "RUNS", "CHECK_IN"],
    )
    p.add_argument("--docker", default="docker", help="docker or podman (CHECK_IN=container)")
    p.add_argument(
        "--image", default=None, help="the stand-in image (default: trashseg-kaggle:standin, built if missing)"
    )
    p.add_argument("--base-image", default=None, help="its base (default: trashseg-base:bookworm, make docker-base)")
    p.add_argument("--ca-bundle", type=Path, help="a proxy's CA for building the stand-in image (a build secret)")
    p.add_argument("--timeout", type=int, default=3600, help="seconds a notebook cell may take (default 3600)")
    args = options.parse(p, argv)
    where = args.CHECK_IN
    if where not in ("container", "venv"):
        raise TrashsegError(f"CHECK_IN={where}: use container (the stand-in image, --network none) or venv")
    bundle = bundle_folder(args)
    data = options.data_folder(args)
    from trashseg.ensembling import bundle_check as check
    from trashseg.ensembling.bundle_infer import find_test_json, read_bundle

    record = read_bundle(bundle)
    test_json = find_test_json(data)
    slug, competition = str(record["dataset"]).split("/")[-1], str(record["competition"])
    began, image_seconds = time.perf_counter(), 0.0
    if where == "container":
        import trashseg

        root = Path(trashseg.__file__).resolve().parents[2]
        if shutil.which(args.docker) is None:
            raise TrashsegError(f"DOCKER={args.docker}: not found (make setup-podman, then DOCKER=podman)")
        image = args.image or check.STAND_IN_IMAGE
        check.stand_in_image(args.docker, image, args.base_image or check.STAND_IN_BASE, args.ca_bundle, root)
        image_seconds = time.perf_counter() - began  # the stand-in image's build, when this check made it
        python = check.image_python(args.docker, image)
    else:
        python = "{}.{}".format(*sys.version_info[:2])
    if python != record.get("python"):
        raise TrashsegError(
            f"{bundle}: its wheels are for Python {record.get('python')} (KAGGLE_PYTHON), the check's "
            f"{'image' if where == 'container' else 'venv'} runs {python}: make the bundle with KAGGLE_PYTHON={python} "
            "to check it here"
        )
    # beside the bundle, never in it (the dataset): replaced by each check
    work = (bundle.parent / f".check-{bundle.name}").resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    start = time.perf_counter()
    reference = reference_csv(record, bundle.resolve(), test_json.parent.resolve(), work / "reference")
    made_reference = time.perf_counter() - start
    if where == "container":
        seconds = check.execute_in_container(
            args.docker, image, bundle, slug, test_json.parent, competition, work, args.timeout
        )
        csv = work / "working" / "submission.csv"
    else:
        seconds = check.execute_in_venv(bundle.resolve(), slug, test_json.parent, competition, work, args.timeout)
        csv = work / "kaggle" / "working" / "submission.csv"
    if not csv.is_file():
        raise TrashsegError(f"the notebook ran but wrote no {csv.name} (see {work})")
    differ, total, images, n = check.compare(csv, reference, test_json)
    size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file()) / 1e6
    print(
        f"bundle {bundle}: {size:.1f} MB; the notebook ran offline in {seconds:.0f} s "
        f"(the reference: {made_reference:.0f} s)"
    )
    if differ or images:
        raise TrashsegError(
            f"the notebook's {csv} differs from the kit's {reference}: {differ} of {total} pixels in "
            f"{len(images)} image(s), first {images[:3]}"
        )
    print(
        f"equal: the notebook's submission.csv and `trashseg infer` + `trashseg ensemble` on the bundle's runs "
        f"agree on all {total} pixels of {n} images"
    )
    runs = Path(args.RUNS or "runs")
    own = runs_own_csv(record, runs, test_json, work / "runs-own.csv")
    result = {
        "check_in": where,
        "bundle_mb": round(size, 1),
        "precision": record["precision"],
        "wheels": len(record["wheels"]),
        "notebook_seconds": round(seconds, 1),
        "reference_seconds": round(made_reference, 1),
        "image_seconds": round(image_seconds, 1) if where == "container" else None,  # its build, when made here
        "images": n,
        "pixels": total,
        "pixels_differing_from_runs_own": None,
    }
    if own is None:
        print(f"(the runs' own test probabilities under {runs} are gone or changed: their merge is not compared)")
    else:
        d, t, imgs, _ = check.compare(csv, own, test_json)
        result["pixels_differing_from_runs_own"] = d
        print(
            f"against the merge of the runs' own probabilities ({record['precision']} checkpoints in the bundle): "
            f"{d} of {t} pixels differ ({100 * d / max(t, 1):.4f}%, {len(imgs)} image(s))"
        )
        if d and record["precision"] != "fp16":
            raise TrashsegError(
                f"the bundle holds its runs' checkpoints as trained, yet its CSV differs from their own merge in {d} "
                "pixels (see above)"
            )
    from trashseg.atomic import write_json

    write_json(work / "check.json", result)
    print(f"the executed notebook, both CSVs and the check's figures (check.json): {work}")


@friendly_errors
def kaggle_upload(argv: list[str]) -> None:
    p = options.parser(
        "kaggle-upload",
        "Create bundles/NAME as a Kaggle dataset, or a new version of it when it exists (the kaggle CLI; "
        "credentials from ~/.kaggle/kaggle.json or the environment, never written). DRY_RUN=1: print what "
        "would be sent.",
        ["NAME", "BUNDLES", "MESSAGE", "DRY_RUN"],
    )
    args = options.parse(p, argv)
    from trashseg.ensembling.kaggle import upload_dataset

    message = args.MESSAGE if args.MESSAGE != options.VARS["MESSAGE"].default else f"trashseg bundle {args.NAME}"
    upload_dataset(bundle_folder(args), message, options.switch(args, "DRY_RUN"))
