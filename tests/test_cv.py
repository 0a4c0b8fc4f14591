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
