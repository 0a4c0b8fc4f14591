import json

import numpy as np
import pytest

from trashseg.data.classes import CLASSES
from trashseg.ensembling.ensemble import ensemble_to_csv
from trashseg.ensembling.submission import HEADER, SubmissionWriter, validate_submission
from trashseg.errors import TrashsegError
from trashseg.inference.probs import ProbsReader, ProbsWriter

IDS = ["batch_01/0001.jpg", "batch_02/0002.jpg", "batch_03/0003.jpg"]
S = 16  # small submission size for fast tests


def write_probs(path, arr, ids=IDS, resolution=S, **manifest):
    w = ProbsWriter(
        path,
        len(ids),
        len(CLASSES),
        arr.shape[-1],
        {"image_ids": ids, "resolution": resolution, "classes": list(CLASSES), **manifest},
    )
    for i, row in enumerate(arr):
        w.write(i, row)
    w.close()
    return path


def write_test_json(path, ids=IDS):
    path.write_text(
        json.dumps({"images": [{"id": i, "file_name": n, "width": 8, "height": 8} for i, n in enumerate(ids)]})
    )
    return path


def test_writer_and_validator_round_trip(tmp_path):
    w = SubmissionWriter(tmp_path / "s.csv")
    for i, image_id in enumerate(IDS):
        w.add(image_id, np.full((S, S), i + 8))
    w.close()
    assert validate_submission(tmp_path / "s.csv", IDS, size=S) == 3
    first = (tmp_path / "s.csv").read_text().splitlines()[1]
    assert first.startswith("batch_01/0001.jpg,8 8 8") and len(first.split(",")[1].split()) == S * S


def _csv(tmp_path, header=",".join(HEADER), rows=None):
    rows = rows if rows is not None else [f"{i},{' '.join(['1'] * S * S)}" for i in IDS]
    p = tmp_path / "bad.csv"
    p.write_text("\n".join([header] + rows) + "\n")
    return p


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda r: r[:2], "2 rows, expected 3"),
        (lambda r: r + [r[0]], "more rows than"),
        (lambda r: [r[1], r[0], r[2]], "line 2: image_id 'batch_02/0002.jpg', expected 'batch_01/0001.jpg'"),
        (lambda r: [r[0].replace(" 1 ", " x ", 1)] + r[1:], "line 2 .*non-integer"),
        (lambda r: [r[0].replace(" 1 ", " 11 ", 1)] + r[1:], "out of range 0..10"),
        (lambda r: [r[0] + " 1"] + r[1:], f"{S * S + 1} values, expected {S * S}"),
    ],
)
def test_validator_names_row_and_problem(tmp_path, mutate, match):
    rows = [f"{i},{' '.join(['1'] * S * S)}" for i in IDS]
    with pytest.raises(TrashsegError, match=match):
        validate_submission(_csv(tmp_path, rows=mutate(rows)), IDS, size=S)


def test_validator_checks_header(tmp_path):
    with pytest.raises(TrashsegError, match="header"):
        validate_submission(_csv(tmp_path, header="id,pred"), IDS, size=S)


def test_probs_file_round_trip_row_by_row(tmp_path):
    arr = np.random.default_rng(0).random((3, 11, 4, 4)).astype(np.float16)
    reader = ProbsReader(write_probs(tmp_path / "p.npy", arr, resolution=4))
    assert np.array_equal(reader.row(2), arr[2]) and np.array_equal(np.load(tmp_path / "p.npy"), arr)
    reader.close()


