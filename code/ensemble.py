"""Merge saved per-model probabilities into the competition CSV (see trashseg.ensembling.ensemble).

python code/ensemble.py --models fpn deeplab --out submissions/x.csv [--set tta.enabled=true]
python code/ensemble.py runs/fpn/fold*/probs_test.npy --test-json data/test.json --out submissions/x.csv
"""

from trashseg.ensembling.ensemble import main

if __name__ == "__main__":
    main()
