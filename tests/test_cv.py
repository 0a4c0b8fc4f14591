import threading

from trashseg.cli.cv import Job, run_jobs


def test_jobs_spread_one_per_gpu_never_two_on_one():
    busy, lock, seen, peak = set(), threading.Lock(), [], [0]
    # the first three jobs hold their GPU until all three run at once: run_jobs must start them
    # together (a serial runner would leave the barrier waiting and fail it), on no clock
    together = threading.Barrier(3, timeout=60)

    def runner(job, gpu):
        with lock:
            assert gpu not in busy
            busy.add(gpu)
            seen.append(gpu)
            peak[0] = max(peak[0], len(busy))
            first = len(seen) <= 3
        if first:
            together.wait()
        with lock:
            busy.remove(gpu)
        return 0

    jobs = [Job("train", ("--model", "fpn"), k) for k in range(5)] + [
        Job("train", ("--model", "deeplab"), k) for k in range(5)
    ]
    results = run_jobs(jobs, 3, runner)
    assert sorted((j.run, j.fold) for j, _ in results) == sorted((j.run, j.fold) for j in jobs)
    assert set(seen) == {0, 1, 2} and peak[0] == 3


def test_single_gpu_runs_in_order_without_pinning():
    order = []
    run_jobs([Job("train", (), 0), Job("train", (), 1)], 1, lambda job, gpu: order.append((job.fold, gpu)) or 0)
    assert order == [(0, None), (1, None)]


def test_the_merge_reads_the_run_folder_a_set_model_name_trains_into():
    """make cv EXP=cpu-lite ARGS='--set model.name=mine': the fold jobs train runs/mine, so the ensemble
    must merge mine, not the preset's name; without the --set each run keeps its own name."""
    from trashseg.cli import options
    from trashseg.cli.cv import trained_name

    p = options.parser("cv", "", ["MODELS", "EXP", "K", "GPUS", "RUNS"], sets=True)
    given = options.parse(p, ["--exp=cpu-lite", "--set=model.name=mine"])
    assert trained_name(given, exp="cpu-lite") == "mine"
    plain = options.parse(p, ["--models=fpn deeplab"])
    assert [trained_name(plain, model=m) for m in ("fpn", "deeplab")] == ["fpn", "deeplab"]
    assert trained_name(options.parse(p, ["--exp=cpu-lite"]), exp="cpu-lite") == "cpu-lite"
