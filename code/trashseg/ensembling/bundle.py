"""`make kaggle-bundle`: what `make ensemble` merges, packed as a Kaggle dataset that a code
competition's notebook runs with the network off. Teams rebuild this by hand for every competition and
fail offline: a wheel missing, a model reaching for a hub, other TTA views or weights than the ones
validated. Here the bundle is made from the very files `make ensemble` would merge (each member's run,
its TTA views and its weight), so the notebook can only run what was validated:

    bundles/<NAME>/dataset-metadata.json   Kaggle's dataset metadata (title, owner/slug id)
    bundles/<NAME>/bundle.json             the members: run, weight, views; the kit and Python it was made for
    bundles/<NAME>/requirements.txt        exact pins of the kit and every wheel below
    bundles/<NAME>/wheels/                 the kit as a wheel + every runtime dependency Kaggle's image lacks
    bundles/<NAME>/runs/<model>/<fold>/    best.pt (model weights only: EMA when trained with it; fp16 by
                                           default) and config.yaml
    bundles/<NAME>/inference.ipynb         installs from wheels/ (no index), then `trashseg bundle-infer`

The notebook holds no pipeline code: `trashseg bundle-infer` (ensembling/bundle_infer.py) reads
bundle.json and runs the kit's own predictor and merge."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from trashseg.atomic import write_json
from trashseg.ensembling.ensemble import (
    check_manifests,
    check_same_post_processing,
    merge_inputs,
    normalise_weights,
    weights_from_file,
    weights_source,
)
from trashseg.errors import TrashsegError
from trashseg.hashing import file_sha256
from trashseg.inference.probs import ProbsReader, manifest_path
from trashseg.runs import Layout, post_flags

FORMAT = 1
# torch and torchvision come with Kaggle's GPU image (and with the check's stand-in image); so does what
# they require, except numpy and pillow, which the kit pins and the bundle carries
IMAGE_CARRIES = ("torch", "torchvision")
KIT_PINS_TOO = ("numpy", "pillow")
# what the kit's inference imports (predictor, data, models, merge, CSV); their requirements follow
INFERENCE_ROOTS = (
    "segmentation-models-pytorch",
    "timm",
    "albumentations",
    "pycocotools",
    "pyyaml",
    "pydantic",
    "tqdm",
    "numpy",
    "pillow",
)
# the notebook's own view of Kaggle's folders (KAGGLE_ROOT moves them, for the offline test)
KAGGLE_ROOT = "/kaggle"
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$")
PLACEHOLDER_OWNER = "your-kaggle-username"
# manylinux tags a Kaggle image (glibc 2.35) runs, newest first, with the legacy names of 2_17, 2_12 and 2_5
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(35, 4, -1)] + [
    *("manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "any"),
]


@dataclass(frozen=True)
class Member:
    """One file `make ensemble` would merge: its run folder, fold folder name, weight and views."""

    probs: Path
    run: Path
    model: str
    fold: str
    weight: float
    views: dict  # resolution, tta, crf, classes: what made the validated probabilities (manifest)


def members(
    layout: Layout,
    models: list[str] | None,
    probs: list[Path],
    weights: list[float] | None,
    weights_file: Path | None,
    use_fitted: bool,
) -> tuple[list[Member], str, Path | None]:
    """The files `make ensemble` with the same variables would merge, as members, where their weights
    come from and the fitted weights' file when they are fitted; refused when a member's probabilities
    were not made from the best.pt beside them."""
    files, weights_file = merge_inputs(layout, probs, models, weights_file, use_fitted=use_fitted and not weights)
    if not files:
        raise TrashsegError("nothing to bundle: give MODELS= (runs with test probabilities)")
    source = weights_source(weights, weights_file)
    readers = [ProbsReader(f) for f in files]
    try:
        check_manifests(readers, None)
        check_same_post_processing(readers)
        if weights is None and weights_file is not None:
            weights = weights_from_file(weights_file, readers)
        w = normalise_weights(weights, len(readers))
        manifests = [r.manifest for r in readers]
    finally:
        for r in readers:
            r.close()
    out = []
    for path, manifest, weight in zip(files, manifests, w):
        run = path.parent
        if manifest.get("crf"):
            raise TrashsegError(
                f"{path}: CRF probabilities cannot be bundled (pydensecrf2 builds from source, which a Kaggle "
                "notebook offline cannot); bundle the runs without CRF=1"
            )
        checkpoint = run / "best.pt"
        if not checkpoint.is_file() or manifest.get("checkpoint_sha256") != file_sha256(checkpoint):
            raise TrashsegError(
                f"{path}: made from another checkpoint than {checkpoint} (it changed since); run `make infer "
                f"{infer_flags(run)}{post_flags(layout.post)} SPLITS=test` for it, then bundle again"
            )
        views = {k: manifest.get(k) for k in ("resolution", "tta", "crf", "classes")}
        out.append(Member(path, run, run.parent.name, run.name, float(weight), views))
    return out, source, (weights_file if source.startswith("fitted") else None)


def infer_flags(run: Path) -> str:
    """How `make infer` names the run folder ``run`` (runs/<model or preset>/<fold>)."""
    from trashseg.runs import ALL, make_target

    fold = run.name
    return f"{make_target(run.parent.name)} {'TRAIN_ALL=1' if fold == ALL else 'FOLD=' + fold.removeprefix('fold')}"


def dataset_id(given: str | None, name: str) -> str:
    """owner/slug: DATASET as given, else the Kaggle user the credentials name (never their key) and NAME."""
    if given:
        owner, _, slug = given.partition("/")
        if not owner or not SLUG.match(slug or ""):
            raise TrashsegError(
                f"KAGGLE_DATASET={given}: give owner/slug, the slug 3-50 lowercase letters, digits and hyphens"
            )
        return given
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    slug = slug if len(slug) >= 3 else f"trashseg-{slug}".strip("-")
    return f"{kaggle_user() or PLACEHOLDER_OWNER}/{slug[:50]}"


def kaggle_user() -> str | None:
    if os.environ.get("KAGGLE_USERNAME"):
        return os.environ["KAGGLE_USERNAME"]
    from trashseg.ensembling.kaggle import credential_files

    for path in credential_files():
        try:
            user = json.loads(path.read_text(encoding="utf-8")).get("username")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(user, str) and user:
            return user
    return None


# --- the wheels -------------------------------------------------------------------------------------


def installed_closure(roots: tuple[str, ...]) -> set[str]:
    """The installed distributions ``roots`` need, themselves included, following extras
    (torch's ``cuda-toolkit[cublas,...]``): their canonical names."""
    import importlib.metadata as md

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: dict[str, set[str]] = {}
    todo = [(canonicalize_name(r), frozenset()) for r in roots]
    while todo:
        name, extras = todo.pop()
        if name in seen and extras <= seen[name]:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            raise TrashsegError(f"{name}: not installed here (run `make setup`)") from None
        seen[name] = seen.get(name, set()) | set(extras)
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *seen[name])):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return set(seen)


