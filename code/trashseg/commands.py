"""Entry points shared by the model folders: each folder's train.py / infer.py passes its own
config.yaml here, so the folders hold only what differs between models."""
from __future__ import annotations

import json
from pathlib import Path

from trashseg.atomic import write_json
from trashseg.cli import base_parser, friendly_errors
from trashseg.config import load_config


def train_main(config_path: Path, argv=None) -> None:
    parser = base_parser(f"Train {Path(config_path).parent.name} on one fold")
    args = parser.parse_args(argv)

    @friendly_errors
    def run():
        from trashseg.training.trainer import train
        train(load_config(config_path, args.overrides))

    run()


def infer_main(config_path: Path, argv=None) -> None:
    parser = base_parser(f"{Path(config_path).parent.name}: write test and out-of-fold probabilities, "
                         "or score a checkpoint on an annotated COCO file (--eval)")
    parser.add_argument("--checkpoint", type=Path, help="default: <run dir>/best.pt")
    parser.add_argument("--splits", nargs="+", default=["test", "valid"], choices=["test", "valid"])
    parser.add_argument("--eval", dest="eval_json", type=Path, help="annotated COCO JSON to score")
    parser.add_argument("--image-root", type=Path, help="images of --eval JSON (default: its folder)")
    parser.add_argument("--out", type=Path, help="--eval result JSON (default: <run dir>/eval_<name>.json)")
    args = parser.parse_args(argv)

    @friendly_errors
    def run():
        from trashseg.runs import run_dir
        cfg = load_config(config_path, args.overrides)
        ckpt = args.checkpoint or run_dir(cfg) / "best.pt"
        if args.eval_json:
            evaluate_checkpoint(cfg, ckpt, args.eval_json, args.image_root, args.out)
        else:
            infer(cfg, ckpt, args.splits)

    run()


def infer(cfg: dict, ckpt: Path, splits: list[str]) -> None:
    from trashseg.inference.predictor import write_probabilities
    from trashseg.data.loaders import load_set
    from trashseg.runs import data_json, run_dir
    from trashseg.inference.tta import probs_name
    for split in splits:
        cs = load_set(cfg, data_json(cfg, "test_json" if split == "test" else "valid_json"))
        write_probabilities(cfg, cs, ckpt, run_dir(cfg) / probs_name(split, cfg), split)


def evaluate_checkpoint(cfg: dict, ckpt: Path, json_path: Path, image_root: Path | None, out: Path | None) -> dict:
    from trashseg.evaluation.evaluate import evaluate
    from trashseg.inference.predictor import load_trained_model, with_checkpoint_inputs
    from trashseg.data.loaders import load_set, make_loader
    from trashseg.evaluation.metrics import format_table
    from trashseg.modeling.architectures import resolve_device
    from trashseg.runs import run_dir
    from trashseg.data.transforms import eval_transform

    device = resolve_device(str(cfg["train"]["device"]))
    model, ckpt_cfg, _ = load_trained_model(ckpt, device)
    run_cfg = with_checkpoint_inputs(cfg, ckpt_cfg)
    size = int(cfg["eval"]["score_size"])
    cs = load_set(cfg, json_path, image_root if image_root is not None else json_path.parent)
    loader = make_loader(run_cfg, cs, eval_transform(run_cfg), with_masks=True,
                         batch_size=int(cfg["eval"]["batch_size"]), mask_size=size)
    result = evaluate(model, loader, device, size)
    result.update({"checkpoint": str(ckpt), "json": str(json_path), "score_size": size})
    out = out or run_dir(cfg) / f"eval_{json_path.stem}.json"
    write_json(out, result)
    print(format_table(result))
    print(f"wrote {out}")
    return result
