"""`trashseg demo` (make demo): the whole path on the bundled sample, on CPU, from offline ImageNet
weights: check-data, 3 folds by recording date, FPN (EXP=cpu-lite) and DeepLabV3Plus
(EXP=cpu-lite-deeplab) trained on fold 0 and inferred, their ensemble -> submissions/demo.csv, and the
pages to look at: each run's report (runs/demo/<model>/fold0/report/index.html, scored from the
validation probabilities infer saved) and the table of both runs (runs/demo/index.html). Its runs
are the demo's own: a second `make demo` trains them again (FORCE=1), as the first did."""

from __future__ import annotations

import subprocess
import sys

SAMPLE = "data/sample"


def demo(argv: list[str]) -> int:
    if argv:
        print(__doc__)
        return 0 if argv[0] in ("-h", "--help") else 2
    run = ["--data-dir", SAMPLE, "--runs", "runs/demo", "--fold", "0"]
    steps = [
        ["check-data", "--data-dir", SAMPLE],
        ["folds", "--data-dir", SAMPLE, "--k", "3", "--group", r"^(batch_[^/]+)/"],
        ["train", "--exp", "cpu-lite", *run, "--force", "1"],
        ["infer", "--exp", "cpu-lite", *run],
        ["train", "--exp", "cpu-lite-deeplab", *run, "--force", "1"],
        ["infer", "--exp", "cpu-lite-deeplab", *run],
        [
            "ensemble",
            "--data-dir",
            SAMPLE,
            "--runs",
            "runs/demo",
            "--name",
            "demo",
            "--models",
            "cpu-lite cpu-lite-deeplab",
        ],
        ["report", "--run", "runs/demo/cpu-lite/fold0"],
        ["report", "--run", "runs/demo/cpu-lite-deeplab/fold0"],
        ["runs", "--runs", "runs/demo", "--html", "1"],
    ]
    for step in steps:
        print(f"[demo] trashseg {' '.join(step)}", flush=True)
        code = subprocess.call([sys.executable, "-m", "trashseg", *step])
        if code:
            return code
    return 0
