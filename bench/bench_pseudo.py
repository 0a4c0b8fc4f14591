"""bench-pseudo: pseudo-label rounds judged out of fold, with the competition's shift. On the woosong
photos' 3 date folds, each fold's validation photos play the unlabelled test: the teachers of that fold
(bench-cpu-ensemble's runs, which never saw its date) label them, their fitted TTA ensemble's confident
pixels (>= THRESHOLD) become pseudo-labels, every member is retrained on the fold's other dates + those
photos, and the students are scored on the photos' truth. A second round labels again from the first
round's students. Figures: each member plain and with TTA, the members' TTA ensemble with equal and
fitted weights, per round and threshold, against round 0 (the teachers) of the same seed.

Every step is an ordinary make target (train, infer, oof, fit-ensemble) or the kit's own pseudo-label
functions; a round whose students are scored is read, not retrained. The table goes to
bench/results/pseudo-seed<N>.json (in git; thresholds and rounds add up across runs), which
docs/results.md's figures are read from. About 1 h a round on 2 cores (two members x 3 folds of 820
photos)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import bench_recipes
from bench_cpu_ensemble import present_of
from bench_recipes import DEFAULT_LEDGER, FIRST_SEED, make, prepare, present_mean, row_steps, run_name, run_row, run_tta

from common import ROOT
from trashseg.atomic import write_json

MEMBERS = ("cpu-lite", "cpu-lite-deeplab")
K = 3
# the bench's one mask cache (main sets it; keyed by each mask's content: pseudo and true masks never mix)
CACHE = ROOT / "runs" / "bench-recipes" / "cache"
STAMP = "bench-pseudo.json"  # in a round's folder: each member -> the label files its runs were trained on


def slug(config: str) -> str:
    return config.replace(" students ", "-s-").replace(" ", "-")


def student_runs(runs: Path, seed: int, config: str, r: int) -> Path:
    """Where round r's students of one seed and configuration train (round 0: the teachers' own folder)."""
    return runs if r == 0 else runs / "pseudo" / f"seed{seed}-t{slug(config)}" / f"round{r}"


def pseudo_folder(seed: int, config: str, r: int) -> str:
    """Round r's pseudo-label files, relative to the data folder (train_json is read from there)."""
    return f"pseudo-seed{seed}-t{slug(config)}-r{r}"


def fit(members: list[str], data: Path, runs: Path, seed: int) -> dict:
    """make fit-ensemble TTA=1 over the members' runs in ``runs``; its weights file, read back."""
    models = " ".join(run_name(m, seed) for m in members)
    make("fit-ensemble", MODELS=models, DATA_DIR=data, RUNS=runs, TTA=1, ARGS=f"--set data.cache_dir={CACHE}")
    return json.loads((runs / "ensemble_weights_tta.json").read_text())


def label_round(
    members: list[str], data: Path, teachers: Path, seed: int, threshold: float, folder: str, soft: bool = False
) -> tuple[list[Path], list[float]]:
    """A round's training files in ``folder``: for each fold k, train_data{k} + fold k's validation photos labelled by
    fold k's teachers (their TTA validation probabilities, merged with the teachers' fitted weights); and each
    fold's share of confident (labelled) pixels."""
    from trashseg.config import defaults
    from trashseg.data.coco import read_json
    from trashseg.ensembling.ensemble import check_manifests, normalise_weights, weights_from_file
    from trashseg.ensembling.pseudo import confident_labels, with_pseudo
    from trashseg.inference.probs import ProbsReader
    from trashseg.runs import Layout

    out_dir = data / folder
    files = [out_dir / f"train_data_pseudo{k}.json" for k in range(K)]
    layout = Layout(teachers, post="_tta")
    class_map = defaults()["data"]["class_map"]
    shares = []
    for k, out in enumerate(files):
        valid = read_json(data / f"valid_data{k}.json")
        readers = [ProbsReader(layout.probs(run_name(m, seed), k, "valid")) for m in members]
        check_manifests(readers, [str(img["file_name"]) for img in valid["images"]])
        fitted = weights_from_file(teachers / "ensemble_weights_tta.json", readers) if len(readers) > 1 else None
        weights = normalise_weights(fitted, len(readers))
        labels = confident_labels(readers, list(weights), valid["images"], threshold, soft)
        train_file = data / f"train_data{k}.json"
        write_json(out, with_pseudo(read_json(train_file), str(train_file), class_map, valid["images"], labels))
        for reader in readers:
            reader.close()
        unsure = sum(a for found in labels for cls, _, a, _ in found if cls == 255)
        pixels = sum(img["height"] * img["width"] for img in valid["images"])
        shares.append(1 - unsure / pixels)
        print(f"bench-pseudo: fold {k}: {len(labels)} photos labelled, {shares[-1]:.1%} of their pixels confident")
    return files, shares


