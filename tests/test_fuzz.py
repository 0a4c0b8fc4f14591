"""Property-based fuzzing: any input to the COCO reader + mask painter, or to the CSV validator,
gives a valid result or the kit's own TrashsegError, never another exception. Each test counts the
inputs accepted and refused and fails unless both paths were reached (a reader that refused
everything would otherwise pass)."""

import json
from collections import Counter

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from trashseg.data.coco import load_coco
from trashseg.data.masks import paint_mask
from trashseg.ensembling.submission import validate_submission
from trashseg.errors import TrashsegError

FUZZ = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
junk = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=4))
coord = st.one_of(st.floats(-50, 80), st.integers(-50, 80), st.sampled_from([float("nan"), float("inf")]), junk)
polygon = st.lists(st.lists(coord, max_size=12), max_size=3)
rle = st.fixed_dictionaries(
    {},
    optional={
        "size": st.one_of(st.lists(st.integers(-2, 30), max_size=3), junk),
        "counts": st.one_of(st.lists(st.integers(-5, 700), max_size=6), st.text(max_size=12), junk),
    },
)
segmentation = st.one_of(polygon, rle, junk)
image = st.fixed_dictionaries(
    {
        "id": st.one_of(st.integers(0, 3), junk),
        "file_name": st.one_of(st.sampled_from(["a.jpg", "b/c.png", "../x.jpg", "/abs.jpg"]), junk),
        "width": st.one_of(st.integers(-1, 24), junk),
        "height": st.one_of(st.integers(-1, 24), junk),
    }
)
category = st.fixed_dictionaries(
    {
        "id": st.one_of(st.integers(0, 3), junk),
        "name": st.one_of(st.sampled_from(["Paper", "Battery", "Bottle", "UNKNOWN"]), junk),
    }
)
annotation = st.fixed_dictionaries(
    {},
    optional={
        "id": st.integers(0, 99),
        "image_id": st.one_of(st.integers(0, 3), junk),
        "category_id": st.one_of(st.integers(0, 3), junk),
        "segmentation": segmentation,
        "area": st.one_of(st.floats(allow_nan=True), st.integers(0, 500), junk),
        "iscrowd": junk,
    },
)
coco = st.fixed_dictionaries(
    {},
    optional={
        "images": st.one_of(st.lists(image, max_size=3), junk),
        "annotations": st.one_of(st.lists(annotation, max_size=5), junk),
        "categories": st.one_of(st.lists(category, max_size=3), junk),
    },
)


valid_image = st.builds(
    lambda i, w, h: {"id": i, "file_name": f"{i}.jpg", "width": w, "height": h},
    st.integers(0, 2),
    st.integers(1, 24),
    st.integers(1, 24),
)
near_valid_ann = st.fixed_dictionaries(
    {
        "image_id": st.integers(0, 2),
        "category_id": st.sampled_from([1, 2]),
        "segmentation": st.one_of(
            st.lists(
                st.lists(st.tuples(st.floats(-3, 27), st.integers(-3, 27)), min_size=2, max_size=7).map(
                    lambda pts: [v for p in pts for v in p]
                ),
                min_size=1,
                max_size=3,
            ),
            rle,
        ),
    },
    optional={"area": st.one_of(st.floats(0, 600), junk), "iscrowd": st.integers(0, 1)},
)


# valid images and categories around junk or nearly valid annotations: inputs that load
mixed_coco = st.builds(
    lambda images, anns, categories: {"images": images, "annotations": anns, "categories": categories},
    st.lists(valid_image, min_size=1, max_size=3, unique_by=lambda im: im["id"]),
    st.lists(st.one_of(near_valid_ann, annotation), max_size=5),
    st.one_of(st.just([{"id": 1, "name": "Paper"}, {"id": 2, "name": "Battery"}]), st.lists(category, max_size=3)),
)


