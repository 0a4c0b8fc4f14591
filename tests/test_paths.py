"""Every path the kit builds from a name read in a JSON or CSV stays inside its folder: one check
(trashseg.paths) behind the COCO loader (train, check-data, report), import-probs, predict, pseudo and
the submission's test.json names (ensemble, vote, validate-submission); hostile names ('..',
absolute, a symbolic link leading out) are refused with one line naming the file, never followed."""

import json

import cv2
import numpy as np
import pytest

from helpers import make_process, settings
from trashseg.errors import TrashsegError
from trashseg.paths import check_name, contained

HOSTILE = ["../outside.jpg", "batch_01/../../outside.jpg", "/etc/passwd", "\\\\server\\share\\x.jpg", "C:/x.jpg", ""]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused(tmp_path, name):
    with pytest.raises(TrashsegError, match=r"^test\.json: file_name: .* escapes"):
        check_name(name, "test.json: file_name")
    with pytest.raises(TrashsegError, match="escapes"):
        contained(tmp_path, name, "test.json: file_name")


def test_links_out_of_the_folder_are_refused_links_inside_are_not(tmp_path):
    root, outside = tmp_path / "data", tmp_path / "elsewhere"
    (root / "batch_01").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"x")
    (root / "batch_01" / "real.jpg").write_bytes(b"x")
    (root / "batch_01" / "link.jpg").symlink_to(outside / "secret.jpg")
    (root / "batch_02").symlink_to(outside, target_is_directory=True)
    (root / "batch_01" / "alias.jpg").symlink_to(root / "batch_01" / "real.jpg")
    assert contained(root, "batch_01/real.jpg", "j") == root / "batch_01" / "real.jpg"
    assert contained(root, "batch_01/alias.jpg", "j") == root / "batch_01" / "alias.jpg"  # stays inside
    assert contained(root, "batch_01/not_yet.png", "j") == root / "batch_01" / "not_yet.png"
    assert contained(root, "12:00:05.jpg", "j") == root / "12:00:05.jpg"  # a colon is no drive letter
    for name in ("batch_01/link.jpg", "batch_02/secret.jpg"):
        with pytest.raises(TrashsegError, match=rf"^j: '{name}' leads out of .* through a symbolic link"):
            contained(root, name, "j")
    # the folder itself may be a link (data -> /mnt/disk/data): it is resolved first
    (tmp_path / "linked").symlink_to(root, target_is_directory=True)
    assert contained(tmp_path / "linked", "batch_01/real.jpg", "j") == tmp_path / "linked" / "batch_01" / "real.jpg"


def write_image(path, size=(16, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.zeros((*size, 3), np.uint8))


def test_coco_loader_and_check_data_refuse_a_photo_linked_from_outside(coco_dir, tmp_path):
    from trashseg.data.coco import load_coco

    data = json.loads((coco_dir / "train_all.json").read_text())
    first = data["images"][0]["file_name"]
    write_image(tmp_path / "elsewhere" / "photo.jpg", (data["images"][0]["height"], data["images"][0]["width"]))
    (coco_dir / first).unlink()
    (coco_dir / first).symlink_to(tmp_path / "elsewhere" / "photo.jpg")
    cs = load_coco(coco_dir / "train_all.json", coco_dir, {})
    with pytest.raises(TrashsegError, match="leads out of .* through a symbolic link"):
        cs.image_path(cs.image_ids[0])
    proc = make_process("check-data", DATA_DIR=coco_dir, ARGS=f"--set data.cache_dir={tmp_path / 'cache'}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"problem: {coco_dir / 'train_all.json'}: file_name: '{first}' leads out of" in proc.stdout


@pytest.mark.parametrize("name", ["../outside.jpg", "/tmp/outside.jpg"])
def test_import_probs_refuses_hostile_names(tmp_path, name):
    from trashseg.ensembling.import_probs import source_file

    src = tmp_path / "src"
    src.mkdir()
    np.save(tmp_path / "outside.npy", np.zeros((11, 4, 4), np.float32))  # what '..' would reach
    with pytest.raises(TrashsegError, match=r"^valid\.json: file_name: .* escapes SRC="):
        source_file(src, name, "valid.json: file_name")


def test_import_probs_refuses_an_output_linked_from_outside(tmp_path, coco_dir):
    from trashseg.ensembling.import_probs import import_probs

    src, outside = tmp_path / "src", tmp_path / "outside"
    images = json.loads((coco_dir / "test.json").read_text())["images"]
    for img in images:
        path = src / img["file_name"]
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path.with_suffix(".npy"), np.full((11, 8, 8), 1 / 11, np.float32))
    outside.mkdir()
    np.save(outside / "x.npy", np.full((11, 8, 8), 1 / 11, np.float32))
    victim = (src / images[-1]["file_name"]).with_suffix(".npy")
    victim.unlink()
    victim.symlink_to(outside / "x.npy")
    cfg = settings(f"data.data_dir={coco_dir}", f"train.runs_dir={tmp_path / 'runs'}", models=False)
    with pytest.raises(TrashsegError, match="leads out of .* through a symbolic link"):
        import_probs(cfg, src, "other", "test", coco_dir / "test.json", "auto", None)
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def test_predict_refuses_a_photo_linked_from_outside(tmp_path):
    from trashseg.inference.predict import predict_folder

    photos, outside = tmp_path / "photos", tmp_path / "outside"
    write_image(photos / "a.jpg")
    write_image(outside / "b.jpg")
    (photos / "b.jpg").symlink_to(outside / "b.jpg")
    with pytest.raises(TrashsegError, match=r"^IMAGES=.*: 'b\.jpg' leads out of"):
        predict_folder(tmp_path / "no_run_needed", photos, tmp_path / "out")


@pytest.mark.parametrize("name", ["../x.jpg", "/abs/x.jpg"])
def test_test_json_names_are_checked_for_ensemble_vote_pseudo(tmp_path, name):
    from trashseg.ensembling.pseudo import make_pseudo
    from trashseg.ensembling.submission import expected_ids_from_test_json

    (tmp_path / "test.json").write_text(
        json.dumps({"images": [{"id": 0, "file_name": name, "width": 4, "height": 4}], "categories": []})
    )
    with pytest.raises(TrashsegError, match=rf"test\.json: file_name: '{name}' escapes"):
        expected_ids_from_test_json(tmp_path / "test.json")  # ensemble, vote and validate-submission
    cfg = settings(f"data.data_dir={tmp_path}", models=False)
    with pytest.raises(TrashsegError, match=rf"test\.json: file_name: '{name}' escapes"):
        make_pseudo(cfg, [], None, 0.9, 1)
    proc = make_process("validate-submission", DATA_DIR=tmp_path, FILE=tmp_path / "any.csv")
    assert proc.returncode == 2 and "escapes" in proc.stderr and "Traceback" not in proc.stderr
