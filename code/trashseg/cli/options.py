"""The kit's variables, in one table: each is a command-line option of the verbs that use it
(``--fold 0``, what the Makefile passes for ``make train FOLD=0``) and a Make variable; make's own
spelling (``--FOLD=0``) is read too. What a variable sets in the configuration is said here and nowhere else, and
its value is checked here (switches 1/0, whole numbers) before any work starts."""

from __future__ import annotations

import argparse
import difflib
import os
import re
from dataclasses import dataclass

from trashseg.errors import TrashsegError

SWITCH_ON, SWITCH_OFF = ("1", "true", "yes"), ("0", "false", "no")


@dataclass(frozen=True)
class Var:
    name: str  # the Make spelling
    help: str
    kind: str = "text"  # text | count (a whole number) | switch (1/0) | words (a list: see words())
    default: str | None = None
    keys: tuple[str, ...] = ()  # config keys it sets (the value as YAML); see also settings_overrides
    choices: tuple[str, ...] = ()  # the values it may take (text kind), checked by check()

    @property
    def option(self) -> str:
        return "--" + self.name.lower().replace("_", "-")


VARS = {
    v.name: v
    for v in [
        # what a run is made of
        Var("MODEL", "a model folder's name (trashseg config list)"),
        Var(
            "MODELS",
            'runs by name: model folders or presets, e.g. "fpn cpu-lite" (default: every one with outputs)',
            "words",
        ),
        Var("EXP", "a preset configs/<name>.yaml, layered over the model its base: names; runs/<name>/"),
        # settings of a run (config keys)
        Var("DATA_DIR", "the data folder (train_all.json, test.json, batch_*/)", keys=("data.data_dir",)),
        Var("FOLD", "the fold k (train_data{k}.json / valid_data{k}.json)", "count", keys=("train.fold",)),
        Var("RUNS", "the runs folder", keys=("train.runs_dir",)),
        Var("SEED", "random seed (training; folds)", "count", keys=("train.seed",)),
        Var("EPOCHS", "training epochs", "count", keys=("train.epochs",)),
        Var("BATCH", "batch size for training and evaluation", "count", keys=("train.batch_size", "eval.batch_size")),
        Var("IMG_SIZE", "training input size in px", "count", keys=("train.img_size",)),
        Var("ENCODER", "SMP encoder or tu-<timm model>", keys=("model.encoder",)),
        Var(
            "ENCODER_WEIGHTS",
            "the encoder's starting weights: imagenet | offline | none | path/to/file.pth",
            keys=("model.weights",),
        ),
        Var("DEVICE", "auto | cpu | cuda | cuda:N", keys=("train.device",)),
        Var("WORKERS", "data loader processes", "count", keys=("data.num_workers",)),
        Var("RESUME", "1: go on from the run's last.pt", "switch", keys=("train.resume",)),
        Var("FORCE", "1: train over a run folder that holds a run (deleting it first)", "switch"),
        Var("TRAIN_ALL", "1: train on all of train_all.json -> <run>/all/", "switch", keys=("train.train_all",)),
        Var("TTA", "1: flip/scale test-time augmentation", "switch", keys=("tta.enabled",)),
        Var("CRF", "1: DenseCRF post-processing (make setup-crf)", "switch", keys=("crf.enabled",)),
        Var("PSEUDO", "1: train on train_data_pseudo{k}.json (make pseudo)", "switch"),
        Var("LOGGER", "tensorboard | wandb | tensorboard,wandb | none"),
        # several GPUs and machines
        Var("GPUS", "GPUs on this machine: >1 runs torch's launcher, one process per GPU (DDP)", "count", "1"),
        Var("NNODES", "machines in one DDP run", "count", "1"),
        Var("NODE_RANK", "this machine's rank, 0..NNODES-1", "count", "0"),
        Var("MASTER_ADDR", "address of node 0", default="127.0.0.1"),
        Var("MASTER_PORT", "port on node 0", "count", "29500"),
        # stages
        Var("K", "number of folds", "count", "5"),
        Var("GROUP", "regex on file_name: images with the same match share a fold (folds)"),
        Var("SPLITS", "test and/or valid (infer, import-probs)", "words"),
        Var("JSON", "an annotated COCO file (eval; import-probs: the images in order)"),
        Var("OUT", "where to write (eval result, predict overlays, weights file)"),
        Var("RUN", "a run folder, e.g. runs/fpn/fold0 (report, predict)"),
        Var("IMAGES", "a folder of photos (predict)"),
        Var("N", "how many validation images the report's gallery shows, worst first (default: every one)", "count"),
        Var("SORT", "the runs table's column to sort by, best first (runs)", default="miou"),
        Var("CSV", "1: the runs table as CSV, for scripts (runs)", "switch"),
        Var("HTML", "1: also write RUNS/index.html, each run linked to its report (runs)", "switch"),
        Var("SOUP", "epochs (each fold's kept epochs) | folds (the folds' best.pt -> all)", default="epochs"),
        Var("NAME", "the submission's name: SUBMISSIONS/NAME.csv (kaggle-bundle: bundles/NAME/)", default="ensemble"),
        Var("SUBMISSIONS", "the submissions folder", default="submissions"),
        Var("PROBS", "probability files to merge instead of MODELS' folds", "words"),
        Var("ENSEMBLE_WEIGHTS", "one ensemble weight per model or file (default: fitted, else equal)", "words"),
        Var(
            "OBJECTIVE",
            "what fit-ensemble's weights maximise: dataset (the competition's mIoU) | per-image (the mean of images')",
            default="dataset",
            choices=("dataset", "per-image"),
        ),
        Var("MIXED", "1: merge files of different post-processing", "switch"),
        Var("FILES", "CSV files to vote", "words"),
        Var("PRIORITY", "class names or ids: the vote's tie-break order", "words"),
        Var("SRC", "another toolkit's folder of per-image .npy/.png (import-probs)"),
        Var("KIND", "auto | probs | logits (import-probs)", default="auto"),
        Var("CLASSES", "the imported outputs' class names in channel order (commas: names hold spaces)", "words"),
        Var("FILE", "a submission CSV (validate-submission, submit)"),
        Var("COMPETITION", "the Kaggle competition's slug"),
        Var("MESSAGE", "the Kaggle submission's (or dataset version's) message", default="trashseg submission"),
        # a code competition's bundle (kaggle-bundle, kaggle-bundle-check, kaggle-upload)
        Var("BUNDLES", "the bundles folder (kaggle-bundle writes BUNDLES/NAME/)", default="bundles"),
        Var("KAGGLE_DATASET", "the bundle's Kaggle dataset, owner/slug (default: your Kaggle user/NAME)"),
        Var("KAGGLE_TITLE", "the bundle dataset's title, 6-50 characters (default: trashseg NAME)"),
        Var("KAGGLE_PYTHON", "the Python of Kaggle's image, 3.N: the bundle's wheels are for it", default="3.11"),
        Var("INCLUDE_TORCH", "1: the bundle carries torch and torchvision too (Kaggle's image has them)", "switch"),
        Var("HALF", "the bundle's checkpoints in fp16 (default 1; 0: as trained)", "switch"),
        Var("CHECK_IN", "container (the stand-in image, --network none) | venv (a fresh venv)", default="container"),
        Var("DRY_RUN", "1: print what would be done (kaggle-upload: sent; pipeline: its stages), do nothing", "switch"),
        Var("ROUNDS", "pseudo-label rounds after the first ensemble (pipeline)", "count", "1"),
        Var("TRIALS", "finished trials wanted (sweep)", "count", "20"),
        Var("SPACE", "the sweep's search space YAML"),
        Var("STUDY", "the sweep's study name (default: <model>-fold<k>)"),
        Var("STORAGE", "the study's database URL (default: SQLite under RUNS/sweeps); kept off the command line"),
        Var("PORT", "TensorBoard's port", "count", "6006"),
    ]
}
MAKE_SPELLING = re.compile(r"^--([A-Z][A-Z0-9_]*)(=.*)?$", re.S)


