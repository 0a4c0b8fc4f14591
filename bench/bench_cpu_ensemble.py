"""bench-cpu-ensemble: the CPU ensemble out of fold. The two CPU presets (cpu-lite, FPN; and
cpu-lite-deeplab, DeepLabV3Plus; their bench-recipes rows) on the woosong photos' 3 date folds, each
plain and with test-time augmentation (flip + scales, the config's tta block), then the two merged with
equal and with fitted weights (make fit-ensemble, searched on the out-of-fold images only), and the
merge run through make ensemble to a CSV (each fold's test images inferred with TTA first). Every step
is an ordinary make target; finished steps are read, not run again (rows ~40-50 min each on 2 cores,
TTA ~6 min a model). Figures: dataset mIoU, per-image mIoU and the mean IoU of the 3 classes present,
each single model plain being the baseline. The members' figures go into bench-recipes' ledger
(bench/recipes-ledger.json) like any row's; the whole table, merges and fitted weights included, into
bench/results/cpu-ensemble-seed<N>.json (in git), which docs/results.md's figures are read from.
CANDIDATES=<preset> (a bench-recipes row) judges a third member the way the issue asks: by the gain its
fitted TTA merge with the two brings over the two's, not by its own score (kept under "candidates").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import bench_recipes
from bench_recipes import (
    DEFAULT_LEDGER,
    FIRST_SEED,
    PRESENT,
    make,
    prepare,
    present_mean,
    row_steps,
    run_name,
    run_row,
    run_tta,
    views,
)

from common import ROOT
from trashseg.atomic import write_json

MEMBERS = ("cpu-lite", "cpu-lite-deeplab")


def figures(result: dict) -> tuple[float, float, float]:
    return result["miou"], result["miou_per_image"], present_mean(result)


def present_of(per_class: list) -> float:
    """The mean IoU of the present classes from a per-class list in class order (fit-ensemble's)."""
    from trashseg.data.classes import CLASSES

    return sum(per_class[CLASSES.index(c)] for c in PRESENT) / len(PRESENT)


def merge_rows(fitted: dict) -> dict[str, dict]:
    """A fit-ensemble result's equal and fitted merges as rows: figures and weights, and for the fitted
    merge (the only one whose per-class IoU fit-ensemble keeps) the mean IoU of the present classes."""
    rows = {
        what: {"miou": r["oof_miou"], "miou_per_image": r["oof_miou_per_image"], "weights": r["weights"]}
        for what, r in (("equal", fitted["equal_mean"]), ("fitted", fitted["fitted"]))
    }
    rows["fitted"]["present_mean"] = present_of(fitted["fitted_per_class_iou"])
    return rows


def judge(name: str, models: str, data: Path, runs: Path, seed: int, cache: str) -> dict:
    """A candidate third member: its own row plain and with TTA, then the fitted TTA merge of the two
    members with it (fit-ensemble on the out-of-fold images). Run before the two's own fits, whose
    weights file bench-pseudo reads, so that the last file written is theirs."""
    plain = run_row(name, data, runs, seed, need_folder=True)
    scored = run_tta(name, data, runs, seed)
    if scored is None:
        raise SystemExit(f"bench-cpu-ensemble: {runs / run_name(name, seed)} has no checkpoint of every fold")
    make("fit-ensemble", MODELS=f"{models} {run_name(name, seed)}", DATA_DIR=data, RUNS=runs, TTA=1, ARGS=cache)
    merges = merge_rows(json.loads((runs / "ensemble_weights_tta.json").read_text()))
    return {
        "plain": {"miou": plain["miou"], "miou_per_image": plain["miou_per_image"]},
        "TTA": {"miou": scored["miou"], "miou_per_image": scored["miou_per_image"]},
        **{f"ensemble TTA, {what}": r for what, r in merges.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=FIRST_SEED)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-recipes")
    parser.add_argument(
        "--ledger", type=Path, default=DEFAULT_LEDGER, help="the members' scored runs, as bench-recipes keeps them"
    )
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results", help="where the table is kept")
    parser.add_argument(
        "--candidates",
        nargs="*",
        default=[],
        help="presets judged as a third member: the out-of-fold gain of their fitted TTA merge with the two",
    )
    args = parser.parse_args()
    for name in args.candidates:  # before any work: a typo costs nothing
        if name in MEMBERS or name not in bench_recipes.ROWS:
            others = sorted(set(bench_recipes.ROWS) - set(MEMBERS))
            raise SystemExit(
                f"bench-cpu-ensemble: CANDIDATES={name}: not a row beside the members; rows: {' '.join(others)}"
            )
    bench_recipes.LEDGER = args.ledger  # the members are bench-recipes rows: their figures go to its ledger
    data, runs = args.runs / "data", args.runs
    prepare(data)
    rows, weights_of = {}, {}
    for name in MEMBERS:
        rows[f"{name} plain"] = figures(run_row(name, data, runs, args.seed, need_folder=True))
    for name in MEMBERS:
        scored = run_tta(name, data, runs, args.seed)
        if scored is None:  # the merge below needs each fold's checkpoint as well
            raise SystemExit(f"bench-cpu-ensemble: {runs / run_name(name, args.seed)} has no checkpoint of every fold")
        rows[f"{name} TTA"] = figures(scored)
    models = " ".join(run_name(m, args.seed) for m in MEMBERS)
    cache = f"--set data.cache_dir={runs / 'cache'}"
    judged = {name: judge(name, models, data, runs, args.seed, cache) for name in args.candidates}
    for tta, variant in ((0, "plain"), (1, "TTA")):
        make("fit-ensemble", MODELS=models, DATA_DIR=data, RUNS=runs, TTA=tta, ARGS=cache)
        fitted = json.loads((runs / f"ensemble_weights{'_tta' if tta else ''}.json").read_text())
        for what, r in merge_rows(fitted).items():
            weights = "/".join(f"{w:.2f}" for w in r["weights"].values())
            weights_of[f"ensemble {variant}, {what}"] = r["weights"]
            rows[f"ensemble {variant}, {what} ({weights})"] = (
                r["miou"],
                r["miou_per_image"],
                r.get("present_mean", float("nan")),
            )
    from trashseg.runs import Layout

    tta_files = Layout(runs, post="_tta")  # the kit's own path of a TTA probability file
    for name in MEMBERS:  # the rows inferred their validation images only: the merge needs each fold's test images
        _, infer, common, row_args = row_steps(name, data, runs, args.seed)
        run = run_name(name, args.seed)
        for fold in range(3):
            test, valid = tta_files.probs(run, fold, "test"), tta_files.probs(run, fold, "valid")
            if not test.is_file() or views(test) != views(valid):  # absent, or left by another tta block
                make(infer, **common, FOLD=fold, SPLITS="test", TTA=1, ARGS=row_args)
    make(
        "ensemble",
        MODELS=models,
        DATA_DIR=data,
        RUNS=runs,
        TTA=1,
        SUBMISSIONS=runs / "submissions",
        NAME="cpu-ensemble",
    )
    base = rows[f"{MEMBERS[0]} plain"][1]
    print(f"\nwoosong, 3 date folds, 820 photos out of fold, seed {args.seed}; baseline: {MEMBERS[0]} plain")
    print(f"{'what':<48} {'dataset':>8} {'per-img':>8} {'3-class':>8} {'d per-img':>10}")
    for what, (dataset, per_image, present) in rows.items():
        print(f"{what:<48} {dataset:8.4f} {per_image:8.4f} {present:8.4f} {per_image - base:+10.4f}")
    for what, (_, per_image, _) in rows.items():
        key = what.split(" (")[0].replace(" ", "_").replace(",", "").replace("-", "_")
        print(f"{key}_miou_per_image={per_image:.4f}")
    print(f"best_gain_over_{MEMBERS[0].replace('-', '_')}={max(r[1] for r in rows.values()) - base:+.4f}")
    two = rows[next(w for w in rows if w.startswith("ensemble TTA, fitted"))][1]
    for name, j in judged.items():
        j["gain_over_the_two"] = j["ensemble TTA, fitted"]["miou_per_image"] - two
        print(f"\ncandidate {name}: a third member, TTA, against the two's fitted TTA merge ({two:.4f} per image)")
        for what in ("plain", "TTA", "ensemble TTA, equal", "ensemble TTA, fitted"):
            r = j[what]
            weights = f" ({'/'.join(f'{w:.2f}' for w in r['weights'].values())})" if "weights" in r else ""
            print(f"  {what + weights:<46} {r['miou']:8.4f} {r['miou_per_image']:8.4f}")
        print(f"candidate_{name.replace('-', '_')}_gain_over_the_two={j['gain_over_the_two']:+.4f}")
    table = {
        "seed": args.seed,
        "members": list(MEMBERS),
        "rows": {
            what.split(" (")[0]: {
                "miou": dataset,
                "miou_per_image": per_image,
                "present_mean": None if present != present else present,  # NaN: not kept for equal weights
                **({"weights": weights_of[what.split(" (")[0]]} if what.split(" (")[0] in weights_of else {}),
            }
            for what, (dataset, per_image, present) in rows.items()
        },
        **({"candidates": judged} if judged else {}),
    }
    out = args.results / f"cpu-ensemble-seed{args.seed}.json"
    write_json(out, table)
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
