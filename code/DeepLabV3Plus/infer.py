"""DeepLabV3Plus probabilities for test.json and the fold's validation images, or `--eval JSON` scoring."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from trashseg.commands import infer_main  # noqa: E402

if __name__ == "__main__":
    infer_main(HERE / "config.yaml")
