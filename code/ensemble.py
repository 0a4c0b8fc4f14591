"""Merge saved per-model probabilities into the competition CSV (= `trashseg ensemble`).

python code/ensemble.py --models "fpn deeplab" --out submissions/x.csv [--tta 1]
python code/ensemble.py --probs "runs/fpn/fold0/probs_test.npy runs/fpn/fold1/probs_test.npy" --out submissions/x.csv
"""

import sys

from trashseg.cli import main

if __name__ == "__main__":
    main(["ensemble", *sys.argv[1:]])
