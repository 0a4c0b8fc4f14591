"""Multi-process DDP (gloo, CPU) through the real make targets: the gradients each rank applies are
all-reduced and equal one process's on the same global batch; validation equals a single-process
evaluation; two nodes (two make processes over loopback) train one run; resume after SIGKILL."""

import csv
import json

import pytest
import torch

from helpers import free_port, grad_hook, kill_hook, make_process, run_make, start_make, tiny_run

pytestmark = pytest.mark.slow  # drives make targets / trains in subprocesses


@pytest.fixture
def tiny(coco_dir, tmp_path):
    return tiny_run(coco_dir, tmp_path, FOLD=0, BATCH=2)


def rows(run):
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_ddp_two_processes_match_single_process_evaluation(tiny, coco_dir, tmp_path):
    # evaluation batch 1 on both sides: an untrained net's near-ties must not flip with batch shape
    tiny = {**tiny, "ARGS": tiny["ARGS"] + " --set eval.batch_size=1"}
    out = run_make("train-fpn", **tiny, EPOCHS=1, GPUS=2, MASTER_PORT=free_port())
    assert "x2" in out  # both ranks joined
    run = tmp_path / "runs" / "fpn" / "fold0"
    assert sorted(p.name for p in run.glob("*.pt")) == ["best.pt", "last.pt"]
    record = json.loads((run / "run_record.json").read_text())
    assert record["world_size"] == 2 and record["seed"] == 21
    ddp_miou = float(rows(run)[0]["val_miou"])
    result = tmp_path / "single.json"
    run_make("eval-fpn", **tiny, JSON=coco_dir / "valid_data0.json", OUT=result)
    single = json.loads(result.read_text())
    assert single["miou"] == pytest.approx(ddp_miou, abs=1e-6)
    assert single["images"] == len(json.loads((coco_dir / "valid_data0.json").read_text())["images"])


