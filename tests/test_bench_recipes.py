"""make bench-recipes over several seeds (SEEDS=): each row's figures become a mean and a spread, the
first seed keeps the row's own run folder (rows measured before repeats are read, not retrained), and
every seed reaches the training as train.seed."""

import json
import re
import sys

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
    storage = f"sqlite:///{tmp_path / 'sweeps' / f'{bench.SWEEP_STUDY}.db'}"
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
    assert given["train.epochs"] == "5" and given["loss.focal_weight"] == "0.43" and given["optimizer.lr"] == "0.002"
    assert given["ema.enabled"] == "true" and given["speed.amp"] == "auto"  # over cpu-lite's own row
    assert bench.cpu_lite_row() == "cpu-sweep9"
    assert given["augment.train"].startswith("[{OneOf: ") and "ScaleCrop" in given["augment.train"]
    assert "0.7300" in what

    import bench_sweep  # the study's table, kept for the docs: each trial's state, figure and values

    pruned = study.ask()
    pruned.report(0.61, 2)
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    table = bench_sweep.export(study, tmp_path / "sweep.json")
    assert json.loads((tmp_path / "sweep.json").read_text()) == table and table["study"] == bench.SWEEP_STUDY
    assert [(r["trial"], r["state"], r["value"]) for r in table["trials"]] == [
        (0, "complete", 0.70),
        (1, "complete", 0.73),
        (2, "pruned", None),
    ]
    assert table["trials"][2]["last_reported"] == 0.61 and table["trials"][1]["params"] == study.trials[1].params
    assert all(r["minutes"] is not None and r["minutes"] >= 0 for r in table["trials"][:2])


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
    assert all(v["FORCE"] == 1 for v in trains)  # the bench's own runs: a row without its oof.json trains whole


def fake_ensemble_make(tmp_path, calls, ens):
    """bench-cpu-ensemble's make targets, recorded, each leaving the files the real one writes."""
    classes = ["Background", "General trash", "Paper", "Paper pack", "Metal", "Glass", "Plastic", "Styrofoam"]
    classes += ["Plastic bag", "Battery", "Clothing"]

    def make(target, **v):
        calls.append((target, v))
        if target == "train":  # the checkpoint TTA and the merge infer from
            (tmp_path / v["EXP"] / f"fold{v['FOLD']}").mkdir(parents=True, exist_ok=True)
            (tmp_path / v["EXP"] / f"fold{v['FOLD']}" / "best.pt").write_text("")
        if target == "infer" and v["SPLITS"] == "test":  # what the real infer leaves for the merge
            (tmp_path / v["EXP"] / f"fold{v['FOLD']}").mkdir(parents=True, exist_ok=True)
            (tmp_path / v["EXP"] / f"fold{v['FOLD']}" / "probs_test_tta.npy").write_text("")
        if target == "ensemble":  # the real merge refuses a member without every fold's test probabilities
            assert all(
                (tmp_path / m / f"fold{k}" / "probs_test_tta.npy").is_file() for m in ens.MEMBERS for k in range(3)
            )
        if target == "oof":
            r = result(0.70, 0.69 + 0.01 * ("TTA" in v), 0.70)
            (tmp_path / v["MODEL"] / f"oof{'_tta' if v.get('TTA') else ''}.json").write_text(json.dumps(r))
        if target == "fit-ensemble":
            m = v["MODELS"].split()
            three = 0.005 * (len(m) == 3)  # a third member lifts the merge by this much
            entry = {
                "weights": dict(zip(m, [1 / len(m)] * len(m))),
                "oof_miou": 0.71,
                "oof_miou_per_image": 0.70 + 0.01 * v["TTA"] + three,
            }
            fitted = {"equal_mean": entry, "fitted": {**entry, "weights": dict(zip(m, (0.4, 0.6, 0.0)[: len(m)]))}}
            fitted["fitted_per_class_iou"] = [0.9 if c in ens.PRESENT else 0.0 for c in classes]
            (tmp_path / f"ensemble_weights{'_tta' if v['TTA'] else ''}.json").write_text(json.dumps(fitted))

    return make


