"""make bench-pseudo: each date fold's validation photos are pseudo-labelled by that fold's teachers alone
(never by a model that saw them, never with their own truth), at the threshold asked, and every round
retrains its students on the fold's file, scores them out of fold and labels the next round from them."""

import json
import sys

import numpy as np
import pytest

from helpers import ROOT
from trashseg.data.classes import CLASSES, IGNORE_INDEX
from trashseg.inference.probs import ProbsWriter

SIZE = 8  # the saved probabilities' resolution; the photos are 16 x 16


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import bench_pseudo

    return bench_pseudo


def coco(names, with_truth):
    cats = [{"id": 7, "name": "General trash"}, {"id": 9, "name": "Plastic bag"}]
    images = [{"id": i, "file_name": n, "height": 16, "width": 16} for i, n in enumerate(names)]
    polygon = [[0, 0, 15, 0, 15, 15, 0, 15]]  # the whole photo Plastic bag: the truth a leak would copy
    anns = [
        {"id": 100 + i, "image_id": i, "category_id": 9, "segmentation": polygon, "area": 256.0, "iscrowd": 0}
        for i in range(len(names))
        if with_truth
    ]
    return {"images": images, "annotations": anns, "categories": cats}


def folds(data):
    """3 date folds of 2 photos each, as make folds writes them."""
    names = [f"images/2023-12-0{d}_{i}.jpg" for d in (1, 2, 3) for i in (0, 1)]
    for k in range(3):
        valid = names[2 * k : 2 * k + 2]
        train = [n for n in names if n not in valid]
        (data / f"train_data{k}.json").write_text(json.dumps(coco(train, True)))
        (data / f"valid_data{k}.json").write_text(json.dumps(coco(valid, True)))
    return names


