"""Train DeepLabV3Plus on one fold: `python code/DeepLabV3Plus/train.py --set train.fold=0 [--set key=value ...]`."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from trashseg.commands import train_main  # noqa: E402

if __name__ == "__main__":
    train_main(HERE / "config.yaml")
