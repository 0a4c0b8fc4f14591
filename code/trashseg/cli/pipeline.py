"""`trashseg pipeline` (make pipeline): from the data folder to the submission in one command, the
winning path chained as a competitor chains it by hand, each stage the kit's own verb:

    folds -> cv (every fold of every model, test + validation probabilities with each model's TTA)
          -> oof -> fit-ensemble
    ROUNDS times: pseudo (labels from the current fitted ensemble, into DATA_DIR/pseudo<r>/)
          -> cv of every model on fold + pseudo-labels (RUNS/pseudo<r>/) -> oof -> fit-ensemble
    -> ensemble of the last round -> SUBMISSIONS/NAME.csv, validated

Every stage is judged out of fold (the validation images of a fold are never pseudo-labelled or trained
on). A stage whose outputs are current is skipped: cv keeps finished folds and resumes killed ones; pseudo,
oof, fit-ensemble and ensemble run again only when what they read or wrote (by content) or their command
changed (OBJECTIVE= picks what the fitted weights maximise). The end
prints, and writes to RUNS/pipeline.json, each round's out-of-fold figures and each stage's time.
DRY_RUN=1 prints the plan and runs nothing."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

from trashseg import registry
from trashseg.cli import options
from trashseg.cli.cv import SHARED, job_config
from trashseg.errors import TrashsegError, friendly_errors

PSEUDO_JSON = "train_data_pseudo{fold}.json"
STAMPED = ("pseudo", "oof", "fit-ensemble", "ensemble")  # kept while their command, what they read and wrote stay
STAGE_STAMPS = "pipeline-stamps.json"  # in a round's runs folder: what its stamped stages last read and wrote
TAKEN = [v for v in SHARED if v != "PSEUDO"]  # the pipeline makes the pseudo-labels and names their files


def round_runs(runs: Path, r: int) -> Path:
    return runs if r == 0 else runs / f"pseudo{r}"


def verb(name: str, *argv: str) -> list[str]:
    return ["trashseg", name, *argv]


def variant(args, models: list[str]) -> bool:
    """TTA probabilities: as TTA= says, else when every model's settings infer with TTA (the CPU presets)."""
    if getattr(args, "TTA", None) not in (None, ""):
        return options.switch(args, "TTA")
    presets = registry.presets()
    return all(job_config(args, *((None, m) if m in presets else (m, None))).tta.enabled for m in models)


def stage_plan(
    args, models: list[str], k: int, rounds: int, data: Path, runs: Path, tta: bool
) -> list[tuple[str, int, list]]:
    """(stage, round, command) in order; commands are `trashseg <verb> ...` lines."""
    names = " ".join(models)
    shared = options.as_argv(args, [v for v in TAKEN if v not in ("RUNS", "TTA")], sets=False)  # each stage's own
    sets = [f"--set={item}" for item in getattr(args, "overrides", [])]
    merged = [*options.as_argv(args, ["DATA_DIR", "CRF"], sets=False), f"--tta={int(tta)}", *sets]
    folds = options.as_argv(args, ["DATA_DIR", "SEED", "GROUP"], sets=False)
    objective = options.as_argv(args, ["OBJECTIVE"], sets=False)
    plan: list[tuple[str, int, list]] = [("folds", 0, verb("folds", f"--k={k}", *folds))]
    for r in range(rounds + 1):
        here = round_runs(runs, r)
        train_json = [f"--set=data.train_json=pseudo{r}/{PSEUDO_JSON}"] if r else []
        if r:
            before = round_runs(runs, r - 1)
            out = f"--out-dir={data / f'pseudo{r}'}"
            plan.append(
                ("pseudo", r, verb("pseudo", f"--models={names}", f"--k={k}", f"--runs={before}", out, *merged))
            )
        cv = [f"--models={names}", f"--k={k}", f"--runs={here}", *shared, f"--tta={int(tta)}", *sets, *train_json]
        cv += options.as_argv(args, ["GPUS", "FORCE"], sets=False) + [f"--name=pipeline-round{r}"]
        cv += [f"--submissions={here / 'submissions'}"]
        plan.append(("cv", r, verb("cv", *cv)))
        plan.append(("oof", r, verb("oof", f"--models={names}", f"--runs={here}", *merged)))
        if len(set(models)) > 1:
            fit = verb("fit-ensemble", f"--models={names}", f"--runs={here}", *objective, *merged)
            plan.append(("fit-ensemble", r, fit))
    final = options.as_argv(args, ["SUBMISSIONS", "NAME"], sets=False)
    plan.append(
        (
            "ensemble",
            rounds,
            verb("ensemble", f"--models={names}", f"--runs={round_runs(runs, rounds)}", *merged, *final),
        )
    )
    return plan


