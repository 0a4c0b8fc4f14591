"""Fixtures and collection rules of the suite (the helpers the tests import are in helpers.py): a
generated COCO set per test, default settings, and the bundled sample of real photos (data/sample)
run once through folds -> train -> infer at a tiny budget."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import SAMPLE, SAMPLE_DATES, TINY_BUDGET, make_coco, run_make, settings


def pytest_collection_modifyitems(items):
    """A test on the sample runs drives make targets, so it is slow whether or not it says so. (Under
    pytest-xdist, `make test` runs file by file, --dist loadfile: every test on the sample runs lives in
    test_sample_end_to_end.py, so one worker builds them once. xdist 3.8's loadgroup would say so with
    a mark, but under pytest 9.2 it groups nothing: it rewrites item._nodeid, which pytest 9.2 no longer reads.)"""
    for item in items:
        if "sample_runs" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
    # longest files first, so neither worker is left with a long one at the end: the sample runs
    # (minutes of fixture), then the leaderboard models; the rest keep their order (a stable sort)
    first = {"test_sample_end_to_end.py": 0, "test_leaderboard.py": 1}
    items.sort(key=lambda item: first.get(item.path.name, 2))


@pytest.fixture
def coco_dir(tmp_path: Path) -> Path:
    return make_coco(tmp_path / "data")


@pytest.fixture
def base_cfg(tmp_path: Path):
    return settings(f"data.cache_dir={tmp_path / 'cache'}")


@dataclass
class SampleRuns:
    """The bundled sample (copied out of the repo) after the shared make steps, and what each printed."""

    data: Path
    runs: Path
    tmp: Path
    base: dict
    train: dict
    printed: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="session")
def sample_runs(tmp_path_factory) -> SampleRuns:
    """Real photos through the real targets, once per session: 3 folds split by recording date,
    `make cv GPUS=2` (FPN and DeepLabV3Plus trained on every fold, two jobs at a time, tiny encoder,
    64 px, 1 epoch, valid + test probabilities, equal-weight ensemble), and FPN's valid probabilities
    again with TTA and CRF."""
    tmp = tmp_path_factory.mktemp("sample")
    data = tmp / "data"
    shutil.copytree(SAMPLE, data, ignore=shutil.ignore_patterns("train_data*", "valid_data*"))
    base = dict(DATA_DIR=data, RUNS=tmp / "runs", ARGS=f"--set data.cache_dir={tmp / 'cache'}")
    s = SampleRuns(data, tmp / "runs", tmp, base, dict(base, **TINY_BUDGET))
    s.printed["folds"] = run_make("folds", DATA_DIR=data, K=3, GROUP=SAMPLE_DATES)
    s.printed["check-data"] = run_make("check-data", **base)
    # make cv = make train-{fpn,deeplab} FOLD=k for every fold, then infer-* for each, then ensemble;
    # GPUS=2 runs two fold jobs at once (each pinned to its "GPU"; on CPU they share the cores, one
    # thread each, see above, and the mask cache, which is what this exercises)
    # (UPerNet and Segformer have their own end-to-end test, test_leaderboard.py)
    s.printed["cv"] = run_make("cv", **s.train, K=3, GPUS=2, SUBMISSIONS=tmp / "subs", MODELS="fpn deeplab")
    for fold in range(3):
        run_make("infer-fpn", **s.train, FOLD=fold, TTA=1, SPLITS="valid")
        run_make("infer-fpn", **s.train, FOLD=fold, CRF=1, SPLITS="valid")
    return s