def teacher_probs(path, names, cls, confidence):
    """Every pixel of the left half ``cls`` at ``confidence``; the right half unsure (0.5)."""
    probs = np.full((len(CLASSES), SIZE, SIZE), 0.0, dtype=np.float32)
    probs[cls, :, : SIZE // 2] = confidence
    probs[0, :, : SIZE // 2] = 1 - confidence
    probs[cls, :, SIZE // 2 :] = 0.5
    probs[0, :, SIZE // 2 :] = 0.5
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {"image_ids": names, "resolution": SIZE, "classes": list(CLASSES), "model": path.parts[-3]}
    w = ProbsWriter(path, len(names), len(CLASSES), SIZE, manifest)
    for i in range(len(names)):
        w.write(i, probs)
    w.close()


def test_each_fold_is_labelled_by_its_own_teachers_only_confident_pixels_no_truth(bench, tmp_path):
    from trashseg.data.coco import load_coco
    from trashseg.data.masks import paint_mask

    data, runs = tmp_path / "data", tmp_path / "runs"
    data.mkdir()
    names = folds(data)
    for m, weight in (("cpu-lite", 0.75), ("cpu-lite-deeplab", 0.25)):
        for k in range(3):  # fold k's teachers say General trash (1) on fold 0, Plastic bag (8) on the others
            teacher_probs(
                runs / m / f"fold{k}" / "probs_valid_tta.npy", names[2 * k : 2 * k + 2], 1 if k == 0 else 8, 0.95
            )
    fitted = {"fitted": {"weights": {"cpu-lite": 0.75, "cpu-lite-deeplab": 0.25}}}
    (runs / "ensemble_weights_tta.json").write_text(json.dumps(fitted))
    files, confident = bench.label_round(list(bench.MEMBERS), data, runs, 21, 0.9, "pseudo-seed21-t0.9-r1")
    assert [f.parent.name for f in files] == ["pseudo-seed21-t0.9-r1"] * 3
    for k, f in enumerate(files):
        out = json.loads(f.read_text())
        train = json.loads((data / f"train_data{k}.json").read_text())
        pseudo = [im for im in out["images"] if im.get("pseudo")]
        assert out["images"][: len(train["images"])] == train["images"]  # the fold's own photos, untouched
        assert [im["file_name"] for im in pseudo] == names[2 * k : 2 * k + 2]  # its validation photos only
        assert len({im["id"] for im in out["images"]}) == len(out["images"])
        truth_ids = {a["id"] for a in json.loads((data / f"valid_data{k}.json").read_text())["annotations"]}
        added = [a for a in out["annotations"] if a.get("pseudo")]
        assert not {a["id"] for a in added} & truth_ids and len(out["annotations"]) == len(train["annotations"]) + len(
            added
        )
        cs = load_coco(f, data)
        mask = paint_mask(cs, pseudo[0]["id"])
        assert (mask[:, :6] == (1 if k == 0 else 8)).all()  # confident: the teachers' class (not the truth's 8)
        assert (mask[:, 10:] == IGNORE_INDEX).all()  # below the threshold: ignored by the loss and the metric
        painted = [paint_mask(cs, im["id"]) for im in pseudo]
        share = sum((m != IGNORE_INDEX).sum() for m in painted) / sum(m.size for m in painted)
        assert confident[k] == pytest.approx(share) and 0.3 < share < 0.6  # the share the results row keeps
    # a lower threshold than the unsure half's 0.5 labels every pixel
    files, confident = bench.label_round(list(bench.MEMBERS), data, runs, 21, 0.5, "low")
    assert confident == [1.0] * 3
    out = json.loads(files[0].read_text())
    assert {a["category_id"] for a in out["annotations"] if a.get("pseudo")} == {7}  # General trash only, no ignore


def test_rounds_retrain_the_students_on_their_folds_files_and_label_again_from_them(
    bench, tmp_path, monkeypatch, capsys
):
    """Two rounds at one threshold, students cpu-lite only: round 1 labelled by both teachers, round 2 by
    round 1's student; every fold trained on its round's file with FORCE=1, inferred plain and TTA,
    scored; the table is written to the results file; a second run trains nothing."""
    import bench_recipes

    data, runs = tmp_path / "runs" / "data", tmp_path / "runs"
    data.mkdir(parents=True)
    names = folds(data)
    calls = []

    def make(target, **v):
        calls.append((target, v))
        here = v.get("RUNS")
        if target in ("train", "infer"):
            run = next(a.split("=", 1)[1] for a in v["ARGS"].split() if a.startswith("model.name="))
            fold = here / run / f"fold{v['FOLD']}"
            fold.mkdir(parents=True, exist_ok=True)
            if target == "train":
                (fold / "best.pt").write_text("")
                (fold / "metrics.csv").write_text("epoch,seconds\n1,10\n")
            else:
                post = "_tta" if v["TTA"] else ""
                k = v["FOLD"]
                teacher_probs(fold / f"probs_valid{post}.npy", names[2 * k : 2 * k + 2], 8, 0.99)
        if target == "oof":
            r = {"miou": 0.7, "miou_per_image": 0.70 + 0.01 * v["TTA"], "per_class_iou": dict.fromkeys(CLASSES, 0.7)}
            (here / v["MODEL"] / f"oof{'_tta' if v['TTA'] else ''}.json").write_text(json.dumps(r))
        if target == "fit-ensemble":
            m = v["MODELS"].split()
            entry = {"weights": dict(zip(m, (0.5, 0.5))), "oof_miou": 0.71, "oof_miou_per_image": 0.72}
            fitted = {"equal_mean": entry, "fitted": entry, "fitted_per_class_iou": [0.7] * len(CLASSES)}
            (here / "ensemble_weights_tta.json").write_text(json.dumps(fitted))

    monkeypatch.setattr(bench_recipes, "make", make)
    monkeypatch.setattr(bench_recipes, "LEDGER", None)  # main sets it: restored after the test
    monkeypatch.setattr(bench, "CACHE", bench.CACHE)
    monkeypatch.setattr(bench, "make", make)
    monkeypatch.setattr(bench, "prepare", lambda data: None)
    for m in bench.MEMBERS:  # the teachers: trained, inferred with TTA, scored (what bench-cpu-ensemble leaves)
        for k in range(3):
            make("train", RUNS=runs, FOLD=k, ARGS=f"--set model.name={m}")
            make("infer", RUNS=runs, FOLD=k, TTA=1, ARGS=f"--set model.name={m}")
        make("oof", RUNS=runs, MODEL=m, TTA=0)
        make("oof", RUNS=runs, MODEL=m, TTA=1)
    calls.clear()
    argv = ["bench_pseudo.py", "--runs", str(runs), "--ledger", str(tmp_path / "ledger.json")]
    argv += ["--results", str(tmp_path), "--rounds", "2", "--thresholds", "0.8", "--students", "cpu-lite"]
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    trains = [v for t, v in calls if t == "train"]
    assert len(trains) == 6 and all(v["EXP"] == "cpu-lite" and v["FORCE"] == 1 for v in trains)
    folders = ["pseudo-seed21-t0.8-r1"] * 3 + ["pseudo-seed21-t0.8-s-cpu-lite-r2"] * 3  # round 1: every teacher
    assert [v["ARGS"].split("data.train_json=")[1].split("/")[0] for v in trains] == folders
    assert all("train_data_pseudo{fold}.json" in v["ARGS"] for v in trains)
    assert all(v["RUNS"].name == f"round{1 + i // 3}" for i, v in enumerate(trains))
    infers = [(v["FOLD"], v["TTA"]) for t, v in calls if t == "infer"]
    assert infers == [(k, t) for k in range(3) for t in (0, 1)] * 2
    r2 = json.loads((data / "pseudo-seed21-t0.8-s-cpu-lite-r2" / "train_data_pseudo0.json").read_text())
    named = {c["id"]: c["name"] for c in r2["categories"]}
    assert {named[a["category_id"]] for a in r2["annotations"] if a.get("pseudo")} == {"Plastic bag", "__ignore__"}
    table = json.loads((tmp_path / "pseudo-seed21.json").read_text())
    assert set(table["thresholds"]["0.8"]) == {"1", "2 students cpu-lite"}
    assert all(
        len(r["confident"]) == 3 and all(0 <= c <= 1 for c in r["confident"])
        for r in table["thresholds"]["0.8"].values()
    )
    assert table["round0"]["ensemble TTA, fitted"]["miou_per_image"] == 0.72
    out = capsys.readouterr().out
    assert "pseudo_t08_round2-s-cpu-lite_gain=-0.0100" in out  # the student's TTA 0.71 against 0.72
    calls.clear()
    bench.main()  # everything scored from today's labels: nothing trained again
    assert not [t for t, _ in calls if t in ("train", "infer")]
    # new teachers' probabilities (fold 0 says General trash now): round 1's labels change, so its student
    # trains again on every fold; round 2's labels, from students that say the same as before, are kept
    teacher_probs(runs / "cpu-lite" / "fold0" / "probs_valid_tta.npy", names[:2], 1, 0.99)
    calls.clear()
    bench.main()
    assert [v["RUNS"].name for t, v in calls if t == "train"] == ["round1"] * 3


def test_soft_labels_carry_each_pixels_confidence(bench, tmp_path):
    """--soft: the confident pixels keep their class and the teachers' confidence as pseudo_weight."""
    data, runs = tmp_path / "data", tmp_path / "runs"
    data.mkdir()
    names = folds(data)
    for m in bench.MEMBERS:
        for k in range(3):
            teacher_probs(runs / m / f"fold{k}" / "probs_valid_tta.npy", names[2 * k : 2 * k + 2], 8, 0.8)
    (runs / "ensemble_weights_tta.json").write_text(
        json.dumps({"fitted": {"weights": dict.fromkeys(bench.MEMBERS, 0.5)}})
    )
    files, _ = bench.label_round(list(bench.MEMBERS), data, runs, 21, 0.5, "soft", soft=True)
    out = json.loads(files[0].read_text())
    named = {c["id"]: c["name"] for c in out["categories"]}
    weights = {(named[a["category_id"]], a.get("pseudo_weight")) for a in out["annotations"] if a.get("pseudo")}
    assert ("Plastic bag", 0.8) in weights and ("Background", 0.8) not in weights
    assert all(w is not None for name, w in weights if name != "__ignore__")


def test_the_pseudo_label_table_in_the_docs_is_its_files():
    """docs/results.md's pseudo-label rows are bench/results/pseudo-seed<N>.json's, cell by cell (dataset,
    per-image, 3-class, the gain over that seed's teachers' TTA ensemble with fitted weights), and every
    row of every such file is in the table."""
    import re

    text = (ROOT / "docs" / "results.md").read_text()
    start = text.index("| seed | labels | round |")
    rows = [
        [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        for line in text[start:].split("\n\n")[0].splitlines()[2:]
    ]
    shown = set()
    for seed, labels, r, what, *cells in rows:
        table = json.loads((ROOT / "bench" / "results" / f"pseudo-seed{seed}.json").read_text())
        what = re.match(r"`([^`]+)`", what).group(1)
        got = table["round0"] if r == "0" else table["thresholds"][labels][r]["rows"]
        f, base = got[what], table["round0"]["ensemble TTA, fitted"]["miou_per_image"]
        present = f"{f['present']:.4f}" if "present" in f else ""
        want = [f"{f['miou']:.4f}", f"{f['miou_per_image']:.4f}", present, f"{f['miou_per_image'] - base:+.4f}"]
        assert cells == want, (seed, labels, r, what)
        shown.add((int(seed), labels if r != "0" else "teachers", r, what))
    files = sorted((ROOT / "bench" / "results").glob("pseudo-seed*.json"))
    assert files
    for path in files:
        table = json.loads(path.read_text())
        kept = {(table["seed"], "teachers", "0", w) for w in table["round0"]}
        kept |= {
            (table["seed"], t, r, w) for t, by in table["thresholds"].items() for r, v in by.items() for w in v["rows"]
        }
        assert kept <= shown, f"{path.name}: rows not in docs/results.md: {sorted(kept - shown)}"