def stage_sources(stage: str, runs: Path, r: int, post: str, models: list[str], data: Path) -> dict[str, str]:
    """What a stamped stage of round r reads, by content: the probability manifests of its split (they
    name the checkpoint, views and images; pseudo reads the previous round's test files), the truth or
    test file and, for pseudo and the ensemble, the fitted weights."""
    from trashseg.hashing import file_sha256
    from trashseg.inference.probs import manifest_path

    merges_test = stage in ("pseudo", "ensemble")
    source = round_runs(runs, r - 1 if stage == "pseudo" else r)
    split = "test" if merges_test else "valid"
    files = [manifest_path(p) for m in models for p in sorted(source.glob(f"{m}/fold*/probs_{split}{post}.npy"))]
    files += [data / ("test.json" if merges_test else "train_all.json")]
    if merges_test:
        files += [p for p in [source / f"ensemble_weights{post}.json"] if p.is_file()]
    return {str(p): file_sha256(p) for p in files if p.is_file()}


def stage_outputs(stage: str, here: Path, post: str, models: list[str], csv: Path, pseudo: list[Path]) -> list[Path]:
    from trashseg.runs import Layout

    layout = Layout(here, post=post)
    if stage == "pseudo":
        return pseudo
    if stage == "oof":
        return [layout.oof_result(m) for m in models]
    return [layout.fitted_weights()] if stage == "fit-ensemble" else [csv]


def figures(runs: Path, post: str, models: list[str]) -> dict:
    """A round's out-of-fold figures: each model's (oof), the equal and fitted merges (fit-ensemble)."""
    import json

    from trashseg.runs import Layout

    layout, out = Layout(runs, post=post), {}
    for m in models:
        path = layout.oof_result(m)
        if path.is_file():
            r = json.loads(path.read_text(encoding="utf-8"))
            out[m] = (r.get("miou"), r.get("miou_per_image"))
    fitted = layout.fitted_weights()
    if fitted.is_file():
        r = json.loads(fitted.read_text(encoding="utf-8"))
        for key, what in (("equal_mean", "equal"), ("fitted", "fitted")):
            w = "/".join(f"{v:.2f}" for v in r[key]["weights"].values())
            out[f"ensemble, {what} ({w})"] = (r[key]["oof_miou"], r[key]["oof_miou_per_image"])
    return out


def wrote(outputs: list[Path]) -> dict[str, str | None]:
    """A stage's outputs by content (None: missing), so one changed or removed since is made again."""
    from trashseg.hashing import file_sha256

    return {str(p): file_sha256(p) if p.is_file() else None for p in outputs}


