"""Every command the docs tell a user to type is driven: each `make` and `trashseg` line of a code block
in README.md and docs/*.md is a row of COMMANDS below, naming the test that runs it (through make, on
the sample or a generated set at the tiny budget), or, for a target that cannot run here (a GPU, a
container build, the network), saying why and what checks it instead. A new line in the docs with no
row fails, and so does a row whose test is gone, does not drive the line's target, or never sets one of
the line's variables (or says why it does not). `make help`'s targets: tests/test_promises.py."""

import ast
import re

from test_promises import DRIVERS, NOT_DRIVEN

from helpers import ROOT, TINY_BUDGET

TESTS = ROOT / "tests"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# what a test's helpers pass to make without the test body naming it (helpers.tiny_run, the sample fixture)
SUPPLIED = {*TINY_BUDGET, "DATA_DIR", "RUNS", "ARGS"}
EACH_FOLD = "its make cv EXP=cpu-lite trains every fold (FOLD=0..2) the same way"

# line -> "file::test" | ("file::test", {VARIABLE: why the test does not set it}) | "by hand: why"
COMMANDS = {
    "make demo": "by hand: minutes of real training at 256 px; its steps are each driven below",
    "make test": "by hand: the suite itself (.ci/run runs it)",
    "make test-fast": "by hand: the suite less its slow tests",
    "make lint": "by hand: .ci/run runs it before the suite",
    "make check-data DATA_DIR=data": "test_end_to_end.py::test_generated_11_class_set_with_odd_sizes",
    "make check-data": "test_paths.py::test_coco_loader_and_check_data_refuse_a_photo_linked_from_outside",
    "make folds K=5": "test_runs_kept.py::test_fold_files_remember_their_k_and_train_all",
    "make folds K=3 GROUP='^(batch_[^/]+)/'": "test_make_variables.py::"
    "test_the_readmes_folds_lines_work_on_the_sample_and_say_what_to_do_with_too_few_groups",
    "make folds K=5 SEED=21": "test_end_to_end.py::test_generated_11_class_set_with_odd_sizes",
    "make folds K=3 GROUP='(\\d{4})-?(\\d{2})-?(\\d{2})'": "test_make_variables.py::"
    "test_the_readmes_folds_lines_work_on_the_sample_and_say_what_to_do_with_too_few_groups",
    "make train-fpn FOLD=0": "test_end_to_end.py::test_generated_11_class_set_with_odd_sizes",
    "make train EXP=cpu-lite FOLD=0": (
        "test_leaderboard.py::test_preset_folds_soup_and_a_run_on_all_data",
        {"FOLD": EACH_FOLD},
    ),
    "make train MODEL=fpn FOLD=0": "test_leaderboard.py::test_model_folder_trains_resumes_infers_with_tta_and_ensembles",
    "make train-deeplab FOLD=0": "test_report_browser.py::test_report_and_runs_pages_in_a_real_browser",
    "make train-fpn FOLD=0 GPUS=4": ("test_scale.py::test_ddp_two_processes_match_single_process_evaluation", {}),
    'make train-fpn FOLD=0 GPUS=4 ARGS="--set train.sync_bn=true"': (
        "test_scale.py::test_ddp_gradients_are_all_reduced_and_equal_one_process_on_the_global_batch",
        {"ARGS": "SyncBatchNorm runs on CUDA only: scripts/gpu_check.sh on a lent GPU"},
    ),
    "make train-fpn FOLD=0 GPUS=8 NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500": (
        "test_scale.py::test_two_nodes_over_loopback_train_one_run",
        {"GPUS": "one process a node here (no GPUs); test_scale's GPUS=2 tests run two a node"},
    ),
    "make train MODEL=fpn FOLD=0 DATA_DIR=data/sample EPOCHS=2 IMG_SIZE=64 ENCODER=tu-mobilenetv3_small_050 "
    'ENCODER_WEIGHTS=none ARGS="--set optimizer.lr=0.00015"': "test_leaderboard.py::"
    "test_model_folder_trains_resumes_infers_with_tta_and_ensembles",
    'make pipeline MODELS="cpu-lite cpu-lite-deeplab" K=3 NAME=final': "test_sample_end_to_end.py::"
    "test_pipeline_chains_every_stage_skips_what_is_done_and_resumes_a_kill",
    'make pipeline MODELS="cpu-lite cpu-lite-deeplab" K=3 ROUNDS=1 DRY_RUN=1': "test_sample_end_to_end.py::"
    "test_pipeline_chains_every_stage_skips_what_is_done_and_resumes_a_kill",
    'make pipeline MODELS="cpu-lite cpu-lite-deeplab" K=3 ROUNDS=1 NAME=final': "test_sample_end_to_end.py::"
    "test_pipeline_chains_every_stage_skips_what_is_done_and_resumes_a_kill",
    "make train-fpn FOLD=0 PSEUDO=1": "test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo",
    'make train-fpn ARGS="--set augment.copy_paste.p=0.5"': "test_sample_end_to_end.py::"
    "test_copy_paste_without_donors_says_so",
    "make train-fpn FOLD=0 LOGGER=tensorboard,wandb": "test_tracking.py::"
    "test_tensorboard_and_offline_wandb_follow_metrics_csv_across_a_resume",
    "make train-fpn FOLD=0 LOGGER=none": "test_scale.py::test_two_nodes_over_loopback_train_one_run",
    "make infer MODEL=fpn FOLD=0 TTA=1": "test_leaderboard.py::test_model_folder_trains_resumes_infers_with_tta_and_ensembles",
    "make infer MODEL=fpn FOLD=0": "test_leaderboard.py::test_model_folder_trains_resumes_infers_with_tta_and_ensembles",
    "make infer-deeplab FOLD=0": "test_report_browser.py::test_report_and_runs_pages_in_a_real_browser",
    "make infer-fpn FOLD=0 TTA=1": "test_speed_choice.py::"
    "test_training_and_inference_follow_the_machines_choice_and_a_slow_named_one_is_said_once",
    "make eval-fpn FOLD=0 JSON=data/val.json [OUT=result.json]": "test_sample_end_to_end.py::"
    "test_report_equals_eval_and_predict_draws_every_photo",
    "make cv EXP=cpu-lite K=3": "test_leaderboard.py::test_preset_folds_soup_and_a_run_on_all_data",
    "make cv K=5": "test_runs_kept.py::test_cv_killed_mid_fold_resumes_to_the_uninterrupted_result",
    "make cv GPUS=4 K=5": "conftest.py::sample_runs",
    "make oof MODEL=fpn": "test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo",
    "make oof": "test_leaderboard.py::test_preset_folds_soup_and_a_run_on_all_data",
    "make oof MODEL=fpn TTA=1": "test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo",
    "make oof MODEL=upernet": "test_blend.py::test_imported_logits_and_label_maps_round_trip_through_oof_and_ensemble",
    'make fit-ensemble MODELS="fpn deeplab"': "test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo",
    "make fit-ensemble": "test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo",
    "make fit-ensemble TTA=1": "test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo",
    'make fit-ensemble MODELS="fpn deeplab upernet"': "test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo",
    "make ensemble": "test_atomic.py::test_killed_ensemble_leaves_no_partial_csv",
    "make ensemble NAME=final": "test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo",
    "make ensemble NAME=fpn_deeplab": "test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo",
    "make ensemble MODELS=fpn NAME=fpn": "test_leaderboard.py::test_model_folder_trains_resumes_infers_with_tta_and_ensembles",
    'make ensemble PROBS="a.npy b.npy" ENSEMBLE_WEIGHTS="0.4 0.6"': "test_sample_end_to_end.py::"
    "test_oof_fit_tta_ensemble_pseudo",
    "make ensemble TTA=1": "test_leaderboard.py::test_model_folder_trains_resumes_infers_with_tta_and_ensembles",
    'make ensemble MODELS="fpn deeplab upernet"': "test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo",
    "make pseudo K=5": "test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo",
    "make report RUN=runs/fpn/fold0": "test_sample_end_to_end.py::test_report_equals_eval_and_predict_draws_every_photo",
    "make runs HTML=1": "test_runs_table.py::test_make_runs_writes_an_index_linking_each_run",
    "make predict RUN=runs/fpn/fold0 IMAGES=../shared/data/photos/tidy/images": "test_sample_end_to_end.py::"
    "test_report_equals_eval_and_predict_draws_every_photo",
    "make validate-submission FILE=submissions/fpn_deeplab.csv": "test_leaderboard.py::"
    "test_model_folder_trains_resumes_infers_with_tta_and_ensembles",
    "make help": "test_docs_agree.py::test_make_help_lists_every_documented_target_and_variable",
    "make tensorboard": "test_tracking.py::test_make_tensorboard_serves_the_runs_folder",
    "make sweep MODEL=fpn FOLD=0 TRIALS=30 EPOCHS=8 IMG_SIZE=256 ENCODER_WEIGHTS=weights/lite0.pth "
    "ENCODER=tu-tf_efficientnet_lite0": "test_sweep.py::test_killed_sweep_resumes_the_same_study_and_prunes",
    "make sweep MODEL=fpn TRIALS=30 SPACE=my_space.yaml STUDY=fpn-lr": "test_sweep_postgres.py::"
    "test_two_workers_share_one_study_on_postgresql_and_survive_a_kill",
    "make sweep MODEL=fpn TRIALS=100 STORAGE=postgresql://user:password@db-host:5432/sweeps": "test_sweep_postgres.py::"
    "test_two_workers_share_one_study_on_postgresql_and_survive_a_kill",
    "make sweep EXP=cpu-lite SPACE=configs/sweeps/cpu-lite.yaml FOLD=0 TRIALS=12": "test_sweep_space.py::"
    "test_sweep_over_a_preset_runs_the_queued_trial_first_on_its_budget",
    'make vote FILES="mmseg_upernet.csv smp_unet.csv submissions/fpn_deeplab.csv" NAME=blend': "test_blend.py::"
    "test_make_vote_writes_a_validated_blend",
    'make vote FILES="a.csv b.csv c.csv" NAME=blend PRIORITY="Battery Clothing Glass"': "test_blend.py::"
    "test_make_vote_writes_a_validated_blend",
    "make import-probs SRC=mmseg_out/test MODEL=upernet": "test_blend.py::"
    "test_imported_logits_and_label_maps_round_trip_through_oof_and_ensemble",
    "make import-probs SRC=mmseg_out/fold0 MODEL=upernet SPLITS=valid FOLD=0 KIND=logits": "test_blend.py::"
    "test_imported_logits_and_label_maps_round_trip_through_oof_and_ensemble",
    "make download COMPETITION=<slug>": "test_kaggle.py::test_download_unzips_and_never_shows_the_key",
    'make submit COMPETITION=<slug> FILE=submissions/x.csv MESSAGE="fpn+deeplab 5 folds"': "test_kaggle.py::"
    "test_submit_validates_before_sending",
    'make kaggle-bundle MODELS="cpu-lite cpu-lite-deeplab" COMPETITION=<slug> NAME=final '
    "KAGGLE_DATASET=<you>/trashseg-final": "test_sample_end_to_end.py::"
    "test_kaggle_bundle_runs_offline_and_equals_the_kits_csv",
    "make kaggle-bundle-check NAME=final DATA_DIR=data DOCKER=podman": (
        "test_sample_end_to_end.py::test_kaggle_bundle_runs_offline_and_equals_the_kits_csv",
        {"DOCKER": "the test runs CHECK_IN=venv; the container (a 6 GB stand-in image) was run by hand"},
    ),
    "make kaggle-upload NAME=final DRY_RUN=1": "test_kaggle.py::"
    "test_kaggle_upload_creates_then_versions_and_dry_run_sends_nothing",
    "make docker-build": "by hand: " + NOT_DRIVEN["docker-build"],
    "make docker-build BAKE_ENCODERS='tu-tf_efficientnet_lite0 tu-tf_efficientnet_b3.ns_jft_in1k'": "by hand: "
    "as docker-build; test_docker_static checks what BAKE_ENCODERS bakes",
    "make docker-train-fpn FOLD=0 EPOCHS=20": "by hand: as docker-build",
    "make docker-infer-fpn FOLD=0": "by hand: as docker-build",
    "make docker-ensemble NAME=fpn": "by hand: as docker-build",
    "make docker-gpu-check": "by hand: " + NOT_DRIVEN["docker-gpu-check"],
    "make docker-smoke": "by hand: " + NOT_DRIVEN["docker-smoke"],
    "make setup-podman": "by hand: " + NOT_DRIVEN["setup-podman"],
    "make docker-base DOCKER=podman": "by hand: " + NOT_DRIVEN["docker-base"],
    "make docker-build DOCKER=podman BASE_IMAGE=trashseg-base:bookworm CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt": (
        "by hand: as docker-build"
    ),
    "make docker-smoke DOCKER=podman BASE_IMAGE=trashseg-base:bookworm CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt": (
        "by hand: as docker-smoke"
    ),
    ".venv/bin/trashseg --help": "test_docs_agree.py::test_trashseg_and_every_verb_answer_help",
    ".venv/bin/trashseg train --exp cpu-lite --fold 0 --epochs 2 --set optimizer.lr=5e-4": (
        "test_leaderboard.py::test_preset_folds_soup_and_a_run_on_all_data",
        {"FOLD": EACH_FOLD},
    ),
    ".venv/bin/trashseg train --exp cpu-lite --epochs 2 --set optimizer.lr=5e-4": "test_leaderboard.py::test_preset_folds_soup_and_a_run_on_all_data",
    ".venv/bin/trashseg train --model fpn --fold 0": "test_leaderboard.py::"
    "test_model_folder_trains_resumes_infers_with_tta_and_ensembles",
    '.venv/bin/trashseg ensemble --models "fpn deeplab" --name fpn_deeplab': "test_sample_end_to_end.py::"
    "test_oof_fit_tta_ensemble_pseudo",
    ".venv/bin/trashseg config list": "test_cli.py::test_config_list_finds_model_folders_and_presets_and_variables_name_their_options",
    ".venv/bin/trashseg config show --exp cpu-lite": "test_cli.py::"
    "test_config_show_prints_the_preset_recipe_with_the_source_of_every_value",
    ".venv/bin/trashseg config variables": "test_cli.py::"
    "test_config_list_finds_model_folders_and_presets_and_variables_name_their_options",
}