def add(parser: argparse.ArgumentParser, *names: str) -> None:
    """The variables ``names`` as options of ``parser`` (dest = the Make spelling)."""
    for name in names:
        v = VARS[name]
        default = f" (default {v.default})" if v.default is not None else ""
        if v.kind == "switch":
            parser.add_argument(v.option, dest=name, nargs="?", const="1", metavar="1|0", help=v.help)
        else:
            parser.add_argument(v.option, dest=name, metavar=name, default=v.default, help=v.help + default)


def add_sets(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config key, e.g. --set train.epochs=3 (repeatable; `trashseg config show` lists them)",
    )


def from_make(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """``--FOLD=0`` (make's spelling) as ``--fold=0``; a Make variable this verb does not use is left
    out, as make ignores a variable its target does not read."""
    known = set(parser._option_string_actions)
    out = []
    for arg in argv:
        m = MAKE_SPELLING.match(arg)
        if m and m.group(1) in VARS:
            option = VARS[m.group(1)].option
            if option in known:
                out.append(option + (m.group(2) or ""))
            continue
        out.append(arg)
    return out


def switch(args: argparse.Namespace, name: str) -> bool:
    value = getattr(args, name, None)
    if value is None or value == "":
        return False
    if str(value).lower() in SWITCH_ON:
        return True
    if str(value).lower() in SWITCH_OFF:
        return False
    raise TrashsegError(f"{name}={value}: use 1 (on) or 0 (off)")


def count(args: argparse.Namespace, name: str, minimum: int = 0) -> int | None:
    value = getattr(args, name, None)
    if value is None or value == "":
        return None
    if re.fullmatch(r"-\d+", str(value).strip()):
        raise TrashsegError(f"{name}={value}: must be {minimum} or more")
    if not re.fullmatch(r"\d+", str(value)):
        raise TrashsegError(f"{name}={value}: must be a whole number")
    if int(value) < minimum:
        raise TrashsegError(f"{name}={value}: must be {minimum} or more")
    return int(value)


def data_folder(args: argparse.Namespace):
    """DATA_DIR, or the default data folder, for verbs that read test.json without the settings."""
    from pathlib import Path

    return Path(getattr(args, "DATA_DIR", None) or "data")


def words(args: argparse.Namespace, name: str) -> list[str]:
    """A list variable, one format everywhere: items separated by commas, or by spaces when there is no
    comma ("fpn deeplab", "fpn,deeplab"; class names, which hold spaces: "Background,General trash")."""
    text = str(getattr(args, name, None) or "")
    return [w.strip() for w in text.split(",") if w.strip()] if "," in text else text.split()


def check(args: argparse.Namespace) -> None:
    """Every switch, count and choice given, checked at once (before any work): all the bad ones in one message."""
    problems = []
    for name, v in VARS.items():
        if hasattr(args, name):
            try:
                if v.kind == "switch":
                    switch(args, name)
                elif v.kind == "count":
                    count(args, name)
                elif v.choices and getattr(args, name) not in (None, "", *v.choices):
                    raise TrashsegError(f"{name}={getattr(args, name)}: one of {' | '.join(v.choices)}")
            except TrashsegError as exc:
                problems.append(str(exc))
    if problems:
        raise TrashsegError("; ".join(problems))


def settings_overrides(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(source, 'key=value') for each variable given that sets config keys, then each --set."""
    out = []
    for name, v in VARS.items():
        value = getattr(args, name, None)
        if value is None or value == "" or not (v.keys or name in ("PSEUDO", "LOGGER")):
            continue
        source = f"{name}={value}"
        if v.kind == "switch":  # given: on or off, so TTA=0 turns off what a preset turns on
            on = switch(args, name)
            out += [(source, f"{key}={'true' if on else 'false'}") for key in v.keys]
            if on and name == "PSEUDO":
                out.append((source, "data.train_json=train_data_pseudo{fold}.json"))
            continue
        if name == "LOGGER":
            loggers = [x for x in str(value).replace(",", " ").split() if x != "none"]
            out.append((source, f"tracking.loggers=[{','.join(loggers)}]"))
        out += [(source, f"{key}={value}") for key in v.keys]
    return out + [("--set", item) for item in getattr(args, "overrides", [])]


def config(
    args: argparse.Namespace, models: bool = True, explain: dict | None = None, trained: list[str] | None = None
) -> dict:
    """The validated settings of the run that MODEL/EXP and the variables given describe (a stage
    that builds no model, ``models=False``, takes the package defaults and the variables). ``trained``
    (with ``models=False``): the runs a merge stage reads; when TTA is not given and all of them were
    trained with TTA on (their preset's default, in their config.yaml), the stage reads their TTA variant."""
    from trashseg import registry
    from trashseg.config import load_config

    check(args)
    overrides = settings_overrides(args)
    if not models:
        cfg = load_config(None, overrides, models=False, explain=explain)
        if trained and getattr(args, "TTA", None) in (None, ""):  # loaded once; the runs folder is its own
            from trashseg.runs import trained_tta
            from trashseg.settings import changed

            if trained_tta(cfg.train.runs_dir, trained):
                cfg = changed(cfg, {"tta.enabled": True})
                if explain is not None:
                    explain["tta.enabled"] = "their runs' tta.enabled (TTA=0: plain)"
        return cfg
    target = registry.target(getattr(args, "MODEL", None), getattr(args, "EXP", None))
    preset = target.preset.path if target.preset else None
    return load_config(target.model.config, overrides, preset=preset, explain=explain)


RUN_SETTINGS = [
    *("DATA_DIR", "FOLD", "RUNS", "SEED", "EPOCHS", "BATCH", "IMG_SIZE", "ENCODER", "ENCODER_WEIGHTS", "DEVICE"),
    "WORKERS",
    *("RESUME", "TRAIN_ALL", "TTA", "CRF", "PSEUDO", "LOGGER"),
]
STAGE_SETTINGS = ("DATA_DIR", "RUNS", "TTA", "CRF", "FOLD")


def as_argv(args: argparse.Namespace, names: list[str], sets: bool = True) -> list[str]:
    """The variables ``names`` given and (``sets``) every --set, as options again (for a verb run by a verb)."""
    out = [f"{VARS[n].option}={getattr(args, n)}" for n in names if getattr(args, n, None) not in (None, "")]
    return out + ([f"--set={item}" for item in getattr(args, "overrides", [])] if sets else [])


def parser(verb: str, description: str, names: tuple[str, ...] | list[str] = (), sets: bool = False):
    """A verb's parser: its description, its variables as options and, for a verb that runs with
    settings, ``--set``."""
    p = argparse.ArgumentParser(prog=f"trashseg {verb}", description=description, allow_abbrev=False)
    add(p, *names)
    if sets:
        add_sets(p)
    return p


# the Makefile exports it: errors then name a variable as make spells it (FOLD=1), not as an option
VIA_MAKE = "TRASHSEG_VIA_MAKE"
# variables renamed in this release: still understood well enough to name the new spelling
RENAMED = {"WEIGHTS": ("ENCODER_WEIGHTS", "ENSEMBLE_WEIGHTS"), "WEIGHTS_ENSEMBLE": ("ENSEMBLE_WEIGHTS",)}


def _given(name: str, value: str | None, make: bool) -> str:
    """How the user wrote a variable: ``FOLD=1`` through make, ``--fold 1`` on the command line."""
    if make:
        return f"{name}={value if value is not None else ''}"
    return VARS[name].option + (f" {value}" if value is not None else "") if name in VARS else name


def check_names(p: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """Every option of ``argv`` is one of the verb's, given once (or twice with one value): an unknown
    name (with the nearest one), a renamed one (with its new name, so `make ensemble WEIGHTS=...` is not
    taken for the encoder's) and a target's own variable given again with another value (make
    train-fpn MODEL=deeplab) are each a problem to report, all in one message. (Another stage's
    variable, DEVICE for ensemble, was left out before: own_options.)"""
    make = os.environ.get(VIA_MAKE) == "1"
    verb = p.prog.removeprefix("trashseg ")
    known = p._option_string_actions
    taken = {a.dest for a in p._actions if a.dest in VARS}
    problems: list[str] = []
    seen: dict[str, str | None] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("--") or arg == "--":
            continue
        option, eq, value = arg.partition("=")
        action = known.get(option)
        if action is None:
            if not eq and i < len(argv) and not argv[i].startswith("-"):
                value, i = argv[i], i + 1  # the value of the unknown option, not a word of its own
            if option == "--set":
                problems.append(
                    f"--set {value}: trashseg {verb} takes no settings (ARGS='--set ...' is for the stages)"
                )
            elif option[2:].upper().replace("-", "_") in RENAMED:
                old = option[2:].upper().replace("-", "_")
                new = " or ".join(f"{n if make else VARS[n].option} ({VARS[n].help})" for n in RENAMED[old])
                shown = f"{old}={value if value is not None else ''}" if make else option
                problems.append(f"{shown}: renamed {new}")
            else:
                name = option[2:].upper().replace("-", "_") if make else option
                pool = sorted(taken) if make else sorted(o for o in known if o.startswith("--"))
                near = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
                mean = (
                    f"; did you mean {near[0]}?"
                    if near
                    else f" ({'make help' if make else verb + ' --help'} lists them)"
                )
                what = "variable" if make else f"option of trashseg {verb}"
                problems.append(f"{name}={value if make else ''}".rstrip("=") + f": no such {what}{mean}")
            continue
        if action.nargs == 0:
            value = None
        elif not eq:
            takes_next = i < len(argv) and (action.nargs != "?" or not argv[i].startswith("-"))
            value, i = (argv[i], i + 1) if takes_next else (None, i)
        if action.dest not in VARS:
            continue
        if action.dest in seen and seen[action.dest] != value:
            name, first = action.dest, seen[action.dest]
            if make and name == "MODEL":  # the target's own (train-fpn: --model fpn after the user's variables)
                problems.append(
                    f"{name}={first}: make {verb}-{value} sets {name}={value} itself; "
                    f"drop {name}=, or run make {verb} {name}={first}"
                )
            elif make:
                problems.append(f"{name}={first} and {name}={value}: given twice (a variable and ARGS?); give it once")
            else:
                problems.append(f"{option} given twice ({first} and {value}): give it once")
        seen.setdefault(action.dest, value)
    return problems


def parse(p: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The verb's options from ``argv``: a bad name and a bad value are reported together, in one message."""
    argv = own_options(from_make(argv, p), p)
    problems = check_names(p, argv)
    if problems:
        args, _ = p.parse_known_args(argv)
        try:
            check(args)
        except TrashsegError as exc:
            problems.append(str(exc))
        raise TrashsegError("; ".join(problems))
    return p.parse_args(argv)


def own_options(argv: list[str], p: argparse.ArgumentParser) -> list[str]:
    """``argv`` less the kit variables this verb does not take (each with its value): another stage's
    variable changes nothing here, as make ignores a variable its target does not read."""
    known = p._option_string_actions
    options = {v.option for v in VARS.values()}
    out, i = [], 0
    while i < len(argv):
        option, eq, _ = argv[i].partition("=")
        if option in options and option not in known:
            i += 1 if eq or i + 1 >= len(argv) or argv[i + 1].startswith("-") else 2
            continue
        out.append(argv[i])
        i += 1
    return out
