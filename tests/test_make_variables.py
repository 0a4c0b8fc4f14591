"""What you type is what runs: only the variables on make's command line (or TRASHSEG_<NAME> from a job
scheduler) reach a verb, echoed as the verb documents them; a shell's own NAME or the image's ENCODER
never does; a typo, a variable the target does not take and one it sets itself each stop with one
line naming the nearest or the right one; every bad value and key is reported at once."""

import json
import re
import shutil
import subprocess

import pytest

from helpers import ROOT, SAMPLE, cpu_env, make_cmd, make_process

# what the image's environment held (Dockerfile ENV): it must not change what a target trains
IMAGE_ENV = {"ENCODER": "tu-tf_efficientnet_lite0", "WEIGHTS": "/opt/weights/encoder.pth", "NAME": "mylaptop"}
IMAGE_ENV |= {"ENCODER_WEIGHTS": "none", "HF_HUB_OFFLINE": "1", "TRASHSEG_WEIGHTS_CACHE": "/opt/weights"}


def echoed(target: str, env: dict | None = None, **variables) -> str:
    """The verb line `make -n` prints for ``target``."""
    cmd = make_cmd(target, **variables)
    cmd.insert(1, "-n")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=cpu_env(env))
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "-m trashseg " in line]
    assert len(lines) == 1, proc.stdout
    return " ".join(lines[0].split("-m trashseg ", 1)[1].split(" ")).replace("  ", " ").strip()


def one_line_error(target: str, env: dict | None = None, **variables) -> str:
    proc = make_process(target, env=env, **variables)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0].removeprefix("error: ")


def test_make_echoes_the_verbs_documented_spelling_and_only_what_was_typed():
    assert echoed("train-fpn", FOLD=0) == "train --fold 0 --model fpn"
    assert echoed("train", MODEL="fpn", FOLD=0, EPOCHS=3) in (
        "train --model fpn --fold 0 --epochs 3",
        "train --fold 0 --model fpn --epochs 3",
        "train --model fpn --epochs 3 --fold 0",
        "train --fold 0 --epochs 3 --model fpn",
        "train --epochs 3 --model fpn --fold 0",
        "train --epochs 3 --fold 0 --model fpn",
    )
    assert echoed("ensemble", MODELS="fpn deeplab") == "ensemble --models 'fpn deeplab'"
    assert echoed("folds", K=3, GROUP="^(batch_[^/]+)/") in (
        "folds --k 3 --group '^(batch_[^/]+)/'",
        "folds --group '^(batch_[^/]+)/' --k 3",
    )


def test_the_shells_and_the_images_variables_change_nothing():
    """NAME (WSL sets it to the computer's name), MODEL, K, PORT and the image's ENCODER / WEIGHTS in
    the environment: the targets run exactly what they run without them."""
    env = {**IMAGE_ENV, "MODEL": "deeplab", "K": "7", "PORT": "1", "N": "3"}
    for target, variables in (("train-fpn", {"FOLD": 0}), ("ensemble", {}), ("train", {"EXP": "upernet-swin"})):
        assert echoed(target, env=env, **variables) == echoed(target, **variables)
    assert echoed("ensemble", env=env) == "ensemble"


SHOW_ALL = """
import contextlib, io, json, sys
from trashseg.cli.config import config
shown = {}
for args in json.loads(sys.argv[1]):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        config(["show", *args])
    shown[" ".join(args)] = buf.getvalue()
print(json.dumps(shown))
"""


