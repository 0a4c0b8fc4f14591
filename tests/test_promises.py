"""Nothing the README promises goes untested unnoticed: every make target the README tells a user to
type is driven by some test (through make, in a subprocess), or is listed below with the reason no
test drives it; and every feature the README promises names the tests that drive it, which must
exist. Deleting a test, or documenting a target without one, fails here."""

import re

from test_docs_agree import readme_code

from helpers import ROOT

TESTS = ROOT / "tests"
# a test drives a target when it calls one of these helpers with the target's name
DRIVERS = r"(?:run_make|make_process|start_make|make_cmd|make_resolved|make)\(\s*\"([a-z][a-z0-9-]*)\""
# what the pattern rules make: train-fpn is train MODEL=fpn, and so on
PATTERNS = ("train", "infer", "eval")

NOT_DRIVEN = {
    # target: why no test runs it through make (each still checked as said)
    "test": ".ci/run runs it: it is the suite itself",
    "lint": ".ci/run runs it before the suite",
    "test-fast": "pytest -m 'not slow' over this suite; make test runs every test",
    "format": "ruff's own fixer; make lint checks its result",
    "setup": "every target depends on it, so every make test drives it",
    "setup-crf": "make test depends on it; test_crf_pulls_labels_onto_colour_edges needs what it installs",
    "docker-build": "a 7 GB image and minutes of downloads: make docker-smoke builds and runs it, by hand; the "
    "Dockerfile and the Makefile's switches are checked statically (test_docker_static)",
    "docker-smoke": "the container proof itself (build, demo inside, CSV checked); run by hand, not in CI",
    "docker-base": "debootstrap of a Debian base: minutes, root; make docker-smoke uses its image",
    "docker-gpu-check": "needs a built image; its no-GPU message is in the README",
    "setup-podman": "installs system packages as root: run by hand once per machine",
    "docker-train-fpn": "as docker-build",
    "docker-infer-fpn": "as docker-build",
    "docker-ensemble": "as docker-build",
    "docker-validate-submission": "make docker-smoke runs it through the passthrough, by hand; as docker-build",
    "demo": "minutes of real training (Lite0, 256 px); its steps are the targets driven here, run by hand",
    "bench-cpu": "a benchmark; test_bench_smoke runs its script with a tiny encoder at 64 px",
    "bench-cpu-speed": "a benchmark; test_bench_recipes runs its script at 64 px",
    "bench-data": "a benchmark; test_bench_smoke runs its script on 4 sample photos (--smoke)",
    "bench-durable": "a benchmark; test_bench_smoke runs its script, one write each (--smoke)",
    "bench-ensemble": "a benchmark; test_bench_smoke runs its script at 8 and 16 images (kit and baseline)",
    "bench-bundle": "a benchmark on make demo's runs with a container engine: its steps are make kaggle-bundle "
    "and kaggle-bundle-check, which test_sample_end_to_end drives (check.json included)",
    "bench-start": "a benchmark: a fresh clone's make setup from the package index (network) and make demo; "
    "test_setup_venv drives setup's installer, the demo's steps are each driven (test_documented_commands)",
    "bench-fit": "a benchmark; test_bench_smoke runs its script at 64 px (both ways, same matrices); "
    "test_fit holds the batched scorer to the loop",
    "bench-gpu": "needs a GPU; test_bench_smoke runs its script on CPU at tiny size",
    "bench-recipes": "~40 min a row on the real photos; test_bench_smoke runs its script with --smoke (the "
    "sample, tiny budget), test_recipe holds cpu-lite to its row",
    "bench-cpu-ensemble": "~1.5 h on the real photos; test_bench_recipes drives its steps with make recorded",
    "bench-pseudo": "~1 h a round on the real photos; test_bench_pseudo drives its steps with make recorded",
    "bench-sweep": "~10 min a trial on the real photos; test_sweep_space drives make sweep EXP= with the same "
    "space language on the sample, and test_bench_recipes its sweep-best row",
    "bench-tracking": "a benchmark; test_bench_smoke runs its script with a tiny encoder, 1 epoch (--smoke)",
    "clean": "deletes this checkout's caches and demo outputs; test_make_help_lists_every_documented_target "
    "reads its line",
}