def documented_lines() -> list[str]:
    """Each `make` / `trashseg` command of the docs' code blocks: continuation lines joined, comments
    and runs of spaces dropped, `a && b` as two commands."""
    out = []
    for page in DOCS:
        for block in re.findall(r"```[a-z]*\n(.*?)```", page.read_text(), flags=re.S):
            pending = ""
            for raw in block.splitlines():
                line = re.sub(r"\s+#.*$", "", raw).rstrip()
                if line.endswith("\\"):
                    pending += line[:-1] + " "
                    continue
                line, pending = " ".join((pending + line).split()), ""
                for part in line.split(" && "):
                    if re.match(r"^(make|\.venv/bin/trashseg|trashseg)( |$)", part.strip()):
                        out.append(part.strip())
    return list(dict.fromkeys(out))


def sources() -> dict[str, str]:
    """file::name -> source of every test function and fixture in tests/, a test's own with the source
    of the fixtures of its file it takes (where its tiny run's FOLD, say, is set)."""
    bodies = {}
    for path in [*TESTS.glob("test_*.py"), TESTS / "conftest.py"]:
        text = path.read_text()
        lines = text.splitlines()
        functions = [node for node in ast.parse(text).body if isinstance(node, ast.FunctionDef)]
        own = {node.name: "\n".join(lines[node.lineno - 1 : node.end_lineno]) for node in functions}
        for node in functions:
            fixtures = [own[a.arg] for a in node.args.args if a.arg in own]
            bodies[f"{path.name}::{node.name}"] = "\n".join([own[node.name], *fixtures])
    return bodies