def runtime_distributions(include_torch: bool) -> dict[str, str]:
    """name -> version of every distribution the kit's inference needs, as installed here (the pinned
    stack): the roots and all they require; without torch, torchvision and what they require, which
    the image carries (numpy and pillow stay: the kit pins them)."""
    import importlib.metadata as md

    wanted = installed_closure(INFERENCE_ROOTS)
    if include_torch:
        wanted |= installed_closure(IMAGE_CARRIES)
    else:
        wanted -= installed_closure(IMAGE_CARRIES) - set(KIT_PINS_TOO)
    return {name: md.version(name) for name in sorted(wanted)}


def wheel_tags(python: str) -> list[str]:
    if not re.fullmatch(r"3\.\d{1,2}", python):
        raise TrashsegError(f"KAGGLE_PYTHON={python}: give the image's Python as 3.N, e.g. 3.11")
    cp = "cp" + python.replace(".", "")
    return ["--implementation", "cp", "--python-version", python, "--abi", cp, "--abi", "abi3", "--abi", "none"]


def supported_tags(python: str) -> set:
    """The wheel tags CPython ``python`` (3.N) on x86_64 Linux installs, as pip would rank them."""
    from packaging import tags

    version = tuple(int(x) for x in python.split("."))
    cp = "cp" + python.replace(".", "")
    platforms = [p for p in PLATFORMS if p != "any"]
    return {
        *tags.cpython_tags(version, abis=[cp], platforms=platforms),
        *tags.compatible_tags(version, interpreter=cp, platforms=platforms),
    }


def cached_wheel(folder: Path, name: str, version: str, python: str) -> Path | None:
    """A wheel of name==version in ``folder`` that Python ``python`` on x86_64 Linux installs."""
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

    wanted = supported_tags(python)
    for path in sorted(folder.glob("*.whl")):
        try:
            wname, wversion, _, wtags = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        if wname == canonicalize_name(name) and str(wversion) == version and wtags & wanted:
            return path
    return None