def test_the_cpu_ensemble_bench_runs_each_member_plain_and_tta_then_both_merges(bench, tmp_path, monkeypatch, capsys):
    """bench-cpu-ensemble's steps, in order, as make targets: the two preset rows, their validation
    images again with TTA=1 and oof TTA=1, fit-ensemble plain and TTA, the TTA merge to a CSV; the
    table reads the files those targets write."""
    import json

    import bench_cpu_ensemble as ens

    calls = []
    make = fake_ensemble_make(tmp_path, calls, ens)

    monkeypatch.setattr(bench, "make", make)
    monkeypatch.setattr(ens, "make", make)
    monkeypatch.setattr(ens, "prepare", lambda data: None)
    ledger = tmp_path / "ledger.json"
    argv = ["bench_cpu_ensemble.py", "--runs", str(tmp_path), "--ledger", str(ledger), "--results", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(bench, "LEDGER", None)  # main sets it: the members' figures go to the ledger given
    for m in ens.MEMBERS:
        (tmp_path / m).mkdir()
    ens.main()
    targets = [t for t, _ in calls]
    assert targets == ["train", "infer"] * 3 + ["oof"] + ["train", "infer"] * 3 + ["oof"] + (
        ["infer"] * 3 + ["oof"]
    ) * 2 + ["fit-ensemble", "fit-ensemble"] + ["infer"] * 6 + ["ensemble"]
    tta_infers = [v for t, v in calls[14:22] if t == "infer"]
    assert len(tta_infers) == 6 and all(v["TTA"] == 1 and v["SPLITS"] == "valid" for v in tta_infers)
    test_infers = [v for t, v in calls[24:] if t == "infer"]
    assert all(v["TTA"] == 1 and v["SPLITS"] == "test" for v in test_infers)
    assert [(v["EXP"], v["FOLD"]) for v in test_infers] == [(m, k) for m in ens.MEMBERS for k in range(3)]
    assert calls[-1][1]["MODELS"] == "cpu-lite cpu-lite-deeplab" and calls[-1][1]["TTA"] == 1
    out = capsys.readouterr().out
    assert "cpu-lite TTA" in out and "ensemble TTA, fitted (0.40/0.60)" in out
    assert "ensemble_TTA_fitted_miou_per_image=0.7100" in out and "cpu_lite_TTA_miou_per_image=0.7000" in out
    kept = json.loads((tmp_path / "cpu-ensemble-seed21.json").read_text())  # the table, for the docs
    assert kept["rows"]["ensemble TTA, fitted"] == {
        "miou": 0.71,
        "miou_per_image": 0.71,
        "present_mean": pytest.approx(0.9),
        "weights": {"cpu-lite": 0.4, "cpu-lite-deeplab": 0.6},
    }
    assert kept["rows"]["ensemble plain, equal"]["present_mean"] is None and len(kept["rows"]) == 8
    recorded = json.loads(ledger.read_text())["runs"]
    assert set(recorded) == set(ens.MEMBERS) and all({"plain", "tta"} <= set(e) for e in recorded.values())
    # a test file left by another tta block than the validation file's (the preset's scales changed) is inferred again
    fold1 = tmp_path / "cpu-lite" / "fold1"
    (fold1 / "probs_valid_tta.json").write_text(json.dumps({"tta": {"hflip": True, "scales": [0.75, 1.0, 1.25, 1.5]}}))
    (fold1 / "probs_test_tta.json").write_text(json.dumps({"tta": {"hflip": True, "scales": [0.75, 1.0, 1.25]}}))
    calls.clear()
    ens.main()
    again = [(v["EXP"], v["FOLD"]) for t, v in calls if t == "infer" and v["SPLITS"] == "test"]
    assert again == [("cpu-lite", 1)] and calls[-1][0] == "ensemble"


def test_a_candidate_third_member_is_judged_by_the_gain_it_brings_to_the_two(bench, tmp_path, monkeypatch, capsys):
    """CANDIDATES=cpu-lite-deeplab-lite2: the candidate's own row plain and with TTA, then fit-ensemble of
    the two members with it, before the two's own fits (whose weights file bench-pseudo reads); the gain is
    its fitted merge over the two's fitted TTA merge, kept beside the members' rows, never among them."""
    import bench_cpu_ensemble as ens

    calls = []
    monkeypatch.setattr(bench, "make", fake_ensemble_make(tmp_path, calls, ens))
    monkeypatch.setattr(ens, "make", bench.make)
    monkeypatch.setattr(ens, "prepare", lambda data: None)
    monkeypatch.setattr(bench, "LEDGER", None)
    argv = ["bench_cpu_ensemble.py", "--runs", str(tmp_path), "--ledger", str(tmp_path / "ledger.json")]
    argv += ["--results", str(tmp_path), "--candidates", "cpu-lite-deeplab-lite2"]
    monkeypatch.setattr(sys, "argv", argv)
    ens.main()
    trained = [v["EXP"] for t, v in calls if t == "train"]
    assert trained == ["cpu-lite"] * 3 + ["cpu-lite-deeplab"] * 3 + ["cpu-lite-deeplab-lite2"] * 3
    fits = [(v["MODELS"], v["TTA"]) for t, v in calls if t == "fit-ensemble"]
    assert fits == [
        ("cpu-lite cpu-lite-deeplab cpu-lite-deeplab-lite2", 1),
        ("cpu-lite cpu-lite-deeplab", 0),
        ("cpu-lite cpu-lite-deeplab", 1),
    ]
    kept = json.loads((tmp_path / "cpu-ensemble-seed21.json").read_text())
    judged = kept["candidates"]["cpu-lite-deeplab-lite2"]
    assert judged["gain_over_the_two"] == pytest.approx(0.005)
    assert judged["ensemble TTA, fitted"]["weights"] == {
        "cpu-lite": 0.4,
        "cpu-lite-deeplab": 0.6,
        "cpu-lite-deeplab-lite2": 0.0,
    }
    assert judged["TTA"]["miou_per_image"] == pytest.approx(0.70) and len(kept["rows"]) == 8
    assert "candidate_cpu_lite_deeplab_lite2_gain_over_the_two=+0.0050" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["cpu-lite", "cpu-lite-deplab-lite2"])
