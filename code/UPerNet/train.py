"""Train UPerNet on one fold: `python code/UPerNet/train.py --set train.fold=0 [--set key=value ...]`."""

from pathlib import Path

from trashseg.commands import train_main

if __name__ == "__main__":
    train_main(Path(__file__).with_name("config.yaml"))
