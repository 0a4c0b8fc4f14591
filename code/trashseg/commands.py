"""Entry points shared by the model folders: each folder's train.py / infer.py passes its own
config.yaml here, so the folders hold only what differs between models."""

from __future__ import annotations

from pathlib import Path

from trashseg.atomic import write_json
from trashseg.cli import base_parser, friendly_errors
from trashseg.config import load_config
from trashseg.errors import TrashsegError


def train_main(config_path: Path, argv=None) -> None:
    parser = base_parser(f"Train {Path(config_path).parent.name} on one fold")
    args = parser.parse_args(argv)

    @friendly_errors
    def run():
        cfg = load_config(config_path, args.overrides, preset=args.preset)
        from trashseg.training.trainer import train

        train(cfg)

    run()


def infer_main(config_path: Path, argv=None) -> None:
    parser = base_parser(
        f"{Path(config_path).parent.name}: write test and out-of-fold probabilities, "
        "or score a checkpoint on an annotated COCO file (--eval)"
    )
    parser.add_argument("--checkpoint", type=Path, help="default: <run dir>/best.pt")
    parser.add_argument("--splits", nargs="+", default=["test", "valid"], choices=["test", "valid"])
    parser.add_argument("--eval", dest="eval_json", type=Path, help="annotated COCO JSON to score")
    parser.add_argument("--image-root", type=Path, help="images of --eval JSON (default: its folder)")
    parser.add_argument("--out", type=Path, help="--eval result JSON (default: <run dir>/eval_<name>.json)")
    args = parser.parse_args(argv)

    @friendly_errors
    def run():
        from trashseg.runs import run_dir

        cfg = load_config(config_path, args.overrides, preset=args.preset)
        ckpt = args.checkpoint or run_dir(cfg) / "best.pt"
        if args.eval_json:
            evaluate_checkpoint(cfg, ckpt, args.eval_json, args.image_root, args.out)
        else:
            infer(cfg, ckpt, args.splits)

    run()


def infer(cfg: dict, ckpt: Path, splits: list[str]) -> None:
    from trashseg.data.loaders import load_set
    from trashseg.inference.predictor import Predictor, write_probabilities
    from trashseg.runs import data_json, probs_path

    if cfg["train"]["train_all"] and "valid" in splits:
        if splits == ["valid"]:
            raise TrashsegError("TRAIN_ALL=1: a run on all data has no validation images (SPLITS=test)")
        splits = [s for s in splits if s != "valid"]  # trained on every image: nothing is out of fold
    sets = {split: data_json(cfg, "test_json" if split == "test" else "valid_json") for split in splits}
    predictor = Predictor(ckpt, cfg)
    for split, json_path in sets.items():
        write_probabilities(predictor, load_set(cfg, json_path), probs_path(cfg, split), split)


def evaluate_checkpoint(cfg: dict, ckpt: Path, json_path: Path, image_root: Path | None, out: Path | None) -> dict:
    """Score a checkpoint (with the configured TTA/CRF) on any annotated COCO file."""
    from trashseg.data.loaders import load_set
    from trashseg.evaluation.metrics import Scorer, format_table
    from trashseg.inference.predictor import Predictor
    from trashseg.runs import eval_result

    predictor = Predictor(ckpt, cfg)
    cs = load_set(cfg, json_path, image_root if image_root is not None else json_path.parent)
    scorer = Scorer()
    for _, probs, mask in predictor.predict_set(cs, with_masks=True, desc="eval"):
        scorer.update(mask, probs.argmax(0))
    result = scorer.result()
    result.update(
        {
            "checkpoint": str(ckpt),
            "json": str(json_path),
            "score_size": predictor.size,
            "tta": predictor.tta,
            "crf": predictor.describe()["crf"],
        }
    )
    out = out or eval_result(cfg, json_path)
    write_json(out, result)
    print(format_table(result))
    print(f"wrote {out}")
    return result
