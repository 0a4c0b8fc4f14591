"""The catalogue of hostile inputs: each gives a clear error naming file and entry, or a logged repair."""

import json

import cv2
import numpy as np
import pytest
import torch

from trashseg.data.coco import load_coco
from trashseg.data.images import read_rgb
from trashseg.data.masks import paint_mask
from trashseg.errors import TrashsegError
from trashseg.modeling.checkpoint import load_checkpoint

CATS = [{"id": 1, "name": "Paper"}]
IMG = {"id": 1, "file_name": "a.jpg", "width": 20, "height": 10}


def load(tmp_path, data, name="bad.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return load_coco(path, tmp_path, {})


def ann(**kw):
    return {"id": 7, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 8, 1, 8, 8]], "area": 20, **kw}


@pytest.mark.parametrize(
    "data,match",
    [
        ('{"images": [', "bad.json: not valid JSON"),
        ({"annotations": []}, "bad.json: missing top-level key\\(s\\) images"),
        ([1, 2], "expected a JSON object"),
        ({"images": {"id": 1}}, "'images' must be a list"),
        ({"images": [IMG, IMG]}, "duplicate image id 1 \\(images\\[1\\], a.jpg\\)"),
        ({"images": [{**IMG, "width": 0}]}, "images\\[0\\] \\(a.jpg\\) has no valid width"),
        ({"images": [{**IMG, "file_name": "/etc/passwd"}]}, "escapes the data folder"),
        ({"images": [{**IMG, "file_name": "batch/../../x.jpg"}]}, "escapes the data folder"),
        (
            {"images": [IMG], "categories": CATS, "annotations": [ann(image_id=99)]},
            "annotations\\[0\\] \\(id 7, image 99\\): points at an image id that is not in 'images'",
        ),
        ({"images": [IMG], "categories": CATS, "annotations": [ann(category_id=5)]}, "category_id 5 is not in"),
        (
            {"images": [IMG], "categories": [{"id": 1, "name": "Bottle"}], "annotations": []},
            "unknown category id 1 'Bottle'; add them to data.class_map",
        ),
        (
            {"images": [IMG], "categories": CATS, "annotations": [ann(segmentation="oops")]},
            "segmentation must be a polygon list or an RLE object",
        ),
        (
            {"images": [IMG], "categories": CATS, "annotations": [ann(segmentation={"size": [5, 5], "counts": [25]})]},
            "RLE size \\[5, 5\\] differs from the image's",
        ),
        (
            {
                "images": [IMG],
                "categories": CATS,
                "annotations": [ann(segmentation={"size": [10, 20], "counts": [5, 5]})],
            },
            "summing to 200",
        ),
        (
            {
                "images": [IMG],
                "categories": CATS,
                "annotations": [ann(segmentation={"size": [10, 20], "counts": "zz~"})],
            },
            "compressed RLE 'counts' is malformed",
        ),
    ],
)
def test_bad_json_is_a_clear_error(tmp_path, data, match):
    with pytest.raises(TrashsegError, match=match) as err:
        load(tmp_path, data)
    assert "bad.json" in str(err.value) or "expected a JSON object" in str(err.value)


def test_polygon_repairs_are_logged_not_fatal(tmp_path):
    anns = [
        ann(id=1, segmentation=[[1, 1, 2, 2]]),
        ann(id=2, segmentation=[[1, 1, 5, float("nan"), 3, 3]]),
        ann(id=3, segmentation=[[1, 1, 900, 1, 900, 900]]),
        ann(id=4, area=None),
        ann(id=5, segmentation=[[-2, -2, 30, -2, 30, 15, -2, 15]], area=1000),
    ]
    cs = load(tmp_path, {"images": [IMG], "categories": CATS, "annotations": anns})
    text = "\n".join(cs.problems)
    assert "(id 1, image 1): polygon part 0 has 2 point(s)" in text
    assert "(id 2, image 1): polygon part 0 has non-numeric or NaN/inf" in text
    assert "(id 3, image 1): polygon part 0 lies far outside the 20x10 image" in text
    assert "(id 4, image 1): 'area' missing or not a number; computed" in text
    mask = paint_mask(cs, 1)
    assert (mask == 2).all()  # slightly-out-of-frame polygon 5 is clipped to the image


