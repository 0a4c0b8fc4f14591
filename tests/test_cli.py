"""The `trashseg` command: the registry finds models and presets from their files, `config show`
names where each value came from, and the Make spelling of the variables reaches the same options."""

import re
import subprocess
import sys

import pytest

from helpers import ROOT
from trashseg.cli import options
from trashseg.errors import TrashsegError


def trashseg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trashseg", *args], capture_output=True, text=True, cwd=ROOT)


def test_config_show_prints_the_preset_recipe_with_the_source_of_every_value():
    proc = trashseg("config", "show", "--exp", "cpu-lite", "--fold", "2", "--set", "train.epochs=3")
    assert proc.returncode == 0, proc.stderr
    lines = dict(re.findall(r"^(\S+):\s+(.*?)\s*$", proc.stdout, flags=re.M))
    assert lines["model.encoder"].startswith('"tu-tf_efficientnet_lite0" ')
    sources = {key: value.rsplit("# ", 1)[1] for key, value in lines.items()}
    assert sources["model.encoder"] == "configs/cpu-lite.yaml" and sources["model.name"] == "configs/cpu-lite.yaml"
    assert sources["model.arch"] == "code/FPN/config.yaml" and sources["loss.lovasz_weight"] == "configs/cpu-lite.yaml"
    assert (
        sources["train.fold"] == "FOLD=2" and sources["train.epochs"] == "--set" and sources["train.seed"] == "defaults"
    )
    assert lines["train.fold"].startswith("2 ") and lines["train.epochs"].startswith("3 ")
    assert len(lines) > 60  # every key, not just the ones the preset sets


def test_config_list_finds_model_folders_and_presets_and_variables_name_their_options():
    listed = trashseg("config", "list").stdout
    assert re.search(r"^  fpn +code/FPN/config.yaml$", listed, re.M)
    assert re.search(r"^  cpu-lite +base fpn$", listed, re.M)
    names = trashseg("config", "variables", "--names").stdout.split()
    assert names == list(options.VARS) and {"FOLD", "EXP", "MODELS", "TRIALS"} <= set(names)
    table = trashseg("config", "variables").stdout
    assert re.search(r"^  BATCH +--batch +.*\[train.batch_size, eval.batch_size\]$", table, re.M)


def test_make_spelling_becomes_the_option_and_other_targets_variables_are_left_out():
    p = options.parser("folds", "", ["DATA_DIR", "K"])
    argv = options.from_make(["--DATA_DIR=d", "--K=3", "--FOLD=1", "--EPOCHS='2'", "--k", "4"], p)
    assert argv == ["--data-dir=d", "--k=3", "--k", "4"]
    args = options.parse(p, ["--K=3"])
    assert options.count(args, "K") == 3


@pytest.mark.parametrize(
    "given,expected",
    [
        (dict(TTA="2"), "TTA=2: use 1 (on) or 0 (off)"),
        (dict(GPUS="two"), "GPUS=two: must be a whole number"),
    ],
)
def test_variables_are_checked_before_any_work(given, expected):
    p = options.parser("train", "", ["TTA", "GPUS"])
    args = options.parse(p, [f"--{k}={v}" for k, v in given.items()])
    with pytest.raises(TrashsegError, match=re.escape(expected)):
        options.check(args)


def test_each_variable_sets_its_keys_and_pseudo_and_logger_their_values():
    p = options.parser("train", "", options.RUN_SETTINGS, sets=True)
    args = options.parse(p, ["--BATCH=4", "--PSEUDO=1", "--LOGGER=tensorboard,wandb", "--set", "train.seed=3"])
    assert options.settings_overrides(args) == [
        ("BATCH=4", "train.batch_size=4"),
        ("BATCH=4", "eval.batch_size=4"),
        ("PSEUDO=1", "data.train_json=train_data_pseudo{fold}.json"),
        ("LOGGER=tensorboard,wandb", "tracking.loggers=[tensorboard,wandb]"),
        ("--set", "train.seed=3"),
    ]


def test_a_model_folder_script_is_the_verb_for_its_folder():
    proc = subprocess.run(
        [sys.executable, "code/FPN/train.py", "--help"], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert proc.stdout.startswith("usage: trashseg train")
    bad = subprocess.run(
        [sys.executable, "code/ensemble.py", "--models", "nobody", "--runs", "/nonexistent"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_every_settings_key_has_its_default_and_a_description_in_the_schema():
    import json

    from helpers import settings

    printed = trashseg("config", "keys").stdout
    rows = re.findall(r"^(\S+):\s+(.*?)\s+# (.*)$", printed, flags=re.M)
    defaults = settings(models=False).model_dump()
    assert len(rows) > 60 and all(text.strip() for _, _, text in rows)
    for key, value, _ in rows:
        node = defaults
        for part in key.split("."):
            node = node[part]
        assert json.loads(value) == node, key


def test_a_switch_given_as_0_turns_off_what_a_preset_turns_on(tmp_path):
    """TTA=0 (CRF=0, RESUME=0 ...) is said, not dropped: a preset whose tta block is on is overridden."""
    p = options.parser("infer", "", ["TTA", "CRF", "RESUME"])
    args = options.parse(p, ["--TTA=0", "--CRF=1"])
    assert options.settings_overrides(args) == [("TTA=0", "tta.enabled=false"), ("CRF=1", "crf.enabled=true")]
    from trashseg.config import load_config

    preset = tmp_path / "tta-on.yaml"
    preset.write_text("base: fpn\ntta: {enabled: true}\n")
    on = load_config(ROOT / "code/FPN/config.yaml", [], preset=preset)
    off = load_config(ROOT / "code/FPN/config.yaml", options.settings_overrides(args), preset=preset)
    assert on.tta.enabled is True and off.tta.enabled is False


def test_merge_stages_read_the_variant_the_runs_were_trained_for(tmp_path):
    """A preset with tta on (cpu-lite) makes infer write the TTA variant; oof, fit-ensemble and ensemble
    given those runs read that variant unless TTA=0/1 is said, and read plain when any run is plain."""
    for model, tta in (("a", True), ("b", True), ("c", False)):
        for fold in (0, 1):
            (tmp_path / model / f"fold{fold}").mkdir(parents=True)
            (tmp_path / model / f"fold{fold}" / "config.yaml").write_text(f"tta: {{enabled: {str(tta).lower()}}}\n")
    p = options.parser("ensemble", "", ["MODELS", *options.STAGE_SETTINGS])

    def tta(models, *given):
        args = options.parse(p, [f"--RUNS={tmp_path}", *given])
        return options.config(args, models=False, trained=models).tta.enabled

    assert tta(["a", "b"]) is True and tta(["a", "b"], "--TTA=0") is False
    assert tta(["a", "c"]) is False and tta(["a", "c"], "--TTA=1") is True
    assert tta(["a", "missing"]) is False and tta([]) is False
