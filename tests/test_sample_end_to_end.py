"""The real make targets on the bundled sample of real photos, on the runs the session's sample fixture
builds once (3 folds split by recording date, FPN and DeepLabV3Plus, tiny budget): the path to a
validated CSV, then the winning moves judged by what they produce: out-of-fold scores (plain, TTA,
CRF) and their gain lines, fitted ensemble weights and the CSV they make, pseudo-labels and a training
on them with copy-paste, the report against `make eval`, predict. One module, so that `make test`
(pytest-xdist, --dist loadfile) runs them all on one worker and builds the sample runs once."""

import csv
import json
import re
import shutil

import cv2
import numpy as np
import pytest
import torch
import yaml

from helpers import TINY_ENCODER, kill_hook, make_process, run_make
from trashseg.data.classes import CLASSES
from trashseg.data.coco import load_coco
from trashseg.data.masks import MaskCache, read_mask
from trashseg.ensembling.submission import validate_submission
from trashseg.evaluation.metrics import confusion_matrix, mean_iou
from trashseg.runtime import precision
from trashseg.settings import Settings

pytestmark = pytest.mark.slow  # drives make targets / trains in subprocesses


def image_names(json_path):
    return [img["file_name"] for img in json.loads(json_path.read_text())["images"]]


def merged_labels(files, weights, row):
    """What the ensemble should write for one image: the weighted sum of the files' probabilities."""
    acc = None
    for path, w in zip(files, np.asarray(weights, dtype=np.float32)):
        p = np.load(path, mmap_mode="r")[row].astype(np.float32) * w
        acc = p if acc is None else acc + p
    return acc.argmax(0)


