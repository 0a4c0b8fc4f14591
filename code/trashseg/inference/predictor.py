"""Checkpoint -> softmax probabilities at the scoring size for test and out-of-fold images."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from trashseg.modeling.checkpoint import load_checkpoint
from trashseg.data.classes import CLASSES
from trashseg.data.coco import CocoSet
from trashseg.config import upgrade
from trashseg.inference.crf import refine
from trashseg.data.images import read_rgb
from trashseg.data.loaders import make_loader
from trashseg.modeling.architectures import build_model, resolve_device
from trashseg.inference.tta import probabilities, tta_views
from trashseg.inference.probs import ProbsWriter
from trashseg.data.transforms import eval_transform


def load_trained_model(ckpt_path: Path, device: torch.device) -> tuple[torch.nn.Module, dict, dict]:
    """Model rebuilt from the checkpoint's own config (no weight download), and that config."""
    state = load_checkpoint(ckpt_path)
    cfg = upgrade(state["config"])
    model_cfg = {**cfg, "model": {**cfg["model"], "weights": "none"}}
    model = build_model(model_cfg)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), cfg, state


def with_checkpoint_inputs(cfg: dict, ckpt_cfg: dict) -> dict:
    """Today's config (data, eval, TTA) fed the way the checkpoint was trained: its input size and
    its normalisation, so a model is never scored on inputs it did not see in training."""
    return {**cfg, "train": {**cfg["train"], "img_size": ckpt_cfg["train"]["img_size"]},
            "augment": ckpt_cfg["augment"]}


@torch.no_grad()
def write_probabilities(cfg: dict, cs: CocoSet, ckpt_path: Path, out_path: Path, split: str) -> Path:
    device = resolve_device(str(cfg["train"]["device"]))
    model, ckpt_cfg, state = load_trained_model(ckpt_path, device)
    size = int(cfg["eval"]["score_size"])
    run_cfg = with_checkpoint_inputs(cfg, ckpt_cfg)
    loader = make_loader(run_cfg, cs, eval_transform(run_cfg), with_masks=False,
                         batch_size=int(cfg["eval"]["batch_size"]))
    manifest = {
        "image_ids": [cs.file_name(i) for i in cs.image_ids],
        "coco_ids": cs.image_ids,
        "source_json": str(cs.json_path),
        "split": split,
        "model": ckpt_cfg["model"]["name"],
        "arch": ckpt_cfg["model"]["arch"],
        "encoder": ckpt_cfg["model"]["encoder"],
        "fold": ckpt_cfg["train"]["fold"],
        "checkpoint": str(ckpt_path),
        "checkpoint_epoch": state.get("epoch"),
        "resolution": size,
        "tta": tta_views(cfg),
        "crf": cfg["crf"] if cfg["crf"]["enabled"] else None,
        "classes": list(CLASSES),
    }
    writer = ProbsWriter(out_path, len(cs), len(CLASSES), size, manifest)
    try:
        for batch in tqdm(loader, desc=f"infer {split}", leave=False):
            probs = probabilities(model, batch["image"].to(device), size, **tta_views(cfg)).cpu().numpy()
            for index, p in zip(batch["index"].tolist(), probs):
                if cfg["crf"]["enabled"]:
                    rgb = cv2.resize(read_rgb(loader.dataset.items[index].image_path), (size, size),
                                     interpolation=cv2.INTER_AREA)
                    p = refine(p, rgb, cfg)
                writer.write(index, p)
    except BaseException as exc:
        writer.abort(exc)
        raise
    writer.close()
    print(f"wrote {out_path} ({len(cs)} images, {size}x{size}, float16)")
    return out_path