def test_a_candidate_that_is_a_member_or_no_row_stops_before_any_work(bench, tmp_path, monkeypatch, name):
    import bench_cpu_ensemble as ens

    monkeypatch.setattr(ens, "prepare", lambda data: pytest.fail("work started"))
    argv = ["bench_cpu_ensemble.py", "--runs", str(tmp_path), "--candidates", name]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(
        SystemExit, match=f"CANDIDATES={name}: not a row beside the members; rows: .*cpu-lite-deeplab-lite2"
    ):
        ens.main()


@pytest.mark.slow  # trains / starts Python processes
def test_the_cpu_speed_bench_measures_each_switch_against_fp32_and_says_what_auto_picks(tmp_path):
    """bench-cpu-speed at 64 px, one round: fp32, channels_last and channels_last + bf16 each print a
    rate, a ratio to fp32 and a loss; the loader's (threads, workers) settings are timed with the kit's
    default marked; what speed auto picks here is printed and kept in the result file. With the ISA
    capped at AVX2 (`ISA=avx2`) the same bench stands in for a CPU without native bf16: auto picks fp32."""
    import subprocess

    from trashseg.runtime.precision import cpu_bf16

    small = ["--size", "64", "--rounds", "1", "--steps", "1", "--loader-steps", "1"]
    for isa, native in (("native", cpu_bf16()[0]), ("avx2", False)):
        out_file = tmp_path / f"{isa}.json"
        cmd = [sys.executable, str(ROOT / "bench" / "bench_cpu_speed.py"), *small, "--isa", isa, "--out", str(out_file)]
        knobs = isa == "native"  # the loader's settings once: the capped run checks the precision part
        cmd += [] if knobs else ["--no-knobs"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout
        lines = dict(line.split("=", 1) for line in out.splitlines() if "=" in line and " " not in line)
        assert {"channels_last_speedup", "channels_last_bf16_speedup", "bf16_loss_difference", "native_bf16"} <= set(
            lines
        )
        assert float(lines["channels_last_speedup"]) > 0 and float(lines["bf16_loss_difference"]) < 0.05
        assert "fp32" in out and "(x1.00)" in out and lines["native_bf16"] == str(int(native))
        picks = "bf16" if native else "off"
        assert f"the kit picks here (speed auto): amp: {picks} (auto: " in out
        assert ("threads=2 workers=0" in out and out.count("<- the kit's default") == 1) is knobs
        result = json.loads(out_file.read_text())
        assert result["auto_picks"]["amp"] == picks and result["native_bf16"] is native
        assert set(result["ratio_to_fp32"]) == {"fp32", "channels_last", "channels_last_bf16"}
        assert result["ratio_to_fp32"]["fp32"] == 1.0 and len(result["loader_knobs_images_per_s"]) == (
            5 if knobs else 0
        )
        assert (result["isa_cap"] is not None) is (isa == "avx2")


def test_baseline_picks_the_row_the_gains_are_measured_against(bench, tmp_path, monkeypatch, capsys):
    """BASELINE=cpu-lite: that row runs first and the gain column is against it; orig is not run."""
    ran = []
    figures = {"cpu-lite": result(0.70, 0.70, 0.70), "adamw-poly": result(0.69, 0.68, 0.69)}

    def run_row(name, data, runs, seed=21):
        ran.append(name)
        return figures[name]

    monkeypatch.setattr(bench, "prepare", lambda data: None)
    monkeypatch.setattr(bench, "run_row", run_row)
    monkeypatch.setattr(bench, "LEDGER", None)  # main sets it to the committed ledger: undone after the test
    monkeypatch.setattr(
        sys, "argv", ["bench_recipes.py", "--rows", "adamw-poly", "--base", "cpu-lite", "--runs", str(tmp_path)]
    )
    bench.main()
    out = capsys.readouterr().out
    assert ran == ["cpu-lite", "adamw-poly"] and "baseline (the gain column): cpu-lite" in out
    assert "adamw_poly_per_image_gain=-0.0200" in out and "cpu_lite_per_image_gain=+0.0000" in out
    assert "preset rows at their preset's own budget, not the above: cpu-lite" in out  # 6 epochs, not BUDGET's 4
    monkeypatch.setattr(sys, "argv", ["bench_recipes.py", "--rows", "adamw-poly", "--base", "nope"])
    with pytest.raises(SystemExit, match="unknown row"):
        bench.main()


def test_the_ledger_keeps_a_scored_run_after_its_folder_is_gone(bench, tmp_path, monkeypatch):
    """A scored run is written into the ledger (figures, fold seconds); with its folder gone it is read
    from there, not retrained; a row whose definition changed trains again; TTA of a run known only from
    the ledger is None, not a training; a broken ledger is a one-line error naming the file."""
    import json
    import shutil

    calls = []

    def make(target, **variables):
        calls.append(target)
        if target == "oof":
            (tmp_path / variables["MODEL"]).mkdir(exist_ok=True)
            (tmp_path / variables["MODEL"] / "oof.json").write_text(json.dumps(result(0.71, 0.70, 0.69)))

    monkeypatch.setattr(bench, "make", make)
    monkeypatch.setattr(bench, "LEDGER", tmp_path / "ledger.json")
    run = tmp_path / "orig-seed22"
    for fold in range(3):
        (run / f"fold{fold}").mkdir(parents=True)
        (run / f"fold{fold}" / "metrics.csv").write_text("epoch,seconds\n1,100.5\n2,99.5\n")
    (run / "oof.json").write_text(json.dumps(result(0.72, 0.71, 0.70)))
    (run / "fold0" / "run_record.json").write_text(json.dumps({"git_commit": "0123456789abcdef", "git_dirty": True}))
    bench.run_row("orig", tmp_path / "data", tmp_path, 22)
    entry = json.loads((tmp_path / "ledger.json").read_text())["runs"]["orig-seed22"]
    assert entry["row"] == "orig" and entry["seed"] == 22 and entry["fingerprint"] == bench.fingerprint("orig")
    assert entry["plain"]["miou_per_image"] == 0.71 and entry["plain"]["train_seconds"] == [200.0] * 3
    assert entry["plain"]["commit"] == "0123456+dirty"  # the commit it trained at, from its run record
    assert set(entry["plain"]["per_class_iou"]) == set(bench.PRESENT)  # the table's classes, not the matrix
    shutil.rmtree(run)
    kept = bench.run_row("orig", tmp_path / "data", tmp_path, 22)
    assert calls == [] and kept["miou_per_image"] == 0.71 and bench.present_mean(kept) == pytest.approx(0.70)
    assert bench.run_tta("orig", tmp_path / "data", tmp_path, 22) is None and calls == []
    monkeypatch.setitem(bench.ROWS, "orig", ("fpn", bench.LITE0, "--set train.epochs=5", "changed"))
    assert bench.run_row("orig", tmp_path / "data", tmp_path, 22)["miou_per_image"] == 0.70  # trained again
    assert calls.count("oof") == 1 and len([c for c in calls if c.startswith("train-")]) == 3
    (tmp_path / "ledger.json").write_text("{not json")
    shutil.rmtree(tmp_path / "orig-seed22")
    with pytest.raises(SystemExit, match="ledger.json is not JSON"):
        bench.run_row("orig", tmp_path / "data", tmp_path, 22)


def test_a_presets_tta_block_retires_its_tta_figures_not_its_training(bench, tmp_path, monkeypatch):
    """A preset row's plain fingerprint leaves out its tta block (and comments): new TTA scales keep the
    run's training and plain figures and infer its TTA figures again; a changed training setting makes
    the run folder an error, not a figure of the row as it is now."""
    import json

    calls = []

    def make(target, **variables):
        calls.append(target)
        if target == "oof":
            (tmp_path / variables["MODEL"] / "oof_tta.json").write_text(json.dumps(result(0.74, 0.73, 0.72)))

    def preset(lr, scales, comment=""):
        (tmp_path / "configs" / "cpu-lite.yaml").write_text(
            f"# {comment}\nbase: fpn\noptimizer: {{lr: {lr}}}\ntta: {{enabled: true, scales: {scales}}}\n"
        )

    (tmp_path / "configs").mkdir()
    monkeypatch.setattr(bench, "CONFIGS", tmp_path / "configs")
    monkeypatch.setattr(bench, "LEDGER", tmp_path / "ledger.json")
    monkeypatch.setattr(bench, "make", make)
    run = tmp_path / "cpu-lite-seed22"
    for fold in range(3):
        (run / f"fold{fold}").mkdir(parents=True)
        (run / f"fold{fold}" / "best.pt").write_text("")
    (run / "oof.json").write_text(json.dumps(result(0.72, 0.71, 0.70)))
    (run / "oof_tta.json").write_text(json.dumps(result(0.73, 0.72, 0.71)))
    preset(2.7e-3, [0.75, 1.0, 1.25])
    bench.run_row("cpu-lite", tmp_path / "data", tmp_path, 22)
    assert bench.run_tta("cpu-lite", tmp_path / "data", tmp_path, 22)["miou_per_image"] == 0.72 and calls == []
    first = json.loads((tmp_path / "ledger.json").read_text())["runs"]["cpu-lite-seed22"]
    assert first["tta_fingerprint"] != first["fingerprint"] == bench.fingerprint("cpu-lite")
    preset(2.7e-3, [0.75, 1.0, 1.25], comment="a comment is not a setting")
    assert bench.fingerprint("cpu-lite") == first["fingerprint"]
    assert bench.fingerprint("cpu-lite", "tta") == first["tta_fingerprint"]
    preset(2.7e-3, [0.75, 1.0, 1.25, 1.5])
    assert bench.fingerprint("cpu-lite") == first["fingerprint"]
    assert bench.run_row("cpu-lite", tmp_path / "data", tmp_path, 22)["miou_per_image"] == 0.71 and calls == []
    assert bench.run_tta("cpu-lite", tmp_path / "data", tmp_path, 22)["miou_per_image"] == 0.73
    assert calls == ["infer"] * 3 + ["oof"]  # the same checkpoints inferred with the new scales
    now = json.loads((tmp_path / "ledger.json").read_text())["runs"]["cpu-lite-seed22"]
    assert now["plain"] == first["plain"] and now["tta"]["miou_per_image"] == 0.73
    assert now["tta_fingerprint"] == bench.fingerprint("cpu-lite", "tta") != first["tta_fingerprint"]
    # a run the ledger has no TTA figure of: its probability files' sidecars name the views it was inferred with
    (tmp_path / "ledger.json").unlink()
    calls.clear()
    (run / "oof_tta.json").write_text(json.dumps(result(0.73, 0.72, 0.71)))
    sidecar = {"tta": {"hflip": True, "scales": [0.75, 1.0, 1.25, 1.5]}}
    for fold in range(3):
        (run / f"fold{fold}" / "probs_valid_tta.json").write_text(json.dumps(sidecar))
    assert bench.run_tta("cpu-lite", tmp_path / "data", tmp_path, 22)["miou_per_image"] == 0.72 and calls == []
    (tmp_path / "ledger.json").unlink()
    sidecar["tta"]["scales"] = [0.75, 1.0, 1.25]
    (run / "fold2" / "probs_valid_tta.json").write_text(json.dumps(sidecar))
    assert bench.run_tta("cpu-lite", tmp_path / "data", tmp_path, 22)["miou_per_image"] == 0.73
    assert calls == ["infer"] * 3 + ["oof"]
    preset(1e-3, [0.75, 1.0, 1.25, 1.5])
    with pytest.raises(SystemExit, match="trained for another definition of row cpu-lite"):
        bench.run_row("cpu-lite", tmp_path / "data", tmp_path, 22)
    (tmp_path / "configs" / "cpu-lite.yaml").write_text("tta: [unclosed\n")  # a broken preset: one line naming it
    with pytest.raises(SystemExit, match=r"row cpu-lite reads .*cpu-lite.yaml: "):
        bench.fingerprint("cpu-lite")


def test_the_committed_ledger_matches_the_rows_it_names():
    """bench/recipes-ledger.json, in git: every entry names a row of the script and the seed its run name
    says, with the three present classes' IoU, and a fingerprint of a row as it is defined."""
    import json

    sys.path.insert(0, str(ROOT / "bench"))
    import bench_recipes as bench

    ledger = json.loads(bench.DEFAULT_LEDGER.read_text())
    assert ledger["runs"]
    for run, entry in ledger["runs"].items():
        assert entry["row"] in bench.ROWS and bench.run_name(entry["row"], entry["seed"]) == run
        assert len(entry["fingerprint"]) == 16 and ("tta" not in entry or len(entry["tta_fingerprint"]) == 16)
        for kind in set(entry) & {"plain", "tta"}:
            assert set(entry[kind]["per_class_iou"]) == set(bench.PRESENT)
            assert 0 < entry[kind]["miou_per_image"] < 1


def ledger_cells(bench, runs: dict, name: str, kind: str, seeds: list[int], base: float) -> dict[str, str]:
    """Every figure cell of one ledger row as docs/results.md prints it: mean ± half the spread of the
    dataset, per-image and 3-class figures over ``seeds``, the per-image gain over ``base``, each seed's
    per-image figure and the present classes' IoU (mean of the seeds, 3 decimals)."""
    results = [runs[bench.run_name(name, seed)][kind] for seed in seeds]

    def spread(values):
        return f"{sum(values) / len(values):.4f} ± {(max(values) - min(values)) / 2:.4f}"

    per_image = [r["miou_per_image"] for r in results]
    mean = sum(per_image) / len(per_image)
    return {
        "dataset": spread([r["miou"] for r in results]),
        "per_image": spread(per_image),
        "present": spread([bench.present_mean(r) for r in results]),
        "gain": f"{mean - base:+.4f}",
        "seeds": " / ".join(f"{v:.4f}" for v in per_image),
        "classes": " / ".join(
            f"{sum(r['per_class_iou'][c] for r in results) / len(results):.3f}" for c in bench.PRESENT
        ),
    }


def table_rows(text: str, start: str, end: str) -> list[list[str]]:
    table = text[text.index(start) : text.index(end)]
    return [
        [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        for line in table.splitlines()
        if line.startswith("| `")
    ]


def test_every_ledger_cell_in_the_docs_is_the_ledgers_and_its_fingerprints_are_the_rows():
    """docs/results.md's recipes table and the CPU ensemble's single-model rows: every figure cell is
    recomputed from bench/recipes-ledger.json (mean ± half the spread, gains, each seed, each class),
    and every ledger entry's fingerprints are recomputed from the row as the script defines it today
    (auto speed resolved as on the AVX512-BF16 CPUs the preset rows trained on, in bf16)."""
    import json

    sys.path.insert(0, str(ROOT / "bench"))
    import bench_recipes as bench

    runs = json.loads(bench.DEFAULT_LEDGER.read_text())["runs"]
    real = bench.speed_here
    bench.speed_here = lambda: ("bf16", True)
    try:
        for run, entry in runs.items():
            assert entry["fingerprint"] == bench.fingerprint(entry["row"], "plain"), run
            if "tta" in entry:
                assert entry["tta_fingerprint"] == bench.fingerprint(entry["row"], "tta"), run
    finally:
        bench.speed_here = real

    text = (ROOT / "docs" / "results.md").read_text()
    orig = sum(runs[bench.run_name("orig", s)]["plain"]["miou_per_image"] for s in (21, 22)) / 2
    checked = 0
    for cells in table_rows(text, "## Recipes out of fold", "## The CPU recipe's sweep"):
        name = re.match(r"`([\w-]+)`", cells[0]).group(1)
        kind, seeds = ("tta" if "TTA" in cells[0] else "plain"), [int(s) for s in cells[2].split(",")]
        want = ledger_cells(bench, runs, name, kind, seeds, orig)
        got = dict(zip(("dataset", "per_image", "present", "gain", "seeds", "classes"), cells[3:9]))
        assert got == want, cells[0]
        checked += 1
    assert checked == 5  # orig, adamw-poly, adamw-poly-lovasz-ema, cpu-lite plain and with its TTA

    members = 0
    for cells in table_rows(text, "| member | seeds |", "| merge | seed |"):
        name = re.match(r"`([\w-]+)`", cells[0]).group(1)
        seeds = [int(s) for s in cells[1].split(",")]
        lite = sum(runs[bench.run_name("cpu-lite", s)]["plain"]["miou_per_image"] for s in seeds) / len(seeds)
        want = ledger_cells(bench, runs, name, "tta" if "TTA" in cells[0] else "plain", seeds, lite)
        got = dict(zip(("dataset", "per_image", "present", "gain", "seeds"), cells[2:7]))
        assert got == {k: want[k] for k in got}, cells[0]
        members += 1
    assert members == 4
    assert "\n| (" not in text  # no row of figures that no file holds


def test_the_cpu_ensembles_merges_in_the_docs_are_their_files():
    """docs/results.md's merge rows are bench/results/cpu-ensemble-seed<N>.json's, cell by cell (weights,
    dataset, per-image, 3-class, the gain over that seed's cpu-lite plain), and every merge of every
    such file is in the table: a new run's file is not left out of the page."""
    import json

    text = (ROOT / "docs" / "results.md").read_text()
    shown = set()
    for cells in table_rows(text, "| merge | seed |", "(The 3-class column"):
        what, seed = re.match(r"`([^`]+)`", cells[0]).group(1), int(cells[1])
        table = json.loads((ROOT / "bench" / "results" / f"cpu-ensemble-seed{seed}.json").read_text())
        row, base = table["rows"][what], table["rows"]["cpu-lite plain"]["miou_per_image"]
        weights = "/".join(f"{w:.2f}" for w in row["weights"].values())  # in the members order
        present = "" if row["present_mean"] is None else f"{row['present_mean']:.4f}"
        want = [weights, f"{row['miou']:.4f}", f"{row['miou_per_image']:.4f}", present]
        assert cells[2:7] == [*want, f"{row['miou_per_image'] - base:+.4f}"], cells[0]
        shown.add((what, seed))
    files = sorted((ROOT / "bench" / "results").glob("cpu-ensemble-seed*.json"))
    assert files
    for path in files:
        table = json.loads(path.read_text())
        merges = {(w, table["seed"]) for w in table["rows"] if w.startswith("ensemble")}
        assert merges <= shown, f"{path.name}: merges not in docs/results.md: {sorted(merges - shown)}"