def test_ddp_gradients_are_all_reduced_and_equal_one_process_on_the_global_batch(tiny, tmp_path):
    """Each rank's first optimizer step (2 micro-batches of 2 images, accumulated: DDP's no_sync on the
    first) recorded from inside the real run: the gradients are the same on both ranks, and equal the
    mean of the two shards' gradients computed here in one process from the same weights and images
    (BatchNorm normalises per process, as it does without SyncBN)."""
    import yaml

    from trashseg.config import upgrade
    from trashseg.modeling.architectures import build_model
    from trashseg.settings import changed
    from trashseg.training.losses import build_loss

    sets = ("speed.amp=off", "speed.channels_last=false", "train.accumulate=2", "model.params.decoder_dropout=0.0")
    exact = "".join(f" --set {s}" for s in sets)
    hook = grad_hook(tmp_path / "grads")
    variables = {**tiny, "ARGS": tiny["ARGS"] + exact, "LOGGER": "none", "BATCH": 2}
    out = run_make("train-fpn", env=hook, **variables, EPOCHS=1, GPUS=2, MASTER_PORT=free_port())
    assert "x2" in out
    ranks = [torch.load(tmp_path / "grads" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert all(len(r["batches"]) == 2 and r["batches"][0]["image"].shape[0] == 2 for r in ranks)
    assert not torch.equal(ranks[0]["batches"][0]["image"], ranks[1]["batches"][0]["image"])  # two shards
    for name, value in ranks[0]["weights"].items():  # DDP broadcast rank 0's weights at the start
        assert torch.equal(value, ranks[1]["weights"][name]), name
    for name, grad in ranks[0]["grads"].items():  # all-reduced: the same gradient on every rank
        assert torch.allclose(grad, ranks[1]["grads"][name], rtol=0, atol=1e-7), name

    cfg = upgrade(yaml.safe_load((tmp_path / "runs" / "fpn" / "fold0" / "config.yaml").read_text()))
    model, loss_fn = build_model(changed(cfg, {"model.weights": "none"})), build_loss(cfg, quiet=True)
    expected: dict = {}
    for rank in ranks:  # one process, the global batch: each shard as its rank saw it, then their mean
        model.load_state_dict(rank["weights"])
        model.train()
        model.zero_grad()
        for batch in rank["batches"]:
            (loss_fn(model(batch["image"]).float(), batch["mask"]) / len(rank["batches"])).backward()
        for name, param in model.named_parameters():
            expected[name] = expected.get(name, 0) + param.grad / len(ranks)
    assert set(expected) == set(ranks[0]["grads"])
    for name, grad in ranks[0]["grads"].items():
        assert torch.allclose(grad, expected[name], rtol=1e-4, atol=1e-6), name
    assert max(float(g.abs().max()) for g in expected.values()) > 0


def test_two_nodes_over_loopback_train_one_run(tiny, tmp_path):
    """NNODES=2: two make processes (node 0 and node 1, one process each) on this machine join over
    127.0.0.1 and train one run into one folder, which only node 0's rank 0 writes."""
    port = free_port()
    nodes = [
        start_make(
            "train-fpn",
            log=tmp_path / f"node{rank}.log",
            **tiny,
            EPOCHS=1,
            LOGGER="none",
            NNODES=2,
            NODE_RANK=rank,
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
        )
        for rank in (0, 1)
    ]
    codes = [node.wait(timeout=600) for node in nodes]
    logs = [(tmp_path / f"node{rank}.log").read_text() for rank in (0, 1)]
    assert codes == [0, 0], logs
    assert "x2" in logs[0] and "training FPN" not in logs[1]  # rank 0 (node 0) alone prints and writes
    run = tmp_path / "runs" / "fpn" / "fold0"
    assert json.loads((run / "run_record.json").read_text())["world_size"] == 2
    assert len(rows(run)) == 1 and sorted(p.name for p in run.glob("*.pt")) == ["best.pt", "last.pt"]


# where a run can die: (what, module, function or Class.method, how many calls a 2-epoch tiny run makes)
MOMENTS = [
    ("mid-step", "trashseg.training.steps", "Stepper.step", 8),  # 8 images / BATCH 2 x 2 epochs
    ("mid-checkpoint write", "torch", "save", 3),  # best.pt and last.pt, as their temp files open
    ("mid-validation", "trashseg.evaluation.metrics", "Scorer.update", 4),  # 4 images / 2 x 2 epochs
]


def test_sigkill_at_random_moments_resumes_to_the_uninterrupted_result(tiny, tmp_path):
    """SIGKILL from inside the trainer at 5 moments drawn at random (each kind once, two more of any;
    TRASHSEG_TEST_KILL_SEED replays a draw): each time, the kit's own advice (RESUME=1, or FORCE=1 when
    no epoch ended) takes the run to the uninterrupted run's end, epoch by epoch."""
    import os
    import random

    seed = int(os.environ.get("TRASHSEG_TEST_KILL_SEED") or random.SystemRandom().randrange(10**6))
    draw = random.Random(seed)
    points = [*MOMENTS, *draw.sample(MOMENTS, 2)]
    points = [(what, module, attribute, draw.randint(1, calls)) for what, module, attribute, calls in points]
    variables = {**tiny, "BATCH": 2, "EPOCHS": 2, "LOGGER": "none"}
    run_make("train-fpn", **{**variables, "RUNS": tmp_path / "whole"})
    whole = rows(tmp_path / "whole" / "fpn" / "fold0")
    for number, (what, module, attribute, call) in enumerate(points):
        where = f"seed {seed}: {what}, call {call} of {module}.{attribute}"
        runs = tmp_path / f"killed{number}"
        hook = kill_hook(tmp_path / f"hook{number}", module, attribute, call)
        proc = make_process("train-fpn", env=hook, **{**variables, "RUNS": runs})
        assert proc.returncode != 0 and "Killed" in proc.stderr, where
        run = runs / "fpn" / "fold0"
        resume = {"RESUME": 1} if (run / "last.pt").is_file() else {"FORCE": 1}
        out = run_make("train-fpn", **{**variables, "RUNS": runs}, **resume)
        assert ("resuming" in out) == ("RESUME" in resume), where
        again = rows(run)
        assert [r["epoch"] for r in again] == ["1", "2"], where
        for a, b in zip(whole, again, strict=True):
            for key in ("train_loss", "val_loss", "val_miou", "val_miou_per_image"):
                assert float(b[key]) == pytest.approx(float(a[key]), rel=1e-4, abs=1e-6), (where, key)
        last = torch.load(run / "last.pt", weights_only=True)
        best = torch.load(run / "best.pt", weights_only=True)
        assert last["epoch"] == 2 and best["metrics"]["miou"] == pytest.approx(
            max(float(r["val_miou"]) for r in again), abs=1e-6
        ), where
        if "RESUME" in resume:
            assert json.loads((run / "run_record.json").read_text())["resumed_from_epoch"] >= 1, where
        assert not list(run.glob(".*.tmp*")) and not (run / "tensorboard").exists(), where  # no temp, no tracking
