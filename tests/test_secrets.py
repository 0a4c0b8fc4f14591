"""No secret reaches a file the kit writes or its output: passwords in database URLs and the values of
secret-looking settings are masked (trashseg.redact) in run records and messages; a sweep's STORAGE
reaches it through the environment, so make never echoes it. The end-to-end greps live beside the
features: a real PostgreSQL sweep (test_sweep_postgres), W&B with WANDB_API_KEY (test_tracking), Kaggle
credentials (test_kaggle)."""

import json
import sys

import pytest
import torch

from helpers import free_port, make_process
from trashseg.redact import redact, redact_argv

PASSWORD = "hunter2-Zq9"


@pytest.mark.parametrize(
    "text, shown",
    [
        (f"postgresql://kit:{PASSWORD}@db:5432/sweeps", "postgresql://kit:****@db:5432/sweeps"),
        (f"mysql+pymysql://u:{PASSWORD}@h/d?x=1", "mysql+pymysql://u:****@h/d?x=1"),
        (f"postgresql://u:p@ss:{PASSWORD}@h/d", "postgresql://u:****@h/d"),  # '@' and ':' inside the password
        ("postgresql://kit@db/sweeps", "postgresql://kit@db/sweeps"),  # nothing to hide
        ("sqlite:////tmp/runs/sweeps/a.db", "sqlite:////tmp/runs/sweeps/a.db"),
        (f"KAGGLE_KEY={PASSWORD} make submit", "KAGGLE_KEY=**** make submit"),
        (f"WANDB_API_KEY={PASSWORD}", "WANDB_API_KEY=****"),
        (f"token: {PASSWORD}", "token: ****"),
        ("--set optimizer.lr=1e-3", "--set optimizer.lr=1e-3"),
    ],
)
def test_redact_masks_passwords_and_keys_only(text, shown):
    assert redact(text) == shown


def test_redact_argv_hides_the_value_after_a_secret_flag():
    argv = ["sweep.py", "--storage", f"postgresql://u:{PASSWORD}@h/db", "--api-key", PASSWORD, "--set", "train.fold=0"]
    assert redact_argv(argv) == [
        "sweep.py",
        "--storage",
        "postgresql://u:****@h/db",
        "--api-key",
        "****",
        "--set",
        "train.fold=0",
    ]


def test_the_run_record_keeps_no_secret_from_the_command_line(tmp_path, base_cfg, monkeypatch):
    from trashseg.training.run_record import write_run_record

    argv = ["train.py", "--storage", f"postgresql://kit:{PASSWORD}@127.0.0.1/db", f"KAGGLE_KEY={PASSWORD}"]
    monkeypatch.setattr(sys, "argv", argv)
    write_run_record(tmp_path, base_cfg, torch.device("cpu"), 1, None)
    record = json.loads((tmp_path / "run_record.json").read_text())
    assert record["command"][2] == "postgresql://kit:****@127.0.0.1/db" and record["command"][3] == "KAGGLE_KEY=****"
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]


def test_an_unreachable_database_is_one_line_with_the_password_masked(tmp_path):
    port = free_port()  # nothing listens on it
    url = f"postgresql://kit:{PASSWORD}@127.0.0.1:{port}/sweeps"
    proc = make_process("sweep", MODEL="fpn", TRIALS=1, RUNS=tmp_path / "runs", ENCODER_WEIGHTS="none", STORAGE=url)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert (
        f"error: STORAGE=postgresql://kit:****@127.0.0.1:{port}/sweeps: cannot open the study database" in proc.stderr
    )
    assert PASSWORD not in proc.stdout + proc.stderr  # make's echo of the command included
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]
