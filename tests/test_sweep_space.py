"""The search space's own language (training/search_space.py): fixed settings for every trial (``set``),
queued first trials (``enqueue``, the baseline inside the study), image size traded against epochs at
one cost (``budget``) and whole YAML values (lists) as categorical choices, each checked with a
one-line error before any trial; and `make sweep EXP=<preset>` driving them on the bundled sample,
with the study's table and a ready `make train EXP=...` line whose quoting the shell keeps."""

import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, SAMPLE, SAMPLE_DATES, run_make, tiny_run
from trashseg.errors import TrashsegError
from trashseg.training import search_space, sweep

BASE = {"params": {"train.img_size": {"type": "categorical", "choices": [64, 96]}}}


def write(tmp_path: Path, space: dict) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"budget": {"size_at": 256}}, "budget: give {size_at: <px>, epochs_at: <epochs>}"),
        ({"budget": {"size_at": 256, "epochs_at": 0}}, "budget: size_at and epochs_at must be whole numbers above 0"),
        ({"budget": {"size_at": 64, "epochs_at": 2}, "set": {"train.epochs": 3}}, "budget sets train.epochs"),
        ({"enqueue": [{"optimizer.lr": 1e-3}]}, "enqueue[0].optimizer.lr: not a key of params (train.img_size)"),
        ({"enqueue": [{"train.img_size": 80}]}, "enqueue[0].train.img_size: 80 is not one of its choices [64, 96]"),
        ({"enqueue": {"train.img_size": 64}}, "enqueue: give a list of mappings"),
        ({"set": ["train.epochs=3"]}, "set: give a mapping of config key -> value"),
    ],
)
def test_a_bad_space_is_one_line_naming_the_block(tmp_path, extra, message):
    path = write(tmp_path, {**BASE, **extra})
    with pytest.raises(TrashsegError) as err:
        search_space.read_space(path)
    assert str(err.value).startswith(f"{path}: {message}")
    assert "\n" not in str(err.value)


def test_budget_trades_image_size_for_epochs_at_one_cost():
    space = {"budget": {"size_at": 256, "epochs_at": 4}}
    assert [search_space.budget_epochs(space, s) for s in (128, 192, 224, 256, 288, 512)] == [16, 7, 5, 4, 3, 1]
    assert search_space.budget_epochs({}, 256) is None


def test_list_choices_are_stored_as_labels_and_come_back_as_values():
    import optuna

    params = {"augment.train.2.ScaleCrop.scale": {"type": "categorical", "choices": [[1.0, 1.0], [0.5, 1.5]]}}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    study.enqueue_trial({"augment.train.2.ScaleCrop.scale": "[0.5, 1.5]"})
    trial = study.ask()
    values = search_space.suggest(trial, params)
    assert values == {"augment.train.2.ScaleCrop.scale": [0.5, 1.5]}
    assert trial.params == {"augment.train.2.ScaleCrop.scale": "[0.5, 1.5]"}  # what Optuna can store
    assert search_space.decode(trial.params, params) == values
    assert search_space.as_sets(values) == ["augment.train.2.ScaleCrop.scale=[0.5, 1.5]"]
    pipeline = [{"OneOf": {"p": 1.0, "transforms": [{"CLAHE": {"p": 1.0}}] * 6}}, {"Resize": {}}]
    (line,) = search_space.as_sets({"augment.train": pipeline})
    assert "\n" not in line and yaml.safe_load(line.split("=", 1)[1]) == pipeline  # a long value stays one line


def test_the_cpu_space_parses_and_every_queued_trial_makes_valid_settings():
    """configs/sweeps/cpu-lite.yaml: its first queued trial is today's cpu-lite, every setting the same,
    and each queued trial keeps the 6-epochs-at-256-px cost."""
    from trashseg import registry
    from trashseg.config import load_config

    space = search_space.read_space(ROOT / "configs" / "sweeps" / "cpu-lite.yaml")
    target = registry.target(None, "cpu-lite")
    today = load_config(target.model.config, [], preset=target.preset.path)
    for number, queued in enumerate(space["enqueue"]):
        sets = sweep.trial_sets(target.model.config, [], space, queued, target.preset.path)
        cfg = load_config(target.model.config, sets, preset=target.preset.path)
        assert cfg.train.epochs * cfg.train.img_size**2 == pytest.approx(6 * 256**2, rel=0.25), number
    first = load_config(
        target.model.config,
        sweep.trial_sets(target.model.config, [], space, space["enqueue"][0], target.preset.path),
        preset=target.preset.path,
    )
    assert first.model_dump() == today.model_dump()
    assert len(space["enqueue"]) == 3 and space["enqueue"][2]["loss.focal_weight"] == 0.0


