"""Helpers of the suite, imported by the tests (fixtures live in conftest.py): the real make
targets run on CPU, a small generated COCO set (64-128 px) holding all 11 classes, settings and tiny
run factories, waits on events (a line, a database row), and a hook that kills a process at an
exact call."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import cv2
import numpy as np

# Tiny models on 64-128 px images run faster on one thread than on several, and the multi-process
# tests (DDP, make cv GPUS=2) then do not oversubscribe a small CI machine's cores. Set before torch
# is imported here or in any make target the tests run.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]

from trashseg.data.classes import CLASSES  # noqa: E402  (after OMP_NUM_THREADS, which torch reads on import)

TINY_ENCODER = "tu-mobilenetv3_small_050"
SAMPLE = ROOT / "data" / "sample"
SAMPLE_DATES = r"^(batch_[^/]+)/"  # the sample keeps one recording date per batch folder
TINY_BUDGET = dict(
    EPOCHS=1, BATCH=4, IMG_SIZE=64, ENCODER=TINY_ENCODER, ENCODER_WEIGHTS="none", WORKERS=0, DEVICE="cpu"
)


def make_cmd(target: str, directory: Path = ROOT, **variables) -> list[str]:
    """The command line of a real make target in this repository (or a copy), with make variables."""
    return ["make", "--no-print-directory", "-C", str(directory), target] + [f"{k}={v}" for k, v in variables.items()]


def cpu_env(env: dict | None = None) -> dict:
    """The environment of a make target run by a test: this one, no GPU, plus ``env``."""
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", **(env or {})}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_process(
    target: str, env: dict | None = None, directory: Path = ROOT, **variables
) -> subprocess.CompletedProcess:
    """Run a real make target on CPU (extra environment variables in ``env``)."""
    return subprocess.run(make_cmd(target, directory, **variables), capture_output=True, text=True, env=cpu_env(env))


def run_make(target: str, env: dict | None = None, directory: Path = ROOT, **variables) -> str:
    """Run a real make target on CPU; fail the test with its output when it fails."""
    proc = make_process(target, env, directory, **variables)
    assert proc.returncode == 0, f"make {target} {variables}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def tiny_run(data: Path, tmp_path: Path, **variables) -> dict:
    """Make variables of a tiny CPU training run on ``data`` (3 fold files written when missing):
    TINY_BUDGET without EPOCHS (each test says how many), runs and mask cache under ``tmp_path``;
    ``variables`` override or add."""
    from trashseg.data.folds import make_folds

    if not (data / "valid_data0.json").is_file():
        make_folds(data / "train_all.json", data, 3, 0, {})
    budget = {k: v for k, v in TINY_BUDGET.items() if k != "EPOCHS"}
    return {
        **budget,
        "DATA_DIR": data,
        "RUNS": tmp_path / "runs",
        "ARGS": f"--set data.cache_dir={tmp_path / 'cache'}",
        **variables,
    }


def make_coco(root: Path, n_train: int = 12, n_test: int = 4, seed: int = 0) -> Path:
    """Write batch folders + train_all.json + test.json; every object class appears in train."""
    rng = np.random.default_rng(seed)
    categories = [{"id": i, "name": name} for i, name in enumerate(CLASSES) if i > 0]
    colours = rng.integers(0, 255, size=(len(CLASSES), 3))
    train = {"images": [], "annotations": [], "categories": categories}
    test = {"images": [], "annotations": [], "categories": categories}
    ann_id = 0
    for image_id in range(n_train + n_test):
        h, w = int(rng.integers(64, 129)), int(rng.integers(64, 129))
        image = rng.integers(0, 60, size=(h, w, 3), dtype=np.uint8)
        name = f"batch_{image_id % 2 + 1:02d}/{image_id:04d}.jpg"
        is_train = image_id < n_train
        anns = []
        for k in range(3):
            cls = (image_id * 3 + k) % 10 + 1
            x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
            x1, y1 = int(rng.integers(x0 + 8, w)), int(rng.integers(y0 + 8, h))
            poly = [x0, y0, x1, y0, x1, y1, x0, y1]
            cv2.fillPoly(image, [np.array(poly).reshape(-1, 2)], colours[cls].tolist())
            anns.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": cls,
                    "iscrowd": 0,
                    "segmentation": [[float(v) for v in poly]],
                    "area": float((x1 - x0) * (y1 - y0)),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                }
            )
            ann_id += 1
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        entry = {"id": image_id, "file_name": name, "width": w, "height": h}
        (train if is_train else test)["images"].append(entry)
        if is_train:
            train["annotations"] += anns
    (root / "train_all.json").write_text(json.dumps(train))
    (root / "test.json").write_text(json.dumps(test))
    return root


def settings(*sets: str, config=None, models: bool = True, preset=None) -> dict:
    """Validated settings: the package defaults (or a model folder's ``config``) with ``sets``."""
    from trashseg.config import load_config

    return load_config(config, list(sets), models=models, preset=preset)


def wait_for(condition, what: str, timeout: float = 180.0, every: float = 0.2):
    """Wait for a state (a file, a database row, a process's exit), polling ``condition`` until it
    returns something true, which is returned; fail naming ``what`` after ``timeout`` seconds. The
    wait ends on the state, not on a guessed duration, so a slow or busy machine only waits longer."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(every)


def start_make(target: str, log: Path | None = None, env: dict | None = None, **variables) -> subprocess.Popen:
    """A make target started in its own process group (so the test can kill it and every child),
    its output piped (``log=None``: read it with read_until) or written to ``log``."""
    out = subprocess.PIPE if log is None else open(log, "w")
    try:
        return subprocess.Popen(
            make_cmd(target, **variables),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env=cpu_env(env),
        )
    finally:
        if log is not None:
            out.close()  # the child holds its own copy of the file


def read_until(proc: subprocess.Popen, text: str) -> list[str]:
    """The lines ``proc`` prints up to and including the first that holds ``text`` (an event in
    its output); fails with what it printed when it ends first."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"ended without printing {text!r}:\n{''.join(lines)[-3000:]}")


def stale_trials(storage_url: str, study_name: str, heartbeat: int = 1) -> list[int]:
    """Numbers of the study's running trials whose heartbeat is older than the sweep's grace period
    (2 x heartbeat), as Optuna's own check finds them: trials of a killed worker."""
    import warnings

    import optuna
    from optuna.storages import RDBStorage

    with warnings.catch_warnings():  # heartbeats are 'experimental' in Optuna's words; the sweep uses them
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = RDBStorage(storage_url, heartbeat_interval=heartbeat, grace_period=2 * heartbeat)
    study_id = storage.get_study_id_from_name(study_name)
    stale = set(storage._get_stale_trial_ids(study_id))  # Optuna's own staleness rule
    trials = optuna.load_study(study_name=study_name, storage=storage).trials
    storage.remove_session()
    return [t.number for t in trials if t._trial_id in stale]


def heartbeat_of(storage_url: str, study_name: str, number: int) -> bool:
    """Whether trial ``number`` has written a heartbeat (from then on a kill is detectable)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(storage_url)
    try:
        with engine.connect() as db:
            return bool(
                db.execute(
                    sqlalchemy.text(
                        "SELECT count(*) FROM trial_heartbeats h JOIN trials t ON t.trial_id = h.trial_id "
                        "JOIN studies s ON s.study_id = t.study_id WHERE s.study_name = :study AND t.number = :n"
                    ),
                    {"study": study_name, "n": number},
                ).scalar()
            )
    finally:
        engine.dispose()


KILL_HOOK = '''"""Test hook (helpers.kill_hook): SIGKILL this process at the Nth call of one function."""
import importlib, os, signal

_module, _attr, _calls = os.environ["TRASHSEG_TEST_KILL_AT"].split(":")
_owner = importlib.import_module(_module)
_names = _attr.split(".")
for _name in _names[:-1]:
    _owner = getattr(_owner, _name)
_real, _count = getattr(_owner, _names[-1]), [0]


def _counted(*args, **kwargs):
    _count[0] += 1
    if _count[0] == int(_calls):
        os.kill(os.getpid(), signal.SIGKILL)
    return _real(*args, **kwargs)


setattr(_owner, _names[-1], _counted)
'''


def kill_hook(folder: Path, module: str, attribute: str, call: int) -> dict:
    """Environment that makes every Python process started with it SIGKILL itself at the ``call``-th
    call of ``module.attribute`` (a function or Class.method), before that call runs: an
    interruption at an exact point of the work, on no clock. Python imports the hook as
    ``sitecustomize`` from PYTHONPATH at start-up."""
    return {**sitecustomize(folder, KILL_HOOK), "TRASHSEG_TEST_KILL_AT": f"{module}:{attribute}:{call}"}


def sitecustomize(folder: Path, source: str) -> dict:
    """``source`` as folder/sitecustomize.py, which every Python process started with the returned
    PYTHONPATH imports at start-up (a test hook inside the kit's own processes)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(source)
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH", "")]))}


GRAD_HOOK = '''"""Test hook (helpers.grad_hook): record each process's first optimizer step: the weights before it,
the micro-batches it was computed from and the gradients it applies (after DDP's all-reduce)."""
import os

import torch

import trashseg.training.steps as _steps
import trashseg.training.trainer as _trainer

_out, _rank = os.environ["TRASHSEG_TEST_GRADS"], os.environ.get("RANK", "0")
_seen = {"batches": [], "done": False}


class _Recording:
    def __init__(self, loader):
        self.loader = loader

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            if not _seen["done"]:
                _seen["batches"].append({"image": batch["image"].clone(), "mask": batch["mask"].clone()})
            yield batch


_real_epoch = _trainer.train_one_epoch


def _epoch(model, loader, *args, **kwargs):
    if not _seen["done"]:
        inner = getattr(model, "module", model)
        _seen["weights"] = {k: v.detach().clone() for k, v in inner.state_dict().items()}
        loader = _Recording(loader)
    return _real_epoch(model, loader, *args, **kwargs)


_real_step = _steps.Stepper.step


def _step(self, loss):
    if not _seen["done"]:
        _seen["done"] = True
        inner = getattr(self.model, "module", self.model)
        grads = {n: p.grad.detach().clone() for n, p in inner.named_parameters() if p.grad is not None}
        record = {"weights": _seen["weights"], "batches": _seen["batches"], "grads": grads}
        torch.save(record, os.path.join(_out, f"rank{_rank}.pt"))
    return _real_step(self, loss)


_trainer.train_one_epoch = _epoch
_steps.Stepper.step = _step
'''


def grad_hook(folder: Path) -> dict:
    """Environment that makes every training process started with it save its first optimizer step
    (weights before it, its micro-batches, the gradients it applies) to folder/rank<RANK>.pt."""
    return {**sitecustomize(folder, GRAD_HOOK), "TRASHSEG_TEST_GRADS": str(folder)}
