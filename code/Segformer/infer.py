"""Segformer probabilities for test.json and the fold's validation images, or `--eval JSON` scoring."""

from pathlib import Path

from trashseg.commands import infer_main

if __name__ == "__main__":
    infer_main(Path(__file__).with_name("config.yaml"))
