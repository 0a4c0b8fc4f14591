"""Kaggle targets with a stand-in kaggle command: credentials checked, never shown, CSV validated first."""

import json
import os
import subprocess
import zipfile

from helpers import make_cmd

SECRET = "0123456789abcdef-secret"


def fake_kaggle(tmp_path):
    """A kaggle stand-in that records its call, leaks the key to stdout and 'downloads' a zip."""
    script = tmp_path / "kaggle"
    script.write_text(f"""#!/usr/bin/env python3
import os, sys, zipfile
open({str(tmp_path / "called")!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')
print('debug key=' + os.environ.get('KAGGLE_KEY', ''))
if sys.argv[1:3] == ['datasets', 'status']:
    print('ready' if os.environ.get('FAKE_DATASET_EXISTS') else '404 - Not Found')
if sys.argv[2] == 'download':
    dest = sys.argv[sys.argv.index('-p') + 1]
    with zipfile.ZipFile(os.path.join(dest, 'comp.zip'), 'w') as zf:
        zf.writestr('train_all.json', '{{}}')
""")
    script.chmod(0o755)
    return script


def make(target, tmp_path, env_extra, **variables):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE")}
    env.update(HOME=str(tmp_path / "home"), TRASHSEG_KAGGLE_BIN=str(fake_kaggle(tmp_path)), **env_extra)
    return subprocess.run(make_cmd(target, **variables), capture_output=True, text=True, env=env)


def test_missing_credentials_is_a_clear_message(tmp_path):
    proc = make("download", tmp_path, {}, COMPETITION="trash", DATA_DIR=tmp_path / "data")
    assert proc.returncode != 0
    assert "no Kaggle credentials found" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "called").exists()


def test_download_unzips_and_never_shows_the_key(tmp_path):
    proc = make(
        "download",
        tmp_path,
        {"KAGGLE_USERNAME": "me", "KAGGLE_KEY": SECRET},
        COMPETITION="trash",
        DATA_DIR=tmp_path / "data",
    )
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr and "debug key=****" in proc.stdout
    assert (tmp_path / "data" / "train_all.json").is_file() and not (tmp_path / "data" / "comp.zip").exists()
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "called"]  # the stand-in's own log aside
    assert written and not [p for p in written if SECRET.encode() in p.read_bytes()]


def test_submit_validates_before_sending(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.json").write_text(json.dumps({"images": [{"id": 0, "file_name": "a.jpg", "width": 4, "height": 4}]}))
    bad = tmp_path / "bad.csv"
    bad.write_text("image_id,PredictionString\na.jpg,1 2 3\n")
    creds = tmp_path / "home" / ".kaggle"
    creds.mkdir(parents=True)
    (creds / "kaggle.json").write_text(json.dumps({"username": "me", "key": SECRET}))
    proc = make("submit", tmp_path, {}, COMPETITION="trash", DATA_DIR=data, FILE=bad)
    assert proc.returncode != 0 and "3 values, expected 65536" in proc.stderr
    assert not (tmp_path / "called").exists()

    good = tmp_path / "good.csv"
    good.write_text("image_id,PredictionString\na.jpg," + " ".join(["0"] * 65536) + "\n")
    proc = make("submit", tmp_path, {}, COMPETITION="trash", DATA_DIR=data, FILE=good, MESSAGE="fold0")
    assert proc.returncode == 0, proc.stderr
    assert "competitions submit -c trash -f" in (tmp_path / "called").read_text()
    assert SECRET not in proc.stdout + proc.stderr


def test_zip_members_cannot_escape(tmp_path):
    from trashseg.ensembling.kaggle import safe_extract
    from trashseg.errors import TrashsegError

    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape.txt", "x")
    try:
        safe_extract(archive, tmp_path / "data")
        raise AssertionError("extracted")
    except TrashsegError as exc:
        assert "outside" in str(exc)
    assert not (tmp_path / "escape.txt").exists()


def a_bundle(tmp_path, ident):
    bundle = tmp_path / "bundles" / "b1"
    (bundle / "wheels").mkdir(parents=True)
    (bundle / "wheels" / "x-1.0-py3-none-any.whl").write_bytes(b"0" * 1000)
    (bundle / "dataset-metadata.json").write_text(json.dumps({"title": "trashseg b1", "id": ident}))
    return dict(BUNDLES=tmp_path / "bundles")


def test_kaggle_upload_creates_then_versions_and_dry_run_sends_nothing(tmp_path):
    where = a_bundle(tmp_path, "me/trashseg-b1")
    creds = {"KAGGLE_USERNAME": "me", "KAGGLE_KEY": SECRET}
    proc = make("kaggle-upload", tmp_path, creds, **where, NAME="b1", DRY_RUN=1)
    assert proc.returncode == 0, proc.stderr
    assert "kaggle-upload: me/trashseg-b1 from" in proc.stdout and "2 files" in proc.stdout
    assert "DRY_RUN=1: nothing sent" in proc.stdout and not (tmp_path / "called").exists()

    proc = make("kaggle-upload", tmp_path, {}, **where, NAME="b1")
    assert proc.returncode != 0 and "no Kaggle credentials found" in proc.stderr
    assert not (tmp_path / "called").exists()

    proc = make("kaggle-upload", tmp_path, creds, **where, NAME="b1")
    assert proc.returncode == 0, proc.stderr
    called = (tmp_path / "called").read_text().splitlines()
    assert called[0] == "datasets status me/trashseg-b1"
    assert called[1] == f"datasets create -p {where['BUNDLES'] / 'b1'} --dir-mode zip"
    proc = make("kaggle-upload", tmp_path, {**creds, "FAKE_DATASET_EXISTS": "1"}, **where, NAME="b1", MESSAGE="round 2")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "called").read_text().splitlines()[-1] == (
        f"datasets version -p {where['BUNDLES'] / 'b1'} -m round 2 --dir-mode zip"
    )
    assert SECRET not in proc.stdout + proc.stderr and "debug key=****" in proc.stdout
    leaked = [
        p for p in tmp_path.rglob("*") if p.is_file() and p.name != "called" and SECRET.encode() in p.read_bytes()
    ]
    assert not leaked