def test_empty_annotation_list_gives_background(tmp_path):
    cs = load(tmp_path, {"images": [IMG], "categories": CATS, "annotations": []})
    assert (paint_mask(cs, 1) == 0).all() and cs.problems == []


@pytest.mark.parametrize("kind", ["gray", "rgba", "16bit", "exif"])
def test_odd_image_modes_read_as_rgb(tmp_path, kind):
    rgb = np.zeros((10, 20, 3), dtype=np.uint8)
    rgb[:, :10] = (200, 100, 50)
    if kind == "gray":
        path = tmp_path / "g.png"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    elif kind == "rgba":
        path = tmp_path / "a.png"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA))
    elif kind == "16bit":
        path = tmp_path / "d.png"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    else:
        from PIL import Image

        path = tmp_path / "e.jpg"
        exif = Image.Exif()
        exif[0x0112] = 6  # stored sideways: viewers rotate it 90 degrees clockwise
        Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1))).save(path, exif=exif, quality=95)
    image = read_rgb(path)
    assert image.shape == (10, 20, 3) and image.dtype == np.uint8
    if kind != "gray":
        assert abs(int(image[5, 2, 0]) - 200) < 12 and abs(int(image[5, 15, 0])) < 12


def test_truncated_and_non_images_are_named(tmp_path):
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), np.full((32, 32, 3), 90, np.uint8))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[:-200])
    with pytest.raises(TrashsegError, match="cut.jpg: truncated JPEG"):
        read_rgb(cut)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(TrashsegError, match="notes.jpg: unreadable or not an image"):
        read_rgb(text)
    with pytest.raises(TrashsegError, match="gone.jpg: image file missing"):
        read_rgb(tmp_path / "gone.jpg")


def test_size_differing_from_json_is_named(coco_dir, base_cfg):
    from trashseg.data.dataset import SegDataset
    from trashseg.data.items import make_items
    from trashseg.data.masks import MaskCache
    from trashseg.data.transforms import eval_transform

    data = json.loads((coco_dir / "train_all.json").read_text())
    data["images"][0]["width"] += 3
    (coco_dir / "edited.json").write_text(json.dumps(data))
    cs = load_coco(coco_dir / "edited.json", coco_dir, {})
    items = make_items(cs, MaskCache(base_cfg.data.cache_dir), progress=False)
    with pytest.raises(TrashsegError, match=r"0000\.jpg: image is \d+x\d+ but the JSON says"):
        SegDataset(items, eval_transform(base_cfg))[0]


class Payload:
    """Stands for anything pickled into a checkpoint."""


def test_checkpoints_corrupt_truncated_or_pickled_are_refused(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"model": {"w": torch.ones(2)}, "config": {"a": 1}}, good)
    assert load_checkpoint(good)["config"] == {"a": 1}
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:100])
    with pytest.raises(TrashsegError, match="cut.pt: not a loadable trashseg checkpoint"):
        load_checkpoint(cut)
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": {}, "config": {}, "extra": Payload()}, pickled)
    with pytest.raises(TrashsegError, match="pickled.pt: .*pickled objects, which are never loaded"):
        load_checkpoint(pickled)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.ones(1)}, other)
    with pytest.raises(TrashsegError, match="not a trashseg checkpoint"):
        load_checkpoint(other)


def test_every_torch_load_in_the_kit_is_weights_only():
    import re

    from helpers import ROOT

    for path in list((ROOT / "code").rglob("*.py")) + list((ROOT / "bench").rglob("*.py")):
        for call in re.findall(r"torch\.load\([^)]*\)", path.read_text()):
            assert "weights_only=True" in call, f"{path}: {call}"
        assert "allow_pickle=True" not in path.read_text(), path