def settings_shown(runs: list[list[str]], env: dict | None = None) -> dict[str, dict[str, str]]:
    """`trashseg config show <args>` of each of ``runs`` (one process, the environment ``env``), as
    key -> value (sources aside)."""
    cmd = [str(ROOT / ".venv" / "bin" / "python"), "-c", SHOW_ALL, json.dumps(runs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=cpu_env(env), cwd=ROOT, check=True)
    keys = re.compile(r"^([a-z_0-9]+(?:\.[a-z_0-9]+)+):(.*)$")  # `section.key: value  # source` lines only
    return {
        run: {m.group(1): m.group(2).split("#", 1)[0].strip() for m in map(keys.match, text.splitlines()) if m}
        for run, text in json.loads(proc.stdout.strip().splitlines()[-1]).items()
    }


def test_every_model_folder_and_preset_resolves_the_same_under_the_images_environment():
    """make train-<model> FOLD=0 and make train EXP=<preset> FOLD=0: the same verb line and the same
    settings, key by key, with the environment the image had (ENCODER, WEIGHTS, NAME, ...) as without."""
    import shlex

    from trashseg import registry

    targets = [(f"train-{m}", {"FOLD": 0}) for m in registry.models()]
    targets += [("train", {"EXP": p, "FOLD": 0}) for p in registry.presets()]
    assert len(targets) >= 10
    runs = []
    for target, variables in targets:
        line = echoed(target, **variables)
        assert echoed(target, env=IMAGE_ENV, **variables) == line
        runs.append(shlex.split(line)[1:])
    host, image = settings_shown(runs), settings_shown(runs, env=IMAGE_ENV)
    assert host == image and len(host) == len(targets) and all(len(s) > 60 for s in host.values())
    fpn = host["--fold 0 --model fpn"]  # the folder's own encoder, not the one the image's ENCODER named
    assert (
        fpn["model.encoder"] == '"tu-tf_efficientnet_b3.ns_jft_in1k"' == image["--fold 0 --model fpn"]["model.encoder"]
    )


def test_a_scheduler_passes_a_variable_as_trashseg_name_and_the_command_line_wins():
    assert echoed("train-fpn", env={"TRASHSEG_FOLD": "3"}) == "train --fold 3 --model fpn"
    assert echoed("train-fpn", env={"TRASHSEG_FOLD": "3"}, FOLD=1) == "train --fold 1 --model fpn"
    assert echoed("train-fpn", env={"TRASHSEG_NOT_A_VARIABLE": "1"}) == "train --model fpn"


@pytest.mark.parametrize(
    "target,variables,expected",
    [
        (
            "train-fpn",
            {"FOLDS": 1},
            "FOLDS=1: no such variable; did you mean FOLD?",
        ),
        ("train-fpn", {"EPOCH": 3}, "EPOCH=3: no such variable; did you mean EPOCHS?"),
        (
            "train-fpn",
            {"MODEL": "deeplab"},
            "MODEL=deeplab: make train-fpn sets MODEL=fpn itself; drop MODEL=, or run make train MODEL=deeplab",
        ),
        (
            "ensemble",
            {"WEIGHTS": "0.4 0.6"},
            "WEIGHTS=0.4 0.6: renamed ENCODER_WEIGHTS (the encoder's starting weights: imagenet | offline | none | "
            "path/to/file.pth) or ENSEMBLE_WEIGHTS (one ensemble weight per model or file (default: fitted, else "
            "equal))",
        ),
        (
            "ensemble",
            {"WEIGHTS_ENSEMBLE": "0.4 0.6"},
            "WEIGHTS_ENSEMBLE=0.4 0.6: renamed ENSEMBLE_WEIGHTS (one ensemble weight per model or file (default: "
            "fitted, else equal))",
        ),
        (
            "train-cpu-lite",
            {},
            "MODEL=cpu-lite: cpu-lite is a preset, not a model folder: EXP=cpu-lite (make train EXP=cpu-lite)",
        ),
        ("train", {"EXP": "cpu-lit"}, "EXP=cpu-lit: no configs/cpu-lit.yaml; did you mean cpu-lite?"),
        (
            "train",
            {"MODEL": "fnp"},
            "MODEL=fnp: no model folder is named so (code/*/config.yaml, model.name); did you mean fpn?",
        ),
        ("train", {"EXP": "fpn"}, "EXP=fpn: fpn is a model folder, not a preset: MODEL=fpn"),
        ("train-fpn", {"FOLD": -1}, "FOLD=-1: must be 0 or more"),
        (
            "report",
            {"RUN": "runs/fpn/fold0", "TTA": 1},
            "TTA: RUN='s report scores the run with its own settings (its config.yaml); these apply to an "
            "ensemble's report (MODELS=)",
        ),
        (
            "train-fpn",
            {"FOLD": 0, "ARGS": "--fold 1"},
            "FOLD=0 and FOLD=1: given twice (a variable and ARGS?); give it once",
        ),
    ],
)
def test_a_wrong_variable_stops_with_one_line_naming_the_right_one(target, variables, expected):
    assert one_line_error(target, **variables) == expected


def test_a_renamed_variable_names_its_new_spelling():
    error = one_line_error("train-fpn", FOLD=0, WEIGHTS="none")
    assert error.startswith("WEIGHTS=none: renamed ENCODER_WEIGHTS (the encoder's starting weights")
    assert "or ENSEMBLE_WEIGHTS (one ensemble weight per model or file" in error
    proc = make_process("help", DOCKER_WEIGHTS="hub")
    assert proc.returncode == 2 and "DOCKER_WEIGHTS=hub: renamed BAKE_ENCODERS" in proc.stderr


def test_a_list_takes_one_format_everywhere():
    """Spaces, or commas when an item holds a space (class names): the same rule for every list."""
    import argparse

    from trashseg.cli.options import words

    for text in ("fpn deeplab", "fpn,deeplab", " fpn , deeplab ", "fpn  deeplab"):
        assert words(argparse.Namespace(MODELS=text), "MODELS") == ["fpn", "deeplab"]
    names = words(argparse.Namespace(CLASSES="Background,General trash"), "CLASSES")
    assert names == ["Background", "General trash"]
    assert echoed("cv", MODELS="fpn,cpu-lite", K=3) in (
        "cv --models fpn,cpu-lite --k 3",
        "cv --k 3 --models fpn,cpu-lite",
    )


def test_every_bad_name_and_value_is_reported_at_once():
    error = one_line_error("train-fpn", FOLDS=1, EPOCH=3, LR="1e-3", TTA=2)
    for part in (
        "FOLDS=1: no such variable; did you mean FOLD?",
        "EPOCH=3: no such variable; did you mean EPOCHS?",
        "LR=1e-3: no such variable (make help lists them)",
        "TTA=2: use 1 (on) or 0 (off)",
    ):
        assert part in error
    proc = make_process("train-fpn", FOLD=0, ARGS="--set optimizer.lr=abc --set optimizer.lrr=1 --set train.epochs=0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "3 invalid setting(s)" in proc.stderr
    for part in ("optimizer.'lrr'; did you mean 'lr'?", "optimizer.lr='abc'", "train.epochs=0"):
        assert part in proc.stderr


def test_the_readmes_folds_lines_work_on_the_sample_and_say_what_to_do_with_too_few_groups(tmp_path):
    """The front page's two folds lines, on a copy of the bundled sample (three batch folders of
    training photos, as the competition has): stratified K=5, and one batch folder a fold with K=3."""
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    readme = (ROOT / "README.md").read_text()
    assert "make folds K=5  " in readme and "make folds K=3 GROUP='^(batch_[^/]+)/'  " in readme
    proc = make_process("folds", K=5, DATA_DIR=data)
    assert proc.returncode == 0, proc.stderr
    assert all((data / f"valid_data{k}.json").is_file() for k in range(5))
    proc = make_process("folds", K=3, GROUP="^(batch_[^/]+)/", DATA_DIR=data)
    assert proc.returncode == 0, proc.stderr
    for k in range(3):
        valid = json.loads((data / f"valid_data{k}.json").read_text())["images"]
        assert len({img["file_name"].split("/")[0] for img in valid}) == 1  # one batch folder a fold
    error = one_line_error("folds", K=5, GROUP="^(batch_[^/]+)/", DATA_DIR=data)
    assert error.startswith("K=5: GROUP finds only 3 groups (batch_01_vt, batch_02_vt, batch_03)")
    assert "K=3 keeps each group a fold, or leave GROUP out for 5 multilabel-stratified folds" in error