def read_stamps(here: Path) -> dict:
    import json

    try:
        return json.loads((here / STAGE_STAMPS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@friendly_errors
def pipeline(argv: list[str]) -> int:
    p = options.parser(
        "pipeline",
        "Data to submission in one command: folds, every fold of MODELS, OOF and fitted weights, then ROUNDS "
        "pseudo-label rounds (each judged out of fold), the last round's ensemble -> SUBMISSIONS/NAME.csv. "
        "Stages already done are skipped; DRY_RUN=1 prints the plan.",
        ["MODELS", "K", "GROUP", "ROUNDS", "GPUS", *TAKEN, "OBJECTIVE", "FORCE", "SUBMISSIONS", "NAME", "DRY_RUN"],
        sets=True,
    )
    p.add_argument("-n", dest="plan_only", action="store_true", help="print the plan, run nothing (= DRY_RUN=1)")
    args = options.parse(p, argv)
    options.check(args)  # OBJECTIVE's value too, before any stage runs
    models = options.words(args, "MODELS")
    if not models:
        raise TrashsegError('MODELS=: name the models or presets to train, e.g. MODELS="cpu-lite cpu-lite-deeplab"')
    known = {**registry.models(), **registry.presets()}
    unknown = [m for m in models if m not in known]
    if unknown:
        raise TrashsegError(f"MODELS={' '.join(models)}: no model folder or preset {', '.join(unknown)}")
    k, rounds = options.count(args, "K"), options.count(args, "ROUNDS")
    if k < 2:
        raise TrashsegError(f"K={k}: the number of folds must be 2 or more")
    cfg = options.config(args, models=False)
    data, runs = Path(cfg.data.data_dir), Path(cfg.train.runs_dir)
    tta = variant(args, models)
    post = "_tta" if tta else ""
    plan = stage_plan(args, models, k, rounds, data, runs, tta)
    if args.plan_only or options.switch(args, "DRY_RUN"):
        print(f"pipeline plan ({len(plan)} stages; nothing run):")
        for i, (stage, r, cmd) in enumerate(plan, 1):
            print(f"  {i:>2}. round {r} {stage:<12} {shlex.join(cmd)}")
        return 0
    from trashseg.atomic import write_json
    from trashseg.data.folds import check_folds

    rows, start = [], time.perf_counter()
    csv = Path(args.SUBMISSIONS) / f"{args.NAME}.csv"
    for stage, r, cmd in plan:
        t0 = time.perf_counter()
        if stage == "folds":
            have = all((data / f"{kind}_data{fold}.json").is_file() for kind in ("train", "valid") for fold in range(k))
            if have:
                check_folds(data, k=k)  # fold files of another K or train_all.json stop here, with one line
                print(f"[pipeline] folds: {data}'s {k} fold files kept")
                rows.append((stage, r, "kept", 0.0))
                continue
        stamped = None  # (its round's runs folder, what it reads, what it writes) for a stamped stage
        if stage in STAMPED:
            here = round_runs(runs, r)
            pseudo = [data / f"pseudo{r}" / PSEUDO_JSON.format(fold=fold) for fold in range(k)]
            reads = stage_sources(stage, runs, r, post, models, data)
            outputs = stage_outputs(stage, here, post, models, csv, pseudo)
            stamped = (here, reads, outputs)
            if read_stamps(here).get(stage) == {"command": cmd, "reads": reads, "wrote": wrote(outputs)}:
                if stage == "pseudo":
                    print(f"[pipeline] pseudo round {r}: {data / f'pseudo{r}'} made from today's round {r - 1}, kept")
                else:
                    print(f"[pipeline] round {r} {stage}: what it reads is unchanged since it ran, kept")
                rows.append((stage, r, "kept", 0.0))
                continue
            if stage == "pseudo" and list(here.glob("*/fold*/best.pt")) and not options.switch(args, "FORCE"):
                raise TrashsegError(
                    f"round {r}'s pseudo-labels must be made again (round {r - 1}'s models or weights, or the files "
                    "themselves, changed), "
                    f"but {here} holds runs trained on the old ones: FORCE=1 trains them again"
                )
        print(f"[pipeline] {shlex.join(cmd)}", flush=True)
        code = subprocess.call([sys.executable, "-m", *cmd])
        if code != 0:
            print(
                f"[pipeline] round {r} {stage} failed (exit {code}); run the same command again to resume",
                file=sys.stderr,
            )
            return code or 1
        if stamped is not None:
            here, reads, outputs = stamped
            stamp = {"command": cmd, "reads": reads, "wrote": wrote(outputs)}
            write_json(here / STAGE_STAMPS, {**read_stamps(here), stage: stamp})
        rows.append((stage, r, "ran", time.perf_counter() - t0))
    table = {
        "models": models,
        "k": k,
        "rounds": rounds,
        "variant": post.strip("_") or "plain",
        "csv": str(csv),
        "stages": [{"stage": s, "round": r, "done": d, "seconds": round(t, 1)} for s, r, d, t in rows],
        "oof": {
            str(r): {
                w: {"miou": a, "miou_per_image": b} for w, (a, b) in figures(round_runs(runs, r), post, models).items()
            }
            for r in range(rounds + 1)
        },
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_json(runs / "pipeline.json", table)
    print(f"\npipeline: {' '.join(models)}, K={k}, {rounds} pseudo-label round(s), {table['variant']} probabilities")
    print(f"{'round':<6} {'out of fold':<40} {'dataset':>8} {'per-image':>10}")
    for r, rows_of in table["oof"].items():
        for what, f in rows_of.items():
            print(f"{r:<6} {what:<40} {f['miou']:8.4f} {f['miou_per_image']:10.4f}")
    print(f"{'round':<6} {'stage':<14} {'':<10} {'seconds':>8}")
    for s in table["stages"]:
        print(f"{s['round']:<6} {s['stage']:<14} {s['done']:<10} {s['seconds']:8.1f}")
    print(f"wrote {runs / 'pipeline.json'}; the submission: {table['csv']}")
    return 0