def fetch_wheels(pins: dict[str, str], python: str, cache: Path) -> list[Path]:
    """A wheel of each pin for Kaggle's Python on x86_64 Linux, from ``cache`` when there, else from the
    package index (pip download, binary only, no dependencies: the pins are the whole set)."""
    python_tags = wheel_tags(python)  # KAGGLE_PYTHON checked before any lookup
    cache.mkdir(parents=True, exist_ok=True)
    missing = [f"{n}=={v}" for n, v in pins.items() if cached_wheel(cache, n, v, python) is None]
    if missing:
        print(f"kaggle-bundle: downloading {len(missing)} wheel(s) for Python {python} into {cache}", flush=True)
        platforms = [arg for tag in PLATFORMS for arg in ("--platform", tag)]
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        proc = subprocess.run(
            [*cmd, *python_tags, *platforms, "--dest", str(cache), *missing], capture_output=True, text=True
        )
        if proc.returncode != 0:
            errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")] or proc.stderr.splitlines()[-1:]
            raise TrashsegError(f"pip download of the bundle's wheels failed: {' '.join(errors)[:400]}")
    found = {n: cached_wheel(cache, n, v, python) for n, v in pins.items()}
    lost = [f"{n}=={pins[n]}" for n, p in found.items() if p is None]
    if lost:
        raise TrashsegError(f"no wheel for Python {python} on x86_64 Linux: {', '.join(lost)}")
    return [p for p in found.values() if p is not None]