def test_coco_reader_and_painter_never_crash(tmp_path):
    seen = Counter()

    @FUZZ
    @given(data=st.one_of(coco, mixed_coco, st.lists(junk, max_size=2), junk))
    def check(data):
        path = tmp_path / "fuzz.json"
        path.write_text(json.dumps(data, allow_nan=True))
        try:
            cs = load_coco(path, tmp_path, {"UNKNOWN": "ignore"})
            event(f"loaded, {len(cs.coco.dataset['annotations'])} annotation(s) kept")
            for image_id in cs.image_ids:
                mask = paint_mask(cs, image_id)
                info = cs.info(image_id)
                assert mask.shape == (info["height"], info["width"]) and mask.max() <= 10
            seen["accepted" if cs.image_ids else "accepted empty"] += 1
        except TrashsegError:
            event("refused with TrashsegError")
            seen["refused"] += 1

    check()
    # both paths were reached: some inputs loaded and painted images, some were refused
    assert seen["accepted"] >= 1 and seen["refused"] >= 1, seen


def test_painter_on_nearly_valid_coco(tmp_path):
    seen = Counter()

    @FUZZ
    @given(
        images=st.lists(valid_image, min_size=1, max_size=3, unique_by=lambda im: im["id"]),
        anns=st.lists(near_valid_ann, max_size=6),
    )
    def check(images, anns):
        known = [im["id"] for im in images]
        anns = [{**a, "image_id": known[a["image_id"] % len(known)]} for a in anns]
        data = {
            "images": images,
            "annotations": anns,
            "categories": [{"id": 1, "name": "Paper"}, {"id": 2, "name": "Battery"}],
        }
        path = tmp_path / "fuzz.json"
        path.write_text(json.dumps(data))
        try:
            cs = load_coco(path, tmp_path, {})
            event(f"loaded, {min(len(cs.coco.dataset['annotations']), 3)} (capped at 3) annotation(s) painted")
            painted = set()
            for image_id in cs.image_ids:
                mask = paint_mask(cs, image_id)
                assert mask.shape == (cs.info(image_id)["height"], cs.info(image_id)["width"])
                assert set(np.unique(mask)) <= {0, 2, 9}
                painted |= set(np.unique(mask).tolist())
            seen["accepted"] += 1
            seen["painted an object"] += bool(painted - {0})
        except TrashsegError:
            event("refused with TrashsegError")
            seen["refused"] += 1

    check()
    assert seen["accepted"] >= 1 and seen["painted an object"] >= 1 and seen["refused"] >= 1, seen


IDS = ["a.jpg", "b.jpg"]
VALID_ROWS = [f"{name},{' '.join(['3'] * 16)}" for name in IDS]  # so the accepting path is drawn too
cell = st.one_of(st.sampled_from(["0", "10", "11", "-1", "x", "1.5", ""]), st.text(max_size=3))
row = st.one_of(
    st.builds(
        lambda i, vals: f"{i},{' '.join(vals)}",
        st.sampled_from(IDS + ["c.jpg"]),
        st.lists(cell, min_size=0, max_size=18),
    ),
    st.text(max_size=20),
)


def test_csv_validator_never_crashes(tmp_path):
    seen = Counter()

    @FUZZ
    @given(
        header=st.sampled_from(["image_id,PredictionString", "id,pred", ""]),
        rows=st.one_of(st.lists(row, max_size=4), st.permutations(VALID_ROWS)),
        tail=st.one_of(st.just(b""), st.binary(max_size=6)),
    )
    def check(header, rows, tail):
        path = tmp_path / "fuzz.csv"
        path.write_bytes(("\n".join([header] + rows) + "\n").encode() + tail)
        try:
            n = validate_submission(path, IDS, size=4)
            assert n == len(IDS)
            assert all(len(r.split(",")[1].split()) == 16 for r in rows)
            event("valid")
            seen["accepted"] += 1
        except TrashsegError:
            event("refused with TrashsegError")
            seen["refused"] += 1

    check()
    assert seen["accepted"] >= 1 and seen["refused"] >= 1, seen