def test_ensemble_is_weighted_mean_then_argmax(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.random((3, 11, S, S)).astype(np.float16)
    b = rng.random((3, 11, S, S)).astype(np.float16)
    pa, pb = write_probs(tmp_path / "a.npy", a), write_probs(tmp_path / "b.npy", b)
    out = tmp_path / "e.csv"
    ensemble_to_csv([pa, pb], out, write_test_json(tmp_path / "test.json"), weights=[3, 1], progress=False)
    expected = (0.75 * a.astype(np.float32) + 0.25 * b.astype(np.float32)).argmax(1)
    lines = out.read_text().splitlines()[1:]
    for line, exp in zip(lines, expected):
        assert np.array(line.split(",")[1].split(), dtype=int).tolist() == exp.reshape(-1).tolist()


def test_ensemble_refuses_mismatched_manifests(tmp_path):
    arr = np.zeros((3, 11, S, S), dtype=np.float16)
    pa = write_probs(tmp_path / "a.npy", arr)
    pb = write_probs(tmp_path / "b.npy", arr, ids=[IDS[0], IDS[2], IDS[1]])
    test_json = write_test_json(tmp_path / "test.json")
    with pytest.raises(TrashsegError, match="b.npy: image list differs from test.json .*position 1"):
        ensemble_to_csv([pa, pb], tmp_path / "e.csv", test_json, progress=False)
    pc = write_probs(tmp_path / "c.npy", arr, resolution=8)
    with pytest.raises(TrashsegError, match="c.npy: resolution 8 differs"):
        ensemble_to_csv([pa, pc], tmp_path / "e.csv", test_json, progress=False)
    assert not (tmp_path / "e.csv").exists()


def test_truncated_probs_file_is_refused(tmp_path):
    p = write_probs(tmp_path / "a.npy", np.zeros((3, 11, S, S), dtype=np.float16))
    with open(p, "r+b") as fh:
        fh.truncate(p.stat().st_size - 10)
    with pytest.raises(TrashsegError, match="truncated"):
        ProbsReader(p)


def test_ensemble_refuses_to_mix_plain_and_tta_files_unless_asked(tmp_path):
    arr = np.random.default_rng(2).random((3, 11, S, S)).astype(np.float16)
    plain = write_probs(tmp_path / "runs/fpn/fold0/probs_test.npy", arr, tta={}, crf=None)
    tta = write_probs(tmp_path / "runs/fpn/fold1/probs_test_tta.npy", arr, tta={"hflip": True, "scales": [1.0]})
    test_json = write_test_json(tmp_path / "test.json")
    with pytest.raises(
        TrashsegError,
        match=r"different post-processing .*probs_test.npy \(plain\), .*"
        r"probs_test_tta.npy \(tta\).*MIXED=1",
    ):
        ensemble_to_csv([plain, tta], tmp_path / "e.csv", test_json, progress=False)
    assert not (tmp_path / "e.csv").exists()
    ensemble_to_csv([plain, tta], tmp_path / "e.csv", test_json, progress=False, allow_mixed=True)
    assert validate_submission(tmp_path / "e.csv", IDS, size=S) == 3


def test_run_layout_names_every_variant_and_finds_each_models_folds(tmp_path):
    from trashseg.config import load_config
    from trashseg.ensembling.ensemble import find_test_probs
    from trashseg.runs import Layout, probs_path, run_dir

    cfg = load_config(
        None, [f"train.runs_dir={tmp_path}", "model.name=deeplab", "train.fold=2", "tta.enabled=true"], models=False
    )
    assert run_dir(cfg) == tmp_path / "deeplab" / "fold2"
    assert probs_path(cfg, "valid") == tmp_path / "deeplab" / "fold2" / "probs_valid_tta.npy"
    layout = Layout.of(cfg)
    assert layout.oof_result("fpn") == tmp_path / "fpn" / "oof_tta.json"
    assert layout.fitted_weights() == tmp_path / "ensemble_weights_tta.json"
    arr = np.zeros((3, 11, S, S), dtype=np.float16)
    for model, fold in (("fpn", 0), ("fpn", 10), ("fpn", 2), ("deeplab", 0)):
        write_probs(layout.probs(model, fold, "test"), arr)
    write_probs(Layout(tmp_path).probs("unet", 0, "test"), arr)  # plain variant only
    assert [p.parent.name for p in layout.fold_probs("fpn", "test")] == ["fold0", "fold2", "fold10"]
    assert layout.models() == ["deeplab", "fpn"]
    assert len(find_test_probs(layout, None)) == 4
    with pytest.raises(
        TrashsegError, match=r"no .*/unet/fold\*/probs_test_tta.npy: run `make infer MODEL=unet FOLD=k TTA=1`"
    ):
        find_test_probs(layout, ["fpn", "unet"])
    with pytest.raises(TrashsegError, match=r"run `make infer EXP=cpu-lite FOLD=k TTA=1`"):  # a preset's runs
        find_test_probs(layout, ["cpu-lite"])
    # no MODELS and none of this variant: the other variants' runs are named, with the way to them
    crf = Layout(tmp_path / "crf-only", post="_crf")
    write_probs(Layout(tmp_path / "crf-only", post="_tta").probs("cpu-lite", 0, "test"), arr)
    with pytest.raises(TrashsegError, match=r"there are other variants' \(cpu-lite: TTA=1\): give MODELS=\"cpu-lite\""):
        find_test_probs(crf, None)
    with pytest.raises(TrashsegError, match=r"crf-none/<model>/fold\*/probs_test_crf.npy: run `make infer"):
        find_test_probs(Layout(tmp_path / "crf-none", post="_crf"), None)