def kit_wheel(dest: Path) -> Path:
    """The kit as a wheel, built from this checkout's package (copied, so the tree gets no build files)."""
    import trashseg

    root = Path(trashseg.__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise TrashsegError(f"{root}: no pyproject.toml: kaggle-bundle builds the kit's wheel from its checkout")
    with tempfile.TemporaryDirectory(prefix="trashseg-wheel-") as tmp:
        src = Path(tmp) / "src"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        shutil.copytree(root / "code" / "trashseg", src / "code" / "trashseg", ignore=ignore)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(root / name, src / name)
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                str(dest),
                src,
            ],
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0:
        raise TrashsegError(f"building the kit's wheel failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return next(dest.glob(f"trashseg-{trashseg.__version__}-*.whl"))


# --- the checkpoints and the notebook ---------------------------------------------------------------


def pack_checkpoint(src: Path, dest: Path, half: bool) -> None:
    """best.pt's model weights (what validation scored: the EMA copy when trained with one), config,
    epoch and metrics; floating tensors in fp16 with ``half``. Never an optimizer or training state."""
    import torch

    from trashseg.modeling.checkpoint import load_checkpoint

    state = load_checkpoint(src)
    model = {k: (v.half() if half and v.is_floating_point() else v) for k, v in state["model"].items()}
    keep = {"model": model, "config": state["config"], "epoch": state.get("epoch"), "metrics": state.get("metrics")}
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save(keep, dest)


def notebook(slug: str, competition: str) -> dict:
    """inference.ipynb: where the folders are, the offline install, then one kit command. No pipeline
    code of its own: what runs is `trashseg bundle-infer`, as tested."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    where = f"""import os
from pathlib import Path

KAGGLE = Path(os.environ.get("KAGGLE_ROOT", "{KAGGLE_ROOT}"))
BUNDLE = KAGGLE / "input" / "{slug}"          # this dataset, attached to the notebook
COMPETITION = KAGGLE / "input" / "{competition}"  # the competition's data: test.json is found in it
WORKING = KAGGLE / "working"                       # submission.csv goes here
os.environ["HF_HUB_OFFLINE"] = "1"                 # no model hub: the weights are in the bundle
os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1\""""
    install = """import subprocess
import sys


def run(*args):
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    print(proc.stdout[-4000:], proc.stderr[-4000:] if proc.returncode else "", sep="")
    if proc.returncode:
        said = " | ".join(line for line in proc.stderr.splitlines() if line.strip())[-600:]
        raise RuntimeError(f"{' '.join(args[:3])} failed (exit {proc.returncode}): {said}")


run("-m", "pip", "install", "--no-index", "--find-links", str(BUNDLE / "wheels"),
    "-r", str(BUNDLE / "requirements.txt"))"""
    infer = """run("-m", "trashseg", "bundle-infer", "--bundle", str(BUNDLE), "--data-dir", str(COMPETITION),
    "--out", str(WORKING / "submission.csv"), "--work", str(WORKING / "trashseg"))"""
    nb = new_notebook(
        cells=[
            new_markdown_cell(
                "# trashseg: offline inference\n\nMade by `make kaggle-bundle`. Installs the kit from this "
                "dataset's wheels (no index, no network), then infers every fold of every model with its own "
                "TTA views, merges them with the bundle's weights and writes and validates "
                "`/kaggle/working/submission.csv`. What it runs is in `bundle.json`."
            ),
            new_code_cell(where),
            new_code_cell(install),
            new_code_cell(infer),
            new_code_cell('print((WORKING / "submission.csv").read_text()[:300])'),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    nbformat.validate(nb)
    return nb


# --- the bundle -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    name: str
    dataset: str | None
    title: str | None
    competition: str
    python: str
    include_torch: bool
    half: bool
    wheel_cache: Path


def megabytes(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


# what a run folder says of itself, carried beside its checkpoint (small text files)
SIDECARS = ("config.yaml", "settings.txt", "metrics.csv", "run_record.json")


def build(found: list[Member], source: str, fitted: Path | None, opts: Options, out: Path) -> dict:
    """Write the bundle into a fresh folder beside ``out``, then put it in place of ``out``."""
    import nbformat

    import trashseg

    ident = dataset_id(opts.dataset, opts.name)
    title = opts.title or f"trashseg {opts.name}"
    if not 6 <= len(title) <= 50:
        raise TrashsegError(f"KAGGLE_TITLE={title!r}: Kaggle takes a title of 6 to 50 characters")
    if not SLUG.match(opts.competition):
        raise TrashsegError(f"COMPETITION={opts.competition}: a Kaggle competition slug (lowercase, digits, hyphens)")
    wheel_tags(opts.python)  # KAGGLE_PYTHON, before any work
    pins = runtime_distributions(opts.include_torch)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        wheels = tmp / "wheels"
        wheels.mkdir()
        kit = kit_wheel(wheels)
        for wheel in fetch_wheels(pins, opts.python, opts.wheel_cache):
            shutil.copy2(wheel, wheels / wheel.name)
        requirements = [f"trashseg=={trashseg.__version__}", *(f"{n}=={v}" for n, v in pins.items())]
        (tmp / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
        listed = []
        for m in found:
            rel = Path("runs") / m.model / m.fold
            pack_checkpoint(m.run / "best.pt", tmp / rel / "best.pt", opts.half)
            for name in SIDECARS:
                if (m.run / name).is_file():
                    shutil.copy2(m.run / name, tmp / rel / name)
            manifest = manifest_path(m.probs)  # what the validated test probabilities were made with
            if manifest.is_file():
                shutil.copy2(manifest, tmp / rel / f"validated-{manifest.name}")
            listed.append(
                {
                    "run": rel.as_posix(),
                    "model": m.model,
                    "fold": m.fold,
                    "weight": m.weight,
                    "views": m.views,
                    "checkpoint_sha256": file_sha256(tmp / rel / "best.pt"),
                    "made_from": {"probs": m.probs.name, "checkpoint_sha256": file_sha256(m.run / "best.pt")},
                }
            )
        if fitted is not None:
            shutil.copy2(fitted, tmp / "ensemble_weights.json")
        checkpoints = sorted((tmp / "runs").rglob("best.pt"))
        record = {
            "format": FORMAT,
            "kit": trashseg.__version__,
            "python": opts.python,
            "dataset": ident,
            "competition": opts.competition,
            "variant": found[0].probs.stem.removeprefix("probs_test"),
            "weights": source,
            "weights_file": "ensemble_weights.json" if fitted is not None else None,
            "precision": "fp16" if opts.half else "as trained",
            "torch_included": opts.include_torch,
            "members": listed,
            "wheels": sorted(p.name for p in wheels.glob("*.whl")),
        }
        write_json(tmp / "bundle.json", record)
        nbformat.write(nbformat.from_dict(notebook(ident.split("/")[1], opts.competition)), tmp / "inference.ipynb")
        write_json(tmp / "dataset-metadata.json", {"title": title, "id": ident, "licenses": [{"name": "CC0-1.0"}]})
        sizes = {
            "wheels": (len(list(wheels.glob("*.whl"))), megabytes(list(wheels.glob("*.whl")))),
            "checkpoints": (len(checkpoints), megabytes(checkpoints)),
            "all": (0, megabytes([p for p in tmp.rglob("*") if p.is_file()])),
        }
        record["sizes_mb"] = {k: round(v[1], 1) for k, v in sizes.items()}
        record["kit_wheel"] = kit.name
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return record


def replace_folder(new: Path, out: Path) -> None:
    """``new`` in place of ``out``: the old one is moved aside first and deleted once ``new`` is in place."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    new.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
