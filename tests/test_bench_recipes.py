"""make bench-recipes over several seeds (SEEDS=): each row's figures become a mean and a spread, the
first seed keeps the row's own run folder (rows measured before repeats are read, not retrained), and
every seed reaches the training as train.seed."""

import pytest

from helpers import ROOT


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import bench_recipes

    return bench_recipes


def result(dataset, per_image, present):
    return {
        "miou": dataset,
        "miou_per_image": per_image,
        "per_class_iou": {"Background": present, "General trash": present, "Plastic bag": present, "Paper": 0.0},
    }


def test_a_row_over_seeds_is_its_mean_and_spread(bench):
    summary = bench.summarise([result(0.70, 0.68, 0.60), result(0.72, 0.69, 0.66), result(0.71, 0.70, 0.63)])
    assert summary["dataset"] == pytest.approx((0.71, 0.02))
    assert summary["per_image"] == pytest.approx((0.69, 0.02))
    assert summary["present"] == pytest.approx((0.63, 0.06))  # the three present classes only
    assert bench.summarise([result(0.5, 0.4, 0.3)])["per_image"] == pytest.approx((0.4, 0.0))
    assert bench.cell(0.69, 0.02, 3) == "0.6900±0.0100" and bench.cell(0.69, 0.0, 1) == "0.6900"


def test_each_seed_trains_in_its_own_run_with_that_seed(bench, tmp_path, monkeypatch):
    calls = []

    def make(target, **variables):  # records the call; `make oof` leaves the row's result
        calls.append((target, variables))
        if target == "oof":
            (tmp_path / variables["MODEL"] / "oof.json").write_text("{}")

    monkeypatch.setattr(bench, "make", make)
    for seed in (21, 22):
        run = tmp_path / bench.run_name("orig", seed)
        run.mkdir()
        (run / "oof.json").write_text("{}")  # finished: read, not retrained
        bench.run_row("orig", tmp_path / "data", tmp_path, seed)
    assert calls == [] and bench.run_name("orig", 21) == "orig" and bench.run_name("orig", 22) == "orig-seed22"
    (tmp_path / "orig-seed23").mkdir()
    assert bench.run_row("orig", tmp_path / "data", tmp_path, 23) == {}
    trains = [v for t, v in calls if t.startswith("train-")]
    assert len(trains) == 3 and all(v["SEED"] == 23 and "--set model.name=orig-seed23" in v["ARGS"] for v in trains)
    assert calls[-1][0] == "oof" and calls[-1][1]["MODEL"] == "orig-seed23"


def test_sweep_best_is_the_studys_best_trial_over_the_cpu_lite_row(bench, tmp_path):
    """ROWS=sweep-best: bench-sweep's best trial, read from its study, becomes a row over the cpu-lite
    recipe whose ARGS hold the space's fixed pipeline, the trial's values (lists as YAML) and its
    budget's epochs, quoted so that the shell make hands them to keeps each --set whole."""
    import shlex

    import optuna

    from trashseg.training.search_space import label, read_space, suggest

    space = read_space(ROOT / "configs" / "sweeps" / "cpu-lite.yaml")
    (tmp_path / "sweeps").mkdir()
    storage = f"sqlite:///{tmp_path / 'sweeps' / 'cpu-lite-fold0.db'}"
    study = optuna.create_study(study_name=bench.SWEEP_STUDY, storage=storage, direction="maximize")
    for number, (queued, value) in enumerate(zip(space["enqueue"][:2], (0.70, 0.73))):
        study.enqueue_trial({k: label(v) for k, v in queued.items()})
        trial = study.ask()
        assert suggest(trial, space["params"]) == queued  # the queued values, drawn as the sweep draws them
        trial.set_user_attr("epochs", 4 + number)
        study.tell(trial, value)
    with pytest.raises(SystemExit, match="run make bench-sweep first"):
        bench.sweep_best_row(tmp_path / "elsewhere")
    name, (model, variables, sets, what) = bench.sweep_best_row(tmp_path)
    assert name == "sweep-trial001" and model == "fpn" and variables == bench.LITE0
    words = shlex.split(sets)
    given = dict(w.split("=", 1) for w in words[1::2])
    assert given["train.epochs"] == "5" and given["augment.train.0.OneOf.p"] == "0.0"
    assert given["augment.train.4.Affine.rotate"] == "[-15, 15]" and given["ema.enabled"] == "true"
    assert given["augment.train"].startswith("[{OneOf: ") and "ScaleCrop" in given["augment.train"]
    assert "0.7300" in what


def test_a_preset_row_trains_the_preset_on_its_own_budget(bench, tmp_path, monkeypatch):
    calls = []

    def make(target, **variables):
        calls.append((target, variables))
        if target == "oof":
            (tmp_path / variables["MODEL"] / "oof.json").write_text("{}")

    monkeypatch.setattr(bench, "make", make)
    (tmp_path / "cpu-lite-deeplab-seed22").mkdir()
    bench.run_row("cpu-lite-deeplab", tmp_path / "data", tmp_path, 22)
    trains = [v for t, v in calls if t == "train"]
    infers = [v for t, v in calls if t == "infer"]
    assert len(trains) == len(infers) == 3 and all(v["EXP"] == "cpu-lite-deeplab" for v in trains + infers)
    assert not any(k in v for v in trains for k in ("IMG_SIZE", "EPOCHS", "BATCH", "ENCODER"))  # the preset's own
    assert all("--set model.name=cpu-lite-deeplab-seed22" in v["ARGS"] and v["SEED"] == 22 for v in trains)