def test_kaggle_upload_refuses_a_bundle_with_no_owner(tmp_path):
    where = a_bundle(tmp_path, "your-kaggle-username/trashseg-b1")
    proc = make("kaggle-upload", tmp_path, {"KAGGLE_USERNAME": "me", "KAGGLE_KEY": SECRET}, **where, NAME="b1")
    assert proc.returncode != 0 and "KAGGLE_DATASET=<you>/<slug>" in proc.stderr
    assert proc.stderr.count("error:") == 1 and not (tmp_path / "called").exists()
    proc = make("kaggle-upload", tmp_path, {}, BUNDLES=tmp_path / "bundles", NAME="nope")
    assert proc.returncode != 0 and "make kaggle-bundle NAME=nope writes it" in proc.stderr


def test_the_bundles_dataset_id_names_the_user_never_the_key(tmp_path, monkeypatch):
    from trashseg.ensembling.bundle import dataset_id
    from trashseg.errors import TrashsegError

    for k in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert dataset_id(None, "Final_5folds") == "your-kaggle-username/final-5folds"  # no credentials: a placeholder
    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle" / "kaggle.json").write_text(json.dumps({"username": "ann", "key": SECRET}))
    assert dataset_id(None, "x") == "ann/trashseg-x"
    monkeypatch.setenv("KAGGLE_USERNAME", "bob")
    assert dataset_id(None, "final") == "bob/final" and dataset_id("me/my-bundle", "final") == "me/my-bundle"
    for bad in ("me", "me/UPPER", "me/a", "/slug"):
        try:
            dataset_id(bad, "final")
        except TrashsegError as exc:
            assert f"KAGGLE_DATASET={bad}" in str(exc)
        else:
            raise AssertionError(bad)


def test_the_bundles_wheels_are_the_ones_kaggles_python_installs(tmp_path):
    """A cached wheel counts only when KAGGLE_PYTHON on x86_64 Linux installs it: a cp311 wheel is not
    taken for 3.12 (it is downloaded instead), a pure or abi3 one is taken for both."""
    from trashseg.ensembling.bundle import cached_wheel

    for name in (
        "numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        "numpy-2.4.6-cp311-cp311-macosx_14_0_arm64.whl",
        "tqdm-4.67.1-py3-none-any.whl",
        "hf_xet-1.8.0-cp38-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        "pydantic_core-2.50.5-cp312-cp312-win_amd64.whl",
        "nvidia_nvtx-13.0.85-py3-none-manylinux1_x86_64.manylinux_2_5_x86_64.whl",  # torch's, INCLUDE_TORCH=1
    ):
        (tmp_path / name).touch()
    assert cached_wheel(tmp_path, "numpy", "2.4.6", "3.11").name.startswith("numpy-2.4.6-cp311-cp311-manylinux")
    assert cached_wheel(tmp_path, "numpy", "2.4.6", "3.12") is None
    assert cached_wheel(tmp_path, "numpy", "2.4.7", "3.11") is None
    for python in ("3.11", "3.12"):
        assert cached_wheel(tmp_path, "tqdm", "4.67.1", python) is not None
        assert cached_wheel(tmp_path, "hf-xet", "1.8.0", python) is not None
    assert cached_wheel(tmp_path, "pydantic-core", "2.50.5", "3.12") is None  # Windows only
    assert cached_wheel(tmp_path, "nvidia-nvtx", "13.0.85", "3.11") is not None  # glibc 2.5 runs on 2.35


def test_the_notebook_names_the_attached_folders_when_the_competition_is_not_there(tmp_path):
    from trashseg.ensembling.bundle_infer import find_test_json
    from trashseg.errors import TrashsegError

    inputs = tmp_path / "input"
    (inputs / "my-bundle").mkdir(parents=True)
    (inputs / "trash-seg-2026" / "data").mkdir(parents=True)
    (inputs / "trash-seg-2026" / "data" / "test.json").write_text("{}")
    assert find_test_json(inputs / "trash-seg-2026") == inputs / "trash-seg-2026" / "data" / "test.json"
    try:
        find_test_json(inputs / "trash-seg")
    except TrashsegError as exc:
        assert "no such folder" in str(exc) and "my-bundle, trash-seg-2026" in str(exc)
    else:
        raise AssertionError("a missing competition folder was not reported")
