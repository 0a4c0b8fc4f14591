import pytest

from trashseg.config import load_config
from trashseg.data.classes import CLASSES, resolve_category_ids
from trashseg.errors import TrashsegError


def test_eleven_classes_in_competition_order():
    assert CLASSES == (
        "Background",
        "General trash",
        "Paper",
        "Paper pack",
        "Metal",
        "Glass",
        "Plastic",
        "Styrofoam",
        "Plastic bag",
        "Battery",
        "Clothing",
    )


def test_categories_matched_by_name_not_id_or_position():
    cats = [{"id": 7, "name": "Clothing"}, {"id": 1, "name": "paper  PACK"}, {"id": 3, "name": "Backgroud"}]
    assert resolve_category_ids(cats, {"Backgroud": "Background"}, "x.json") == {7: 10, 1: 3, 3: 0}


def test_class_map_aliases_and_ignore():
    cats = [{"id": 1, "name": "general_trashbag"}, {"id": 2, "name": "UNKNOWN"}]
    got = resolve_category_ids(cats, {"general_trashbag": "General trash", "UNKNOWN": "ignore"}, "x.json")
    assert got == {1: 1, 2: None}


def test_unknown_category_names_file_and_category():
    with pytest.raises(TrashsegError, match=r"train\.json: unknown category id 5 'Bottle'"):
        resolve_category_ids([{"id": 5, "name": "Bottle"}], {}, "train.json")


def test_default_class_map_covers_12_class_variant_and_sample_source():
    cfg = load_config()
    cats = [{"id": i, "name": n} for i, n in enumerate(["Backgroud", "UNKNOWN", "General trash", "other_trashbag"])]
    assert resolve_category_ids(cats, cfg.data.class_map, "x") == {0: 0, 1: None, 2: 1, 3: 8}


def test_overrides_layer_over_model_config(tmp_path):
    model_cfg = tmp_path / "config.yaml"
    model_cfg.write_text("model:\n  name: deeplab\n  arch: DeepLabV3Plus\n")
    cfg = load_config(model_cfg, ["train.epochs=3", "optimizer.lr=3e-4", "model.weights=none"])
    assert cfg.model.arch == "DeepLabV3Plus"
    assert cfg.train.epochs == 3 and cfg.optimizer.lr == pytest.approx(3e-4)
    assert cfg.model.weights == "none"
    assert cfg.train.batch_size == 8  # untouched default


def test_unknown_key_suggests_close_match():
    with pytest.raises(TrashsegError, match="did you mean 'epochs'"):
        load_config(None, ["train.epoch=3"])


def test_nested_overrides_merge_and_class_map_extends():
    cfg = load_config(
        None,
        ["augment.normalize.mean=[0.5,0.5,0.5]", "augment.normalize.std=[0.5,0.5,0.5]", "data.class_map.Bottle=Glass"],
    )
    assert cfg.augment.normalize.model_dump() == {"mean": [0.5] * 3, "std": [0.5] * 3}
    assert cfg.data.class_map["Bottle"] == "Glass" and cfg.data.class_map["UNKNOWN"] == "ignore"
