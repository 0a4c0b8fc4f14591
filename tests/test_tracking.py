"""Live tracking: TensorBoard events, read back with TensorBoard's own reader, equal metrics.csv
(across a resume, with no duplicated epoch); an offline W&B run holds the same summary; no key is
ever written or printed (tracking off: test_scale's resume run)."""

import json
import struct

import pytest

from helpers import run_make, tiny_run
from trashseg.training.tracking import Tracker, flat_config

SECRET = "sk-test-0123456789abcdef0123456789abcdef01234567"


def wandb_records(path):
    """Records of a W&B transaction log (.wandb): LevelDB log framing (32 KiB blocks, 7-byte record
    headers) around W&B's own protobuf Records, decoded with wandb's own classes."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0:  # zero padding at a block's end
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            yield record


def test_flat_config_and_disabled_tracker(tmp_path, base_cfg):
    flat = flat_config(base_cfg.model_dump())
    assert flat["optimizer.lr"] == pytest.approx(1e-4) and flat["tta.scales"] == "[0.75, 1.0, 1.25]"
    tracker = Tracker(base_cfg, tmp_path / "run", 0, enabled=False)
    tracker.step(1, 0.5, 1e-3)
    tracker.finish(base_cfg, None)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_tensorboard_and_offline_wandb_follow_metrics_csv_across_a_resume(coco_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "runs" / "fpn" / "fold0"
    common = tiny_run(coco_dir, tmp_path, BATCH=2, LOGGER="tensorboard,wandb", FOLD=0)
    common["ARGS"] += " --set tracking.overlays_every=1 --set tracking.overlays=2"
    env = {"WANDB_MODE": "offline", "WANDB_API_KEY": SECRET, "WANDB_SILENT": "true"}
    out = run_make("train-fpn", env=env, **common, EPOCHS=2)
    out += run_make("train-fpn", env=env, **common, EPOCHS=3, RESUME=1)
    assert SECRET not in out

    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()]
    header, rows = rows[0], rows[1:]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    for column in ("val_miou", "val_miou_per_image", "val_loss", "train_loss", "lr"):
        logged = events.Scalars(f"epoch/{column}")
        assert [e.value for e in logged] == pytest.approx([float(r[header.index(column)]) for r in rows], rel=1e-5)
    steps = [e.step for e in events.Scalars("epoch/val_miou")]
    assert steps == sorted(set(steps)) and len(steps) == 3  # resumed: no epoch twice
    per_step = events.Scalars("train/loss_step")
    assert len(per_step) == steps[-1] and per_step[-1].step == steps[-1]
    assert len(events.Images("overlays/0")) == 3 and "iou/Background" in events.Tags()["scalars"]
    best = max(float(r[header.index("val_miou")]) for r in rows)
    assert events.Scalars("best/miou")[-1].value == pytest.approx(best, rel=1e-5)

    wandb_dirs = sorted((run / "wandb").glob("offline-run-*"))
    run_id = (run / "wandb_run_id").read_text().strip()
    assert len(wandb_dirs) == 2 and all(d.name.endswith(run_id) for d in wandb_dirs)  # resumed: same run
    summary = {}
    for record in wandb_records(next(wandb_dirs[-1].glob("run-*.wandb"))):
        if record.WhichOneof("record_type") == "summary":
            summary.update(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.summary.update}
            )
    assert summary["best/miou"] == pytest.approx(best, rel=1e-5)
    assert summary["epoch/val_miou"] == pytest.approx(float(rows[-1][header.index("val_miou")]), rel=1e-5)
    leaked = [p for p in run.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert not leaked


@pytest.mark.slow
def test_make_tensorboard_serves_the_runs_folder(tmp_path):
    import os
    import signal
    import urllib.request

    from helpers import free_port, start_make, wait_for

    port = free_port()
    (tmp_path / "runs").mkdir()
    server = start_make("tensorboard", log=tmp_path / "tb.log", RUNS=tmp_path / "runs", PORT=port)

    def answers():
        assert server.poll() is None, (tmp_path / "tb.log").read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"http://localhost:{port}/data/logdir", timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            return None

    try:
        assert wait_for(answers, "TensorBoard to answer on its port", timeout=120)["logdir"] == str(tmp_path / "runs")
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
