import threading
import time

from trashseg.cv import Job, run_jobs


def test_jobs_spread_one_per_gpu_never_two_on_one():
    busy, lock, seen, peak = set(), threading.Lock(), [], [0]

    def runner(job, gpu):
        with lock:
            assert gpu not in busy
            busy.add(gpu)
            seen.append(gpu)
            peak[0] = max(peak[0], len(busy))
        time.sleep(0.05)
        with lock:
            busy.remove(gpu)
        return 0

    jobs = [Job("train-fpn", k) for k in range(5)] + [Job("train-deeplab", k) for k in range(5)]
    results = run_jobs(jobs, 3, runner)
    assert sorted((j.target, j.fold) for j, _ in results) == sorted((j.target, j.fold) for j in jobs)
    assert set(seen) == {0, 1, 2} and peak[0] == 3


def test_single_gpu_runs_in_order_without_pinning():
    order = []
    run_jobs([Job("t", 0), Job("t", 1)], 1, lambda job, gpu: order.append((job.fold, gpu)) or 0)
    assert order == [(0, None), (1, None)]