def csv_labels(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    return {r[0]: np.array(r[1].split(), dtype=np.int64).reshape(256, 256) for r in rows}


def read_image(path):
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.ndim == 3 and min(image.shape[:2]) >= 32, path
    return image


def test_make_targets_on_bundled_sample_to_valid_csv(sample_runs, tmp_path):
    s = sample_runs
    assert "fold 2: 30 train / 15 valid" in s.printed["folds"]
    for fold in range(3):  # one recording date (batch folder) per validation fold, none shared
        valid_dates = {name.split("/")[0] for name in image_names(s.data / f"valid_data{fold}.json")}
        train_dates = {name.split("/")[0] for name in image_names(s.data / f"train_data{fold}.json")}
        assert len(valid_dates) == 1 and not valid_dates & train_dates
    assert "General trash" in s.printed["check-data"] and "0 problem(s)" in s.printed["check-data"]

    cv = s.printed["cv"]
    for model in ("fpn", "deeplab"):
        for fold in range(3):
            for verb in ("train", "infer"):
                # (a progress bar may share the line: it ends in carriage returns, not a newline)
                assert re.search(rf"\[cv\] trashseg {verb} --model {model} --fold={fold} [^\n]*  \(GPU [01]\)", cv)
    assert cv.count("best epoch 1") == 6 and "ensemble.csv: valid submission, 15 rows" in cv
    assert "[cv] trashseg ensemble --models=fpn deeplab" in cv
    assert cv.count("on cpu x1 ") == 6 and "(GPU 1)" in cv  # one process per job, two jobs in flight
    for model in ("fpn", "deeplab"):
        run = s.runs / model / "fold0"
        rows = list(csv.DictReader(open(run / "metrics.csv")))
        assert len(rows) == 1 and 0.0 <= float(rows[0]["val_miou"]) <= 1.0
        ckpt = torch.load(run / "best.pt", weights_only=True)
        assert ckpt["epoch"] == 1 and ckpt["config"]["model"]["encoder"] == TINY_ENCODER
        assert (run / "last.pt").is_file() and (run / "config.yaml").is_file()
        # speed auto resolved for this machine, recorded by the training and followed by infer
        here = precision.choose(Settings().speed, torch.device("cpu")).record()
        assert json.loads((run / "run_record.json").read_text())["speed"] == here
        # the run keeps its resolved settings with their sources, as `trashseg config show` prints them
        settings = (run / "settings.txt").read_text()
        assert re.search(rf'^model.encoder: +"{TINY_ENCODER}" +# ENCODER={TINY_ENCODER}$', settings, re.M)
        assert re.search(r"^train.fold: +0 +# FOLD=0$", settings, re.M)
        assert re.search(
            rf"^model.arch: +.* # code/{'FPN' if model == 'fpn' else 'DeepLabV3Plus'}/config.yaml$", settings, re.M
        )
        for split, n in (("test", 15), ("valid", 15)):
            probs = np.load(run / f"probs_{split}.npy", mmap_mode="r")
            manifest = json.loads((run / f"probs_{split}.json").read_text())
            assert probs.shape == (n, 11, 256, 256) and probs.dtype == np.float16
            assert manifest["resolution"] == 256 and len(manifest["image_ids"]) == n
            assert manifest["speed"] == here
            assert np.allclose(probs[0].astype(np.float32).sum(0), 1.0, atol=1e-2)

    subs = tmp_path / "subs"
    out = run_make("ensemble", DATA_DIR=s.data, RUNS=s.runs, SUBMISSIONS=subs, NAME="e2e")
    assert out.count("probs_test.npy (w=") == 6 and "valid submission, 15 rows" in out
    test_ids = image_names(s.data / "test.json")
    assert validate_submission(subs / "e2e.csv", test_ids) == 15
    rows = list(csv.reader(open(subs / "e2e.csv")))
    assert [r[0] for r in rows[1:]] == test_ids and all(len(r[1].split()) == 256 * 256 for r in rows[1:])
    out = run_make("validate-submission", DATA_DIR=s.data, FILE=subs / "e2e.csv")
    assert "valid submission" in out

    result_path = tmp_path / "eval.json"
    out = run_make("eval-fpn", **s.train, FOLD=0, JSON=s.data / "valid_data0.json", OUT=result_path)
    result = json.loads(result_path.read_text())
    assert {"miou", "miou_per_image", "per_class_iou"} <= result.keys()
    assert set(result["per_class_iou"]) == set(CLASSES)
    assert result["images"] == 15 and "mIoU (dataset)" in out
    assert result["speed"] == precision.choose(Settings().speed, torch.device("cpu")).record()
    best = torch.load(s.runs / "fpn" / "fold0" / "best.pt", weights_only=True)["metrics"]
    assert abs(result["miou"] - best["miou"]) < 1e-6  # eval re-scores the trainer's own figure


def test_oof_fit_tta_ensemble_pseudo(sample_runs):
    s = sample_runs
    runs, base = s.runs, s.base
    out = run_make("oof", **base, MODEL="fpn")
    oof = json.loads((runs / "fpn" / "oof.json").read_text())
    assert oof["images"] == 45 and len(oof["folds"]) == 3 and "mIoU (dataset)" in out
    assert sorted(oof["folds"]) == [str(runs / "fpn" / f"fold{k}" / "probs_valid.npy") for k in range(3)]
    assert "warning" not in out  # every train_all.json image has exactly one out-of-fold prediction
    assert 0.0 <= oof["miou"] <= 1.0 and set(oof["per_class_iou"]) == set(CLASSES)

    out_tta = run_make("oof", **base, MODEL="fpn", TTA=1)
    tta = json.loads((runs / "fpn" / "oof_tta.json").read_text())
    assert tta["post"] == "tta" and tta["images"] == 45 and tta["miou"] != oof["miou"]
    assert tta["vs_plain"]["miou"] == pytest.approx(tta["miou"] - oof["miou"])
    gain = "gain" if tta["miou"] > oof["miou"] else "loss"
    assert f"tta vs plain OOF: {gain} {tta['vs_plain']['miou']:+.4f}" in out_tta
    manifest = json.loads((runs / "fpn" / "fold0" / "probs_valid_tta.json").read_text())
    assert manifest["tta"] == {"hflip": True, "scales": [0.75, 1.0, 1.25]}

    run_make("oof", **base, MODEL="fpn", CRF=1)
    assert json.loads((runs / "fpn" / "oof_crf.json").read_text())["post"] == "crf"
    plain = np.load(runs / "fpn" / "fold0" / "probs_valid.npy").astype(np.float32)
    crf = np.load(runs / "fpn" / "fold0" / "probs_valid_crf.npy").astype(np.float32)
    assert np.allclose(crf.sum(1), 1.0, atol=1e-2) and not np.allclose(crf, plain, atol=1e-3)

    # fit-ensemble OBJECTIVE=per-image: the weights that maximise the per-image mean instead
    out = run_make("fit-ensemble", **base, MODELS="fpn deeplab", OBJECTIVE="per-image")
    by_image = json.loads((runs / "ensemble_weights.json").read_text())
    top = by_image["fitted"]["oof_miou_per_image"]
    assert by_image["objective"] == "per-image" and "weights maximise the per-image mIoU" in out
    assert top >= by_image["equal_mean"]["oof_miou_per_image"]
    assert top >= max(r["oof_miou_per_image"] for r in by_image["per_model"].values())
    assert by_image["per_model"]["fpn"]["oof_miou_per_image"] == pytest.approx(oof["miou_per_image"], abs=1e-9)

    # fit-ensemble: weights on the simplex, never below the equal mean nor the best single model
    out = run_make("fit-ensemble", **base, MODELS="fpn deeplab")
    fitted = json.loads((runs / "ensemble_weights.json").read_text())
    weights = fitted["fitted"]["weights"]
    assert fitted["images"] == 45 and set(weights) == {"fpn", "deeplab"}
    assert all(w >= 0 for w in weights.values()) and sum(weights.values()) == pytest.approx(1.0, abs=1e-9)
    best = fitted["fitted"]["oof_miou"]
    assert best >= fitted["equal_mean"]["oof_miou"] and best >= max(r["oof_miou"] for r in fitted["per_model"].values())
    assert fitted["per_model"]["fpn"]["oof_miou"] == pytest.approx(oof["miou"], abs=1e-9)
    assert fitted["objective"] == "dataset" and "weights maximise the dataset mIoU" in out
    assert fitted["fitted"]["oof_miou_per_image"] <= top  # each objective's weights are the best by its own figure
    assert "OOF mIoU equal mean" in out

    # ensemble: the CSV is the fitted-weight merge of the six fold files, pixel for pixel
    subs = s.tmp / "subs"
    out = run_make("ensemble", **base, MODELS="fpn deeplab", SUBMISSIONS=subs, NAME="fit")
    assert "fitted" in out and "valid submission, 15 rows" in out
    merged = re.findall(r"(\S+probs_test\.npy) \(w=([0-9.]+)\)", out)
    files = [f for f, _ in merged]
    assert sorted(files) == sorted(
        str(runs / m / f"fold{k}" / "probs_test.npy") for m in ("fpn", "deeplab") for k in range(3)
    )
    per_file = [weights["fpn" if "/fpn/" in f else "deeplab"] / 3 for f in files]
    assert [float(w) for _, w in merged] == pytest.approx(per_file, abs=1e-3)
    written = csv_labels(subs / "fit.csv")
    ids = json.loads((runs / "fpn" / "fold0" / "probs_test.json").read_text())["image_ids"]
    assert list(written) == ids
    for row, image_id in enumerate(ids):
        assert np.array_equal(written[image_id], merged_labels(files, per_file, row)), image_id
    equal_args = {**base, "ARGS": f"{base['ARGS']} --equal"}
    run_make("ensemble", **equal_args, MODELS="fpn deeplab", SUBMISSIONS=subs, NAME="equal")
    equal = csv_labels(subs / "equal.csv")
    differs = any(
        not np.array_equal(merged_labels(files, per_file, r), merged_labels(files, [1 / 6] * 6, r)) for r in range(15)
    )
    assert differs == any(not np.array_equal(written[i], equal[i]) for i in ids)
    if abs(weights["fpn"] - 0.5) > 1e-9:  # the weights differ from equal: so, here, does the CSV
        assert differs, f"fitted weights {weights} merge to the same labels as equal weights"
    # two files named by hand with their own weights (docs: make ensemble PROBS="a.npy b.npy" ENSEMBLE_WEIGHTS=...)
    two = [str(runs / "fpn" / "fold0" / "probs_test.npy"), str(runs / "deeplab" / "fold1" / "probs_test.npy")]
    out = run_make("ensemble", **base, PROBS=" ".join(two), ENSEMBLE_WEIGHTS="0.4 0.6", SUBMISSIONS=subs, NAME="two")
    assert f"merged (given weights) {two[0]} (w=0.400), {two[1]} (w=0.600)" in out
    given = csv_labels(subs / "two.csv")
    for row, image_id in enumerate(ids):
        assert np.array_equal(given[image_id], merged_labels(two, [0.4, 0.6], row)), image_id

    # pseudo-labels: every fold's training file gains the 15 test images; unsure pixels are ignored
    run_make("pseudo", **base, MODELS="fpn deeplab", K=3)
    test_names = [img["file_name"] for img in json.loads((s.data / "test.json").read_text())["images"]]
    from trashseg.data.coco import load_coco
    from trashseg.data.masks import paint_mask

    for fold in range(3):
        pseudo = json.loads((s.data / f"train_data_pseudo{fold}.json").read_text())
        fold_train = json.loads((s.data / f"train_data{fold}.json").read_text())
        names = [img["file_name"] for img in pseudo["images"]]
        assert names == [img["file_name"] for img in fold_train["images"]] + test_names
        assert len({img["id"] for img in pseudo["images"]}) == len(names)  # no image id twice
    cats = {c["id"]: c["name"] for c in pseudo["categories"]}
    pseudo_anns = [a for a in pseudo["annotations"] if a.get("pseudo")]
    assert pseudo_anns and all(isinstance(a["segmentation"]["counts"], str) for a in pseudo_anns)
    # a one-epoch tiny model is unsure almost everywhere, so the ignore label must appear and paint 255
    assert any(cats[a["category_id"]] == "__ignore__" for a in pseudo_anns)
    cs = load_coco(s.data / "train_data_pseudo0.json", s.data, {})
    painted = [paint_mask(cs, i) for i in cs.image_ids[-15:]]
    assert any((m == 255).any() for m in painted)

    # a training on the pseudo-labels with copy-paste of the class the sample holds
    copy_paste = "--set augment.copy_paste.p=1.0 --set 'augment.copy_paste.classes=[Plastic bag]'"
    out = run_make(
        "train-fpn",
        **{**s.train, "RUNS": s.tmp / "pseudo_runs", "ARGS": f"{base['ARGS']} {copy_paste}"},
        FOLD=0,
        PSEUDO=1,
    )
    assert "best epoch 1" in out and re.search(r"copy-paste: Plastic bag from [1-9]\d* donor image\(s\), p=1.0", out)
    fold0 = json.loads((s.data / "train_data0.json").read_text())["images"]
    assert f"{len(fold0) + 15} train / 15 valid images" in out.replace("\n", " ")
    used = torch.load(s.tmp / "pseudo_runs" / "fpn" / "fold0" / "best.pt", weights_only=True)["config"]
    assert used["data"]["train_json"] == "train_data_pseudo{fold}.json"


def report_rows(page: str) -> dict[str, str]:
    """The gallery's rows of a report page, in order: file name -> its mIoU as printed."""
    return dict(re.findall(r"<h3[^>]*>#\d+ ([^:<]+): mIoU ([0-9.]+|n/a)", page))


def test_report_equals_eval_and_predict_draws_every_photo(sample_runs, tmp_path):
    s = sample_runs
    # a copy of the run without its saved probabilities: the report predicts (as eval does)
    run = tmp_path / "fpn" / "fold0"
    shutil.copytree(s.runs / "fpn" / "fold0", run, ignore=shutil.ignore_patterns("probs_*", "report"))
    out = run_make("report", RUN=run, N=3)
    assert "not predicting again" not in out
    report = run / "report"
    for name in ("confusion_matrix.png", "curves.png", "legend.png"):
        read_image(report / name)
    gallery = sorted((report / "gallery").glob("*.png"))  # the 3 worst: photo | truth | prediction | errors
    assert len(gallery) == 3 and all(read_image(p).shape[1] == 4 * read_image(p).shape[0] for p in gallery)
    assert (report / "index.html").is_file() and "gallery/0001_" in (report / "index.html").read_text()
    table = (report / "per_class_iou.md").read_text()
    assert "| Plastic bag |" in out and "| General trash |" in out

    result_path = tmp_path / "eval.json"
    run_make("eval-fpn", **s.train, FOLD=0, JSON=s.data / "valid_data0.json", OUT=result_path)
    evaluated = json.loads(result_path.read_text())
    for name, iou in evaluated["per_class_iou"].items():  # the report's table is eval's, class by class
        assert f"| {name} | {'n/a' if iou is None else f'{iou:.4f}'}" in table, name
    assert f"| **mIoU (dataset)** | **{evaluated['miou']:.4f}** |" in table
    assert f"| mIoU (per image) | {evaluated['miou_per_image']:.4f} |" in table
    metrics = torch.load(run / "best.pt", weights_only=True)["metrics"]
    assert f"**{metrics['miou']:.4f}**" in table  # and the trainer's own figure

    # the run itself holds infer's validation probabilities from this checkpoint: the report scores
    # that file, and its gallery is the file's per-image IoU against the masks, worst first
    saved = s.runs / "fpn" / "fold0"
    out = run_make("report", RUN=saved)
    assert f"report: scoring {saved / 'probs_valid.npy'}" in out
    page = (saved / "report" / "index.html").read_text()
    assert "read from probs_valid.npy (make infer, float16)" in page
    probs = np.load(saved / "probs_valid.npy")
    names = json.loads((saved / "probs_valid.json").read_text())["image_ids"]
    cs = load_coco(s.data / "valid_data0.json", s.data, {})
    masks = dict(zip((cs.file_name(i) for i in cs.image_ids), MaskCache(s.tmp / "cache").build(cs)))
    from_file = {}
    for row, name in enumerate(names):
        pred = probs[row].astype(np.float32).argmax(0)
        truth = cv2.resize(read_mask(masks[name]), pred.shape[::-1], interpolation=cv2.INTER_NEAREST)
        cm = confusion_matrix(torch.from_numpy(truth.astype(np.int64)), torch.from_numpy(pred), 11)
        from_file[name] = mean_iou(cm)
    shown = report_rows(page)
    assert list(shown) == sorted(from_file, key=lambda n: from_file[n]) and len(shown) == 15
    assert all(shown[n] == f"{from_file[n]:.4f}" for n in shown)
    # a checkpoint other than the one the file came from: predicted again, not read
    stale = tmp_path / "stale" / "fpn" / "fold0"
    shutil.copytree(saved, stale, ignore=shutil.ignore_patterns("report"))
    shutil.copy(s.runs / "fpn" / "fold1" / "best.pt", stale / "best.pt")
    assert "not predicting again" not in run_make("report", RUN=stale, N=1)

    photos = sorted(p.stem for p in (s.data / "batch_04").glob("*.jpg"))
    out = run_make("predict", RUN=run, IMAGES=s.data / "batch_04", OUT=tmp_path / "pred")
    drawn = sorted((tmp_path / "pred").glob("*_overlay.png"))
    assert [p.name.removesuffix("_overlay.png") for p in drawn] == photos and len(photos) == 15
    for path in drawn:
        overlay = read_image(path)
        photo = cv2.imread(str(s.data / "batch_04" / f"{path.name.removesuffix('_overlay.png')}.jpg"))
        assert overlay.shape[:2] == (photo.shape[0], 2 * photo.shape[1])  # photo | prediction
    read_image(tmp_path / "pred" / "legend.png")
    assert f"wrote 15 overlays and legend.png to {tmp_path / 'pred'}" in out


def test_copy_paste_without_donors_says_so(sample_runs):
    """The defaults (Battery, Clothing) have no objects in the sample: the log says nothing is pasted."""
    out = run_make(
        "train-fpn",
        **{
            **sample_runs.train,
            "RUNS": sample_runs.tmp / "cp_runs",
            "ARGS": f"{sample_runs.base['ARGS']} --set augment.copy_paste.p=0.5",
        },
        FOLD=1,
    )
    assert "copy-paste: no Battery, Clothing in the training masks; nothing will be pasted" in out


def test_kaggle_bundle_runs_offline_and_equals_the_kits_csv(sample_runs, tmp_path):
    """make kaggle-bundle on the six fold runs, then make kaggle-bundle-check CHECK_IN=venv: the notebook in
    a fresh venv (pip's index and configuration off, no network where the machine allows a namespace)
    installs the kit from the bundle's wheels and writes a CSV equal, pixel for pixel, to `trashseg infer`
    + `trashseg ensemble` on the bundled runs. A bundle edited to other TTA views or outside paths stops."""
    from trashseg.ensembling.bundle_infer import bundle_infer
    from trashseg.errors import TrashsegError

    s = sample_runs
    bundles = tmp_path / "bundles"
    common = dict(DATA_DIR=s.data, RUNS=s.runs, BUNDLES=bundles, NAME="sample")
    secret = "0123456789abcdef-kaggle-key"  # present, as on a competitor's machine: never in the bundle
    out = run_make("kaggle-bundle", env={"KAGGLE_USERNAME": "someone", "KAGGLE_KEY": secret}, **common,
                   MODELS="fpn deeplab", COMPETITION="trash-sample", KAGGLE_DATASET="me/trashseg-test")  # fmt: skip
    bundle = bundles / "sample"
    record = json.loads((bundle / "bundle.json").read_text())
    meta = json.loads((bundle / "dataset-metadata.json").read_text())
    assert meta["id"] == "me/trashseg-test" and 6 <= len(meta["title"]) <= 50
    assert [m["run"] for m in record["members"]] == [f"runs/{m}/fold{k}" for m in ("fpn", "deeplab") for k in range(3)]
    fitted = (s.runs / "ensemble_weights.json").is_file()
    assert (
        record["weights"].startswith("fitted" if fitted else "equal")
        and f"for me/trashseg-test ({record['weights']}" in out
    )
    assert abs(sum(m["weight"] for m in record["members"]) - 1) < 1e-9
    if fitted:  # the fitted weights' file itself travels too
        assert (bundle / "ensemble_weights.json").read_text() == (s.runs / "ensemble_weights.json").read_text()
    for sidecar in ("config.yaml", "settings.txt", "metrics.csv", "run_record.json", "validated-probs_test.json"):
        assert (bundle / "runs" / "deeplab" / "fold2" / sidecar).is_file(), sidecar
    wheels = record["wheels"]
    assert any(w.startswith("trashseg-") for w in wheels) and any(w.startswith("numpy-") for w in wheels)
    assert not any(w.startswith(("torch-", "torchvision-", "nvidia_")) for w in wheels)  # Kaggle's image has them
    for m in record["members"]:
        state = torch.load(bundle / m["run"] / "best.pt", weights_only=True)
        assert set(state) == {"model", "config", "epoch", "metrics"}  # no optimizer, no training state
        assert {t.dtype for t in state["model"].values() if t.is_floating_point()} == {torch.float16}
        assert m["views"]["tta"] == {} and m["views"]["resolution"] == 256  # the plain variant
    assert not [p for p in bundle.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert secret not in out
    nb = json.loads((bundle / "inference.ipynb").read_text())
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "--no-index" in code and '"bundle-infer"' in code and "trash-sample" in code and "trashseg-test" in code
    assert "import torch" not in code and "def " in code and code.count("def ") == 1  # the run() helper only

    out = run_make("kaggle-bundle-check", **common, CHECK_IN="venv")
    assert "no network" in out or "not cut" in out
    assert f"agree on all {15 * 256 * 256} pixels of 15 images" in out
    assert "against the merge of the runs' own probabilities (fp16 checkpoints in the bundle)" in out
    executed = json.loads((bundles / ".check-sample" / "kaggle" / "working" / "inference.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert "Successfully installed" in printed and "numpy-" in printed  # from the bundle, not the host
    assert "valid submission, 15 rows" in printed
    checked = json.loads((bundles / ".check-sample" / "check.json").read_text())  # the check's figures, kept
    assert checked["check_in"] == "venv" and checked["precision"] == "fp16" and checked["images"] == 15
    assert checked["pixels"] == 15 * 256 * 256 and checked["wheels"] == len(wheels) and checked["image_seconds"] is None
    assert 0 <= checked["pixels_differing_from_runs_own"] <= checked["pixels"] and checked["notebook_seconds"] > 0
    assert f"{checked['pixels_differing_from_runs_own']} of {checked['pixels']} pixels differ" in out

    # a run whose test probabilities were made from another checkpoint than its best.pt is not bundled
    stale = tmp_path / "stale-runs"
    shutil.copytree(s.runs / "fpn", stale / "fpn", ignore=shutil.ignore_patterns("last.pt", "*valid*"))
    shutil.copy(stale / "fpn" / "fold1" / "best.pt", stale / "fpn" / "fold0" / "best.pt")
    proc = make_process("kaggle-bundle", **{**common, "RUNS": stale}, MODELS="fpn", COMPETITION="trash-sample")
    assert proc.returncode != 0 and "made from another checkpoint" in proc.stderr
    assert "make infer MODEL=fpn FOLD=0 SPLITS=test" in proc.stderr and not (bundles / "sample-stale").exists()

    # the notebook cannot run another checkpoint than the one validated, nor read outside the bundle
    edited = tmp_path / "edited"
    shutil.copytree(bundle, edited)
    shutil.copy(edited / "runs" / "fpn" / "fold1" / "best.pt", edited / "runs" / "fpn" / "fold0" / "best.pt")
    with pytest.raises(TrashsegError, match=r"runs/fpn/fold0: the predictor would differ .* in checkpoint_sha256"):
        bundle_infer(edited, s.data, tmp_path / "x.csv", tmp_path / "work")
    rec = json.loads((edited / "bundle.json").read_text())
    rec["members"][0]["run"] = "../../outside"
    (edited / "bundle.json").write_text(json.dumps(rec))
    with pytest.raises(TrashsegError, match=r"members\[0\]\.run"):
        bundle_infer(edited, s.data, tmp_path / "x.csv", tmp_path / "work")
    assert not (tmp_path / "x.csv").exists()


def test_pipeline_chains_every_stage_skips_what_is_done_and_resumes_a_kill(sample_runs, tmp_path):
    """make pipeline on the sample's fold runs (round 0 kept: the fixture trained every fold with the same
    settings), one pseudo-label round at the tiny budget: the plan, the stage table and its file, the
    validated CSV; killed in round 1's training and run again, it ends with the same CSV; run once more,
    every stage is kept."""
    s = sample_runs
    runs, subs = tmp_path / "runs", tmp_path / "subs"
    shutil.copytree(s.runs, runs, ignore=shutil.ignore_patterns("pseudo*", "ensemble_weights*"))
    common = {**s.train, "RUNS": runs, "MODELS": "fpn deeplab", "K": 3, "ROUNDS": 1, "SUBMISSIONS": subs, "NAME": "p"}
    common["GPUS"] = 2  # two fold jobs at a time, as the fixture's cv (on CPU: one thread each)

    plan = run_make("pipeline", **common, DRY_RUN=1)
    assert "pipeline plan (9 stages; nothing run)" in plan and "round 1 pseudo" in plan
    assert "--set=data.train_json=pseudo1/train_data_pseudo{fold}.json" in plan
    assert not (runs / "pseudo1").exists() and not subs.exists()

    out = run_make("pipeline", **common)
    assert out.count("finished, kept") == 6 and "folds: " in out and "fold files kept" in out
    table = json.loads((runs / "pipeline.json").read_text())
    assert [(x["stage"], x["round"]) for x in table["stages"]] == [
        *[("folds", 0), ("cv", 0), ("oof", 0), ("fit-ensemble", 0)],
        *[("pseudo", 1), ("cv", 1), ("oof", 1), ("fit-ensemble", 1), ("ensemble", 1)],
    ]
    fitted = json.loads((runs / "pseudo1" / "ensemble_weights.json").read_text())
    assert table["oof"]["1"]["fpn"]["miou_per_image"] == fitted["per_model"]["fpn"]["oof_miou_per_image"]
    assert re.search(r"^1 +ensemble, fitted \(.*\) +0\.\d{4} +0\.\d{4}$", out, re.M)
    for fold in range(3):  # round 1 trained on its fold's photos + the pseudo-labelled test photos, scored out of fold
        cfg = yaml.safe_load((runs / "pseudo1" / "deeplab" / f"fold{fold}" / "config.yaml").read_text())
        assert cfg["data"]["train_json"] == "pseudo1/train_data_pseudo{fold}.json"
        pseudo = json.loads((s.data / "pseudo1" / f"train_data_pseudo{fold}.json").read_text())
        train = image_names(s.data / f"train_data{fold}.json")
        assert [i["file_name"] for i in pseudo["images"]] == train + image_names(s.data / "test.json")
    assert validate_submission(subs / "p.csv", image_names(s.data / "test.json")) == 15
    first = (subs / "p.csv").read_text()

    # killed as round 1's training of one fold begins, then run again: the same CSV
    shutil.rmtree(runs / "pseudo1" / "deeplab" / "fold2")
    hook = kill_hook(tmp_path / "hook", "trashseg.training.trainer", "train_one_epoch", 1)
    killed = make_process("pipeline", env=hook, **common)
    assert (
        killed.returncode != 0
        and "round 1 cv failed" in killed.stderr
        and "run the same command again" in killed.stderr
    )
    out = run_make("pipeline", **common)
    assert "pseudo round 1: " in out and "made from today's round 0, kept" in out
    assert "trashseg train --model deeplab --fold=2" in out and out.count("finished, kept") == 11
    assert (subs / "p.csv").read_text() == first

    out = run_make("pipeline", **common)  # nothing left to do: every stage kept, the CSV as it was
    assert out.count("finished, kept") == 12 and "trashseg train" not in out and "trashseg infer" not in out
    assert "round 1 ensemble: what it reads is unchanged since it ran, kept" in out
    stages = json.loads((runs / "pipeline.json").read_text())["stages"]
    assert [x["stage"] for x in stages if x["done"] != "kept"] == ["cv", "cv"]  # cv looks at every fold itself
    assert (subs / "p.csv").read_text() == first

    # another OBJECTIVE is another fit-ensemble command: it runs again, and round 1's pseudo-labels, made
    # from round 0's old weights, must then be made again over kept runs: that stops, naming FORCE=1
    plan = run_make("pipeline", **common, OBJECTIVE="per-image", DRY_RUN=1)
    assert plan.count("fit-ensemble '--models=fpn deeplab'") == 2 and plan.count("--objective=per-image") == 2
    changed = make_process("pipeline", **common, OBJECTIVE="per-image")
    assert changed.returncode != 0 and "round 0 fit-ensemble: what it reads" not in changed.stdout
    assert "trashseg fit-ensemble" in changed.stdout and "--objective=per-image" in changed.stdout
    assert json.loads((runs / "ensemble_weights.json").read_text())["objective"] == "per-image"
    assert "round 1's pseudo-labels must be made again" in changed.stderr and "FORCE=1" in changed.stderr

    problems = make_process("pipeline", **{**common, "MODELS": "fpn deeplap"})
    assert problems.returncode != 0 and "no model folder or preset deeplap" in problems.stderr
