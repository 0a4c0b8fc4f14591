"""Blend anything: `make vote` over competition CSVs (hand-computed majority, ties by priority or file
order, streaming checks), and `make import-probs` bringing another toolkit's per-image logits or
label maps into the kit's probability files, round-tripping through OOF scoring and `make ensemble`."""

import json

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import make_process, run_make
from trashseg.ensembling.submission import HEADER, SubmissionWriter, read_rows
from trashseg.ensembling.vote import vote, vote_files
from trashseg.errors import TrashsegError

IDS = ["batch_01/0001.jpg", "batch_02/0002.jpg"]
P = 256 * 256


def write_csv(path, rows):
    writer = SubmissionWriter(path)
    for image_id, values in rows:
        writer.add(image_id, values)
    writer.close()
    return path


def test_vote_majority_and_both_tie_breaks_by_hand():
    a, b, c = np.array([1, 3, 2, 7, 0]), np.array([1, 4, 3, 8, 0]), np.array([2, 5, 3, 7, 9])
    # pixel: 0 two for 1 | 1 three-way tie | 2 two for 3 | 3 two for 7 | 4 two for 0
    assert vote([a, b, c]).tolist() == [1, 3, 3, 7, 0]  # tie -> first file's vote
    assert vote([c, b, a]).tolist() == [1, 5, 3, 7, 0]  # file order matters only for ties
    from trashseg.ensembling.vote import priority_ranks

    assert vote([a, b, c], priority_ranks(["Plastic", "Metal"])).tolist() == [1, 4, 3, 7, 0]  # Metal=4 over 3, 5
    assert vote([a, b, c], priority_ranks(["Styrofoam"])).tolist() == [1, 3, 3, 7, 0]  # unlisted: by index


def test_vote_files_stream_and_check_every_row(tmp_path):
    test_json = tmp_path / "test.json"
    test_json.write_text(json.dumps({"images": [{"id": i, "file_name": n} for i, n in enumerate(IDS)]}))
    rng = np.random.default_rng(0)
    grids = [rng.integers(0, 11, size=(2, P)) for _ in range(3)]
    files = [write_csv(tmp_path / f"{k}.csv", zip(IDS, g)) for k, g in enumerate(grids)]
    n = vote_files(files, test_json, tmp_path / "blend.csv", progress=False)
    expected = [vote([g[i] for g in grids]) for i in range(2)]
    got = [values for _, values in read_rows(tmp_path / "blend.csv", IDS)]
    assert n == 2 and all(np.array_equal(e, g) for e, g in zip(expected, got))

    write_csv(tmp_path / "swapped.csv", zip(IDS[::-1], grids[0]))
    with pytest.raises(TrashsegError, match=r"swapped.csv: line 2: image_id 'batch_02/0002.jpg', expected"):
        vote_files([files[0], tmp_path / "swapped.csv"], test_json, tmp_path / "x.csv", progress=False)
    write_csv(tmp_path / "short.csv", zip(IDS[:1], grids[0]))
    with pytest.raises(TrashsegError, match=r"short.csv: 1 rows, expected 2"):
        vote_files([files[0], tmp_path / "short.csv"], test_json, tmp_path / "x.csv", progress=False)
    assert not (tmp_path / "x.csv").exists()
    with pytest.raises(TrashsegError, match="at least two"):
        vote_files([files[0]], test_json, tmp_path / "x.csv", progress=False)


def test_make_vote_writes_a_validated_blend(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.json").write_text(json.dumps({"images": [{"id": i, "file_name": n} for i, n in enumerate(IDS)]}))
    grids = [np.full((2, P), v) for v in (4, 4, 9)]
    files = [write_csv(tmp_path / f"{k}.csv", zip(IDS, g)) for k, g in enumerate(grids)]
    out = run_make(
        "vote",
        FILES=" ".join(map(str, files)),
        DATA_DIR=data,
        SUBMISSIONS=tmp_path / "subs",
        NAME="blend",
        PRIORITY="Battery",
    )
    assert "blend.csv: valid submission, 2 rows" in out and "ties by priority Battery" in out
    assert (tmp_path / "subs" / "blend.csv").read_text().splitlines()[0] == ",".join(HEADER)
    assert all((v == 4).all() for _, v in read_rows(tmp_path / "subs" / "blend.csv", IDS))


def softmax_at_256(logits: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(logits).softmax(0)[None]
    return F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)[0].numpy()


@pytest.mark.slow
def test_imported_logits_and_label_maps_round_trip_through_oof_and_ensemble(coco_dir, tmp_path):
    from trashseg.data.folds import make_folds

    make_folds(coco_dir / "train_all.json", coco_dir, 3, 0, {})
    rng = np.random.default_rng(1)
    test = json.loads((coco_dir / "test.json").read_text())["images"]
    valid = json.loads((coco_dir / "valid_data0.json").read_text())["images"]
    logits_dir, labels_dir = tmp_path / "mmseg", tmp_path / "labels"
    expected_logits, expected_labels = {}, {}
    for img in test + valid:
        logits = rng.normal(size=(11, img["height"], img["width"])).astype(np.float32) * 3
        target = logits_dir / img["file_name"]  # batch_01/0012.jpg -> batch_01/0012.npy
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target.with_suffix(".npy"), logits)
        probs = np.sort(softmax_at_256(logits), axis=0)
        sure = probs[-1] - probs[-2] > 2e-3  # argmax not decided by float16 rounding of the file
        expected_logits[img["file_name"]] = (softmax_at_256(logits).argmax(0), sure)
        labels = rng.integers(0, 11, size=(img["height"], img["width"]), dtype=np.uint8)
        labels_dir.mkdir(exist_ok=True)
        cv2.imwrite(str(labels_dir / (img["file_name"].split("/")[-1].rsplit(".", 1)[0] + ".png")), labels)  # stem
        nearest = cv2.resize(labels, (256, 256), interpolation=cv2.INTER_NEAREST)
        expected_labels[img["file_name"]] = (nearest, np.ones_like(nearest, dtype=bool))

    common = dict(DATA_DIR=coco_dir, RUNS=tmp_path / "runs")
    run_make("import-probs", **common, SRC=logits_dir, MODEL="mmseg")
    run_make("import-probs", **common, SRC=logits_dir, MODEL="mmseg", SPLITS="valid", FOLD=0, KIND="logits")
    run_make("import-probs", **common, SRC=labels_dir, MODEL="labels")
    out = run_make("oof", **common, MODEL="mmseg", ARGS=f"--set data.cache_dir={tmp_path / 'cache'}")
    assert f"out-of-fold, mmseg, {len(valid)} images:" in out

    for model, expected in (("mmseg", expected_logits), ("labels", expected_labels)):
        out = run_make("ensemble", **common, MODELS=model, SUBMISSIONS=tmp_path / "subs", NAME=model)
        assert f"valid submission, {len(test)} rows" in out
        names = [img["file_name"] for img in test]
        for name, values in read_rows(tmp_path / "subs" / f"{model}.csv", names):
            want, sure = expected[name]
            assert sure.mean() > 0.98 and np.array_equal(values.reshape(256, 256)[sure], want[sure]), (model, name)

    (logits_dir / test[0]["file_name"]).with_suffix(".npy").unlink()
    proc = make_process("import-probs", **common, SRC=logits_dir, MODEL="broken")
    assert proc.returncode == 2 and "no .npy/.png for 1 of the 4 images" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "runs" / "broken").exists()