# README promise -> the tests that drive it (file::function)
FEATURES = {
    "out-of-fold (OOF) predictions": ["test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo"],
    "prints its OOF gain or loss": ["test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo"],
    "simplex search": ["test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo"],
    "now uses the fitted weights": ["test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo"],
    "train_data_pseudo{k}.json": [
        "test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo",
        "test_winning_moves.py::test_pseudo_labels_keep_confident_pixels_and_ignore_unsure_ones",
    ],
    "paste Battery/Clothing objects": [
        "test_winning_moves.py::test_copy_paste_adds_rare_class_pixels",
        "test_sample_end_to_end.py::test_copy_paste_without_donors_says_so",
    ],
    "DenseCRF post-processing": [
        "test_winning_moves.py::test_crf_pulls_labels_onto_colour_edges",
        "test_sample_end_to_end.py::test_oof_fit_tta_ensemble_pseudo",
    ],
    "IoU table, confusion matrix, curves, worst-first gallery": [
        "test_sample_end_to_end.py::test_report_equals_eval_and_predict_draws_every_photo",
        "test_report_browser.py::test_report_and_runs_pages_in_a_real_browser",
    ],
    "every run in one table": [
        "test_runs_table.py::test_every_run_is_a_row_with_its_best_epoch_oof_time_commit_and_status",
        "test_runs_table.py::test_make_runs_writes_an_index_linking_each_run",
        "test_report_browser.py::test_report_and_runs_pages_in_a_real_browser",
    ],
    "overlays for any photos": ["test_sample_end_to_end.py::test_report_equals_eval_and_predict_draws_every_photo"],
    "Averaged weights": [
        "test_recipe.py::test_ema_is_the_hand_computed_average_with_its_decay_warmup",
        "test_recipe.py::test_best_pt_holds_the_ema_weights",
    ],
    "clip the gradient norm": [
        "test_recipe.py::test_clipping_bounds_the_gradient_norm_the_optimizer_sees",
        "test_recipe.py::test_clip_grad_norm_reaches_every_optimizer_step_through_the_trainer",
    ],
    "Lovasz-softmax": ["test_recipe.py::test_lovasz_and_focal_equal_their_definitions_on_a_tiny_case"],
    "focal_weight": ["test_recipe.py::test_lovasz_and_focal_equal_their_definitions_on_a_tiny_case"],
    "Train on all data": ["test_leaderboard.py::test_preset_folds_soup_and_a_run_on_all_data"],
    "make soup": ["test_leaderboard.py::test_preset_folds_soup_and_a_run_on_all_data"],
    "cpu-lite": ["test_recipe.py::test_cpu_lite_is_its_recipe_row_key_by_key"],
    "continues exactly the learning-rate curve": [
        "test_recipe.py::test_a_run_killed_mid_warmup_resumes_the_same_learning_rate_curve"
    ],
    "tested with SIGKILL": ["test_scale.py::test_sigkill_at_random_moments_resumes_to_the_uninterrupted_result"],
    "equals a single-process evaluation": ["test_scale.py::test_ddp_two_processes_match_single_process_evaluation"],
    "Settings are checked before anything runs": [
        "test_settings.py::test_bad_setting_is_one_line_naming_key_value_and_what_is_allowed",
        "test_settings.py::test_bad_make_variable_stops_before_any_work",
    ],
    "continues the same study": ["test_sweep.py::test_killed_sweep_resumes_the_same_study_and_prunes"],
    "several machines or GPUs": [
        "test_sweep_postgres.py::test_two_workers_share_one_study_on_postgresql_and_survive_a_kill"
    ],
    "pixel-wise majority": ["test_blend.py::test_make_vote_writes_a_validated_blend"],
    "import-probs": ["test_blend.py::test_imported_logits_and_label_maps_round_trip_through_oof_and_ensemble"],
    "never printed": [
        "test_kaggle.py::test_download_unzips_and_never_shows_the_key",
        "test_secrets.py::test_an_unreachable_database_is_one_line_with_the_password_masked",
    ],
    "No key is read, printed or written": [
        "test_tracking.py::test_tensorboard_and_offline_wandb_follow_metrics_csv_across_a_resume"
    ],
    "stays inside its folder": ["test_paths.py::test_links_out_of_the_folder_are_refused_links_inside_are_not"],
    "atomically and durably": [
        "test_atomic.py::test_atomic_write_flushes_the_file_before_the_rename_and_the_folder_after",
        "test_atomic.py::test_killed_ensemble_leaves_no_partial_csv",
    ],
}


def driven_targets() -> set[str]:
    found = set()
    for path in [*TESTS.glob("test_*.py"), TESTS / "conftest.py", TESTS / "helpers.py"]:
        found |= set(re.findall(DRIVERS, path.read_text()))
    return found


def covered(target: str, driven: set[str]) -> bool:
    if target in driven:
        return True
    prefix, _, stem = target.partition("-")
    return prefix in PATTERNS and (prefix in driven or any(t.startswith(f"{prefix}-") for t in driven))


def test_every_readme_target_is_driven_by_a_test_or_says_why_not():
    """Every target the README and docs/*.md tell a user to type, and every target `make help` lists."""
    from test_docs_agree import documented_targets

    used = set(re.findall(r"\bmake ([a-z][a-z0-9-]*)", readme_code()))
    used |= {t for t in documented_targets() if "%" not in t}
    driven = driven_targets()
    missing = sorted(t for t in used if not covered(t, driven) and t not in NOT_DRIVEN)
    assert not missing, f"README targets no test drives (drive them, or say why in NOT_DRIVEN): {missing}"
    stale = sorted(t for t in NOT_DRIVEN if t in driven or t not in used)
    assert not stale, f"NOT_DRIVEN lists targets that are driven now or no longer in the README: {stale}"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make lint" in ci and "make test" in ci


def test_every_readme_feature_names_tests_that_exist():
    from test_docs_agree import README as readme

    gone = [phrase for phrase in FEATURES if phrase not in readme]
    assert not gone, f"promises no longer in the README (update FEATURES): {gone}"
    missing = []
    for tests in FEATURES.values():
        for name in tests:
            module, function = name.split("::")
            if not re.search(rf"^def {function}\(", (TESTS / module).read_text(), flags=re.M):
                missing.append(name)
    assert not missing, f"README promises whose tests are gone: {missing}"
