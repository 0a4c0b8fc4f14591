import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from trashseg.data.coco import load_coco
from trashseg.data.dataset import SegDataset
from trashseg.data.folds import make_folds
from trashseg.data.items import make_items
from trashseg.data.masks import MaskCache, paint_mask
from trashseg.data.transforms import eval_transform, train_transform
from trashseg.errors import TrashsegError
from trashseg.settings import changed

CATS = [{"id": 1, "name": "Paper"}, {"id": 2, "name": "Battery"}]


def write(tmp_path, anns, images=None, cats=CATS, name="a.json"):
    images = images or [{"id": 1, "file_name": "img.jpg", "width": 20, "height": 10}]
    path = tmp_path / name
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def square(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def test_largest_painted_first_so_small_objects_stay_on_top(tmp_path):
    small = {"id": 1, "image_id": 1, "category_id": 2, "segmentation": square(2, 2, 5, 5), "area": 9}
    big = {"id": 2, "image_id": 1, "category_id": 1, "segmentation": square(0, 0, 20, 10), "area": 200}
    cs = load_coco(write(tmp_path, [small, big]), tmp_path, {})
    mask = paint_mask(cs, 1)
    assert mask[3, 3] == 9  # Battery on top, although listed first
    assert mask[8, 15] == 2  # Paper elsewhere
    assert set(np.unique(mask)) == {2, 9}


def test_rle_and_iscrowd_segmentations_paint(tmp_path):
    binary = np.zeros((10, 20), dtype=np.uint8, order="F")
    binary[1:4, 10:15] = 1
    compressed = mask_utils.encode(binary)
    compressed["counts"] = compressed["counts"].decode()
    uncompressed = {"size": [10, 20], "counts": [5, 3, 192]}  # column-major runs
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": compressed, "area": 15, "iscrowd": 1},
        {"id": 2, "image_id": 1, "category_id": 2, "segmentation": uncompressed, "area": 3, "iscrowd": 1},
    ]
    mask = paint_mask(load_coco(write(tmp_path, anns), tmp_path, {}), 1)
    assert (mask[1:4, 10:15] == 2).all()
    assert (mask[0:3, 0] == 0).all() and (mask[5:8, 0] == 9).all()


def test_degenerate_polygons_are_dropped_and_reported(tmp_path):
    anns = [
        {"id": 4, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 5, 5]], "area": 0},
        {"id": 5, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 5, float("nan"), 3, 3]], "area": 0},
    ]
    cs = load_coco(write(tmp_path, anns), tmp_path, {})
    assert len(cs.problems) == 4
    assert "annotations[0] (id 4, image 1)" in cs.problems[0] and "2 point(s)" in cs.problems[0]
    assert (paint_mask(cs, 1) == 0).all()


@pytest.mark.parametrize(
    "images,anns,match",
    [
        ([{"id": 1, "file_name": "a.jpg", "width": 5, "height": 5}] * 2, [], "duplicate image id 1"),
        (
            None,
            [{"id": 9, "image_id": 42, "category_id": 1, "segmentation": square(0, 0, 3, 3)}],
            "image id that is not",
        ),
        ([{"id": 1, "file_name": "../x.jpg", "width": 5, "height": 5}], [], "escapes the data folder"),
    ],
)
def test_bad_coco_entries_name_file_and_entry(tmp_path, images, anns, match):
    with pytest.raises(TrashsegError, match=match) as err:
        load_coco(write(tmp_path, anns, images), tmp_path, {})
    assert "a.json" in str(err.value)


def test_malformed_json_is_a_clear_error(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(TrashsegError, match="bad.json: not valid JSON"):
        load_coco(tmp_path / "bad.json", tmp_path, {})


def test_mask_cache_rebuilds_only_when_annotations_change(tmp_path):
    ann = {"id": 1, "image_id": 1, "category_id": 1, "segmentation": square(0, 0, 5, 5), "area": 25}
    cache = MaskCache(tmp_path / "cache")
    first = cache.ensure(load_coco(write(tmp_path, [ann]), tmp_path, {}), 1)
    mtime = first.stat().st_mtime_ns
    again = cache.ensure(load_coco(write(tmp_path, [ann], name="copy.json"), tmp_path, {}), 1)
    assert again == first and again.stat().st_mtime_ns == mtime  # same content, same file, not rewritten
    edited = cache.ensure(load_coco(write(tmp_path, [{**ann, "category_id": 2}]), tmp_path, {}), 1)
    assert edited != first
    import cv2

    assert cv2.imread(str(edited), cv2.IMREAD_UNCHANGED)[1, 1] == 9
    remapped = cache.ensure(load_coco(write(tmp_path, [ann]), tmp_path, {"Paper": "Metal"}), 1)
    assert remapped not in (first, edited)


def test_folds_deterministic_and_each_image_validated_once(coco_dir, tmp_path):
    out1, out2 = tmp_path / "f1", tmp_path / "f2"
    make_folds(coco_dir / "train_all.json", out1, 3, 7, {})
    make_folds(coco_dir / "train_all.json", out2, 3, 7, {})
    all_ids = {img["id"] for img in json.loads((coco_dir / "train_all.json").read_text())["images"]}
    seen = []
    for k in range(3):
        valid = json.loads((out1 / f"valid_data{k}.json").read_text())
        train = json.loads((out1 / f"train_data{k}.json").read_text())
        assert (out1 / f"valid_data{k}.json").read_text() == (out2 / f"valid_data{k}.json").read_text()
        v_ids = {i["id"] for i in valid["images"]}
        assert v_ids.isdisjoint({i["id"] for i in train["images"]})
        assert {a["image_id"] for a in valid["annotations"]} <= v_ids
        seen += list(v_ids)
    assert sorted(seen) == sorted(all_ids)


def test_group_folds_keep_groups_whole(coco_dir, tmp_path):
    make_folds(coco_dir / "train_all.json", tmp_path, 2, 0, {}, group_pattern=r"batch_(\d+)")
    for k in range(2):
        valid = json.loads((tmp_path / f"valid_data{k}.json").read_text())
        assert len({i["file_name"].split("/")[0] for i in valid["images"]}) == 1


def test_dataset_yields_integer_targets_at_train_and_score_size(coco_dir, base_cfg):
    cfg = changed(base_cfg, {"train.img_size": 64})
    cs = load_coco(coco_dir / "train_all.json", coco_dir, {})
    items = make_items(cs, MaskCache(cfg.data.cache_dir), progress=False)
    train_item = SegDataset(items, train_transform(cfg))[0]
    assert train_item["image"].shape == (3, 64, 64) and train_item["mask"].shape == (64, 64)
    assert train_item["mask"].dtype.is_floating_point is False
    val_item = SegDataset(items, eval_transform(cfg), mask_size=256)[0]
    assert val_item["image"].shape == (3, 64, 64) and val_item["mask"].shape == (256, 256)


def test_missing_image_names_the_file(coco_dir, base_cfg):
    cs = load_coco(coco_dir / "train_all.json", coco_dir, {})
    (coco_dir / cs.file_name(cs.image_ids[0])).unlink()
    items = make_items(cs, MaskCache(base_cfg.data.cache_dir), progress=False)
    with pytest.raises(TrashsegError, match=r"0000\.jpg: image file missing"):
        SegDataset(items, eval_transform(base_cfg))[0]