def hashes(files: list[Path]) -> dict[str, str]:
    from trashseg.hashing import file_sha256

    return {f.name: file_sha256(f) for f in files}


def train_students(members: list[str], data: Path, here: Path, seed: int, folder: str, made: dict) -> None:
    """Every member on every fold's file of ``folder``, inferred on its validation photos plain and with
    TTA and scored out of fold. A fold whose probabilities exist from today's labels is kept."""
    from trashseg.runs import Layout

    kept = trained_on(here)
    current = {m: kept.get(m) == made for m in members}
    here.mkdir(parents=True, exist_ok=True)
    write_json(here / STAMP, {**kept, **dict.fromkeys(members, made)})  # before any training
    tta = Layout(here, post="_tta")
    for m in members:
        train, infer, common, args = row_steps(m, data, here, seed)
        args += f" --set data.train_json={folder}/train_data_pseudo{{fold}}.json --set data.cache_dir={CACHE}"
        run = run_name(m, seed)
        for k in range(K):
            if current[m] and tta.probs(run, k, "valid").is_file() and Layout(here).probs(run, k, "valid").is_file():
                continue
            make(train, **common, FOLD=k, FORCE=1, ARGS=args)
            make(infer, **common, FOLD=k, SPLITS="valid", TTA=0, ARGS=args)
            make(infer, **common, FOLD=k, SPLITS="valid", TTA=1, ARGS=args)
        for t in (0, 1):
            make("oof", MODEL=run, DATA_DIR=data, RUNS=here, TTA=t, ARGS=f"--set data.cache_dir={CACHE}")


def trained_on(here: Path) -> dict:
    """The round folder's stamp: each member -> the hashes of the label files its runs were trained on."""
    stamp = here / STAMP
    return json.loads(stamp.read_text()) if stamp.is_file() else {}


def students_scored(members: list[str], here: Path, seed: int, made: dict) -> list[str]:
    """The members scored in ``here`` on the label files ``made`` (not on an older version of them)."""
    from trashseg.runs import Layout

    kept, oof = trained_on(here), Layout(here, post="_tta").oof_result
    return [m for m in members if kept.get(m) == made and oof(run_name(m, seed)).is_file()]


def scores(members: list[str], here: Path, seed: int, fitted: dict | None) -> dict:
    """A round's figures: each member plain and TTA (oof), the TTA ensemble equal and fitted (none for
    one member)."""
    from trashseg.runs import Layout

    rows = {}
    for m in members:
        for kind, post in (("plain", ""), ("TTA", "_tta")):
            r = json.loads(Layout(here, post=post).oof_result(run_name(m, seed)).read_text())
            rows[f"{m} {kind}"] = {"miou": r["miou"], "miou_per_image": r["miou_per_image"], "present": present_mean(r)}
    for key, what in (("equal_mean", "equal"), ("fitted", "fitted")) if fitted else ():
        e = fitted[key]
        row = {"miou": e["oof_miou"], "miou_per_image": e["oof_miou_per_image"], "weights": e["weights"]}
        if key == "fitted":
            row["present"] = present_of(fitted["fitted_per_class_iou"])
        rows[f"ensemble TTA, {what}"] = row
    return rows