def target_and_variables(line: str) -> tuple[str, set[str]]:
    """make's target and variables; a trashseg line as the make line it is (--exp -> EXP, --set -> ARGS)."""
    words = line.split()
    if words[0] == "make":
        return (words[1] if len(words) > 1 else "help"), set(re.findall(r"\b([A-Z][A-Z_]+)=", line))
    verb = words[1]
    if verb == "config" or verb.startswith("-"):
        return verb, set()
    names = {w[2:].upper().replace("-", "_") for w in words[2:] if w.startswith("--")}
    return verb, {"ARGS" if n == "SET" else n for n in names}


def drives(body: str, target: str, line: str) -> bool:
    if line.startswith(".venv/bin/trashseg") and target in ("config", "--help"):
        return f'"{target}"' in body or "--help" in body
    driven = set(re.findall(DRIVERS, body))
    driven |= {f"{p}-{{model}}" for p in ("train", "infer", "eval") if f'f"{p}-{{model}}"' in body}
    prefix, _, model = target.partition("-")
    return target in driven or (
        prefix in ("train", "infer", "eval") and (prefix in driven or f"{prefix}-{{model}}" in driven)
    )


def test_every_documented_command_is_driven_or_says_why_not():
    lines, bodies = documented_lines(), sources()
    assert len(lines) > 60
    missing = [line for line in lines if line not in COMMANDS]
    assert not missing, f"documented commands with no row in COMMANDS (name the test that runs them): {missing}"
    stale = [line for line in COMMANDS if line not in lines]
    assert not stale, f"COMMANDS rows no longer in the docs: {stale}"
    problems = []
    for line in lines:
        entry = COMMANDS[line]
        target, variables = target_and_variables(line)
        if isinstance(entry, str) and entry.startswith("by hand: "):
            if not (target in NOT_DRIVEN or target.removeprefix("docker-") != target):
                problems.append(f"{line}: 'by hand' only for a target tests/test_promises.py says no test drives")
            continue
        name, excused = entry if isinstance(entry, tuple) else (entry, {})
        body = bodies.get(name)
        if body is None:
            problems.append(f"{line}: no test {name}")
            continue
        if not drives(body, target, line):
            problems.append(f"{line}: {name} does not drive {target}")
        supplied = SUPPLIED if re.search(r"tiny_run|\btiny\b|s\.train|\bbase\b|\bv\b", body) else set()
        unset = sorted(v for v in variables - supplied - set(excused) if not re.search(rf"\b{v}\b", body))
        if unset:
            problems.append(f"{line}: {name} never sets {unset}")
    assert not problems, "\n".join(problems)
