"""Merge saved per-model probabilities into the competition CSV (see trashseg.ensemble).

    python code/ensemble.py runs/*/fold*/probs_test.npy --test-json data/test.json --out submissions/x.csv
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from trashseg.ensembling.ensemble import main  # noqa: E402

if __name__ == "__main__":
    main()