def seconds(members: list[str], here: Path, seed: int) -> dict:
    return {m: bench_recipes.fold_seconds(here, run_name(m, seed)) for m in members}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=FIRST_SEED, help="the teachers' and students' seed")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.9], help="confidence for a pseudo-label")
    parser.add_argument(
        "--soft",
        type=int,
        choices=(0, 1),
        default=0,
        help="1: soft labels (each confident pixel's cross-entropy weighted by its confidence)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="pseudo-label rounds (each retrains every member)")
    parser.add_argument("--members", nargs="+", default=list(MEMBERS), help="the ensemble's members (preset rows)")
    parser.add_argument(
        "--students", nargs="+", help="the members retrained each round (default: all; the pipeline retrains all)"
    )
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-recipes")
    parser.add_argument("--ledger", type=Path, default=DEFAULT_LEDGER, help="the teachers' scored runs")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results", help="where the table is kept")
    parser.add_argument(
        "--smoke", action="store_true", help="the sample at a tiny budget; ledger and table in RUNS, not bench/"
    )
    args = parser.parse_args()
    if args.smoke:
        bench_recipes.smoke_settings()
        if args.runs == ROOT / "runs" / "bench-recipes":
            args.runs = ROOT / "runs" / "bench-pseudo-smoke"
        if args.ledger == DEFAULT_LEDGER:  # a smoke run never writes the committed files
            args.ledger = args.runs / "ledger.json"
        if args.results == ROOT / "bench" / "results":
            args.results = args.runs
    if args.rounds < 1 or not all(0 < t <= 1 for t in args.thresholds):
        raise SystemExit("bench-pseudo: --rounds must be 1 or more and each threshold in (0, 1]")
    unknown = [m for m in args.members if m not in bench_recipes.ROWS or not bench_recipes.preset_of(m)]
    if unknown:
        raise SystemExit(f"bench-pseudo: members must be preset rows of bench-recipes; not: {', '.join(unknown)}")
    global CACHE
    students = args.students or list(args.members)
    if stray := [m for m in students if m not in args.members]:
        raise SystemExit(f"bench-pseudo: students must be members; not: {', '.join(stray)}")
    bench_recipes.LEDGER = args.ledger
    CACHE = args.runs / "cache"
    data, runs = args.runs / "data", args.runs
    prepare(data)
    for m in args.members:  # the teachers: bench-cpu-ensemble's runs of this seed, trained if need be
        run_row(m, data, runs, args.seed, need_folder=True)
        if run_tta(m, data, runs, args.seed) is None:
            raise SystemExit(f"bench-pseudo: {runs / run_name(m, args.seed)} has no checkpoint of every fold")
    out = args.results / f"pseudo-seed{args.seed}.json"
    table = json.loads(out.read_text()) if out.is_file() else {}
    if table.get("members", list(args.members)) != list(args.members):
        raise SystemExit(f"bench-pseudo: {out} holds members {table['members']}; name the same --members")
    table.update(seed=args.seed, members=list(args.members))
    table["round0"] = scores(args.members, runs, args.seed, fit(args.members, data, runs, args.seed))
    table.setdefault("thresholds", {})
    subset = "" if students == list(args.members) else f" students {' '.join(students)}"

    def config(threshold: float, r: int) -> str:
        """Round r's folders: round 1 is labelled by every teacher, whichever members retrain (one folder,
        its students added up across runs); later rounds by the students, so they name a subset."""
        return f"{threshold:g}" + (" soft" if args.soft else "") + (subset if r >= 2 else "")

    for threshold in args.thresholds:
        for r in range(1, args.rounds + 1):
            teachers = student_runs(runs, args.seed, config(threshold, r - 1), r - 1)
            here = student_runs(runs, args.seed, config(threshold, r), r)
            labellers = list(args.members) if r == 1 else students  # round 1: the teachers; then the students
            folder = pseudo_folder(args.seed, config(threshold, r), r)
            files, confident = label_round(labellers, data, teachers, args.seed, threshold, folder, bool(args.soft))
            made = hashes(files)
            key = str(r) + (subset if r >= 2 else "")
            for m in students:  # each student's figures are kept as soon as it is scored
                train_students([m], data, here, args.seed, folder, made)
                scored = students_scored(list(args.members), here, args.seed, made)
                fitted = fit(scored, data, here, args.seed) if len(scored) > 1 and m == students[-1] else None
                table["thresholds"].setdefault(config(threshold, 1), {})[key] = {
                    "rows": scores(scored, here, args.seed, fitted),
                    "train_seconds": seconds(scored, here, args.seed),
                    "confident": confident,  # each fold's share of labelled pixels
                    "commit": bench_recipes.commit(here, run_name(students[0], args.seed)),
                }
                write_json(out, table)
    base = table["round0"]["ensemble TTA, fitted"]["miou_per_image"]
    print(f"\nwoosong, 3 date folds, each fold's photos pseudo-labelled by its teachers; seed {args.seed}")
    print(f"baseline: round 0 (the teachers), ensemble TTA fitted, per-image {base:.4f}")
    print(f"{'threshold':<10} {'round':<6} {'what':<32} {'dataset':>8} {'per-img':>8} {'3-class':>8} {'d per-img':>10}")
    listed = [("", "0", table["round0"])] + [
        (t, r, v["rows"]) for t, by_round in table["thresholds"].items() for r, v in by_round.items()
    ]
    for t, r, rows in listed:
        for what, f in rows.items():
            present = f"{f['present']:8.4f}" if "present" in f else f"{'':>8}"
            print(
                f"{t:<10} {r:<6} {what:<32} {f['miou']:8.4f} {f['miou_per_image']:8.4f} {present}"
                f" {f['miou_per_image'] - base:+10.4f}"
            )
    for t, by_round in table["thresholds"].items():
        for r, v in by_round.items():
            best = max(f["miou_per_image"] for what, f in v["rows"].items() if "TTA" in what)
            print(f"pseudo_t{slug(t).replace('.', '')}_round{slug(r)}_gain={best - base:+.4f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