SPACE = {
    "metric": "miou_per_image",
    "sampler": {"name": "random", "seed": 2},
    "pruner": {"name": "none"},
    "budget": {"size_at": 64, "epochs_at": 2},  # 64 px: 2 epochs, 96 px: 1
    "set": {
        "augment.train": [
            {"HorizontalFlip": {"p": 0.5}},
            {"ScaleCrop": {"scale": [1.0, 1.0]}},
        ]
    },
    "params": {
        "train.img_size": {"type": "categorical", "choices": [64, 96]},
        "augment.train.1.ScaleCrop.scale": {"type": "categorical", "choices": [[1.0, 1.0], [0.75, 1.25]]},
    },
    "enqueue": [{"train.img_size": 64, "augment.train.1.ScaleCrop.scale": [0.75, 1.25]}],
}


@pytest.mark.slow
def test_sweep_over_a_preset_runs_the_queued_trial_first_on_its_budget(tmp_path):
    import optuna

    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data, ignore=shutil.ignore_patterns("train_data*", "valid_data*"))
    run_make("folds", DATA_DIR=data, K=3, GROUP=SAMPLE_DATES)
    space = write(tmp_path, SPACE)
    variables = tiny_run(data, tmp_path, EXP="cpu-lite", TRIALS=2, SPACE=space, LOGGER="none", STUDY="lite")
    out = run_make("sweep", **variables)
    study = optuna.load_study(study_name="lite", storage=f"sqlite:///{tmp_path / 'runs' / 'sweeps' / 'lite.db'}")
    first = study.trials[0]
    assert first.params == {"train.img_size": 64, "augment.train.1.ScaleCrop.scale": "[0.75, 1.25]"}
    run = yaml.safe_load((ROOT / first.user_attrs["run_dir"] / "config.yaml").read_text())
    assert run["train"]["epochs"] == 2 and run["train"]["img_size"] == 64  # the budget's epochs at 64 px
    assert run["augment"]["train"] == [{"HorizontalFlip": {"p": 0.5}}, {"ScaleCrop": {"scale": [0.75, 1.25]}}]
    assert run["optimizer"]["name"] == "adamw" and run["loss"]["focal_weight"] == 0.28  # over cpu-lite
    assert "[sweep] trial 0: train.img_size=64, augment.train.1.ScaleCrop.scale=[0.75, 1.25], train.epochs=2" in out
    assert "number    state" in out and "augment.train.1.ScaleCrop.scale" in out  # the study's table
    line = next(ln for ln in out.splitlines() if ln.startswith("make train EXP=cpu-lite FOLD=0 "))
    args = shlex.split(shlex.split(line)[-1].split("=", 1)[1])  # ARGS="..." as make hands it to the shell
    best = study.best_trial
    own = search_space.as_sets(
        search_space.decode(best.params, SPACE["params"])
    )  # e.g. augment.train.1.ScaleCrop.scale=[0.75, 1.25]
    assert set(own) | {f"train.epochs={best.user_attrs['epochs']}"} <= set(args[1::2])
    assert args[0::2] == ["--set"] * (len(args) // 2)


def test_a_resumed_seeded_study_draws_new_values(tmp_path):
    """A seeded sampler started again on a study that holds trials must not repeat the first process's
    draws (before, every resume of a seeded sweep re-ran its first random trials)."""
    space = {"sampler": {"name": "random", "seed": 21}, "pruner": {"name": "none"}, "heartbeat_seconds": 60}
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    draws = []
    for _ in range(2):  # two processes, one after the other
        study = sweep.open_study("s", storage, space)
        trial = study.ask()
        draws.append(trial.suggest_float("x", 0.0, 1.0))
        study.tell(trial, 0.5)
    assert draws[0] != draws[1]
    again = sweep.open_study("t", f"sqlite:///{tmp_path / 'other.db'}", space).ask().suggest_float("x", 0.0, 1.0)
    assert again == draws[0]  # a new study with the same seed draws the same first values: reproducible
