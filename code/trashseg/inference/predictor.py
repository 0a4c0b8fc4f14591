"""One predictor for every stage that turns a checkpoint into predictions: infer (test and
out-of-fold probability files, which OOF scoring, fit-ensemble and the ensemble read), eval, report
and predict. It rebuilds the model from the checkpoint's own config (no weight download), feeds it
the way it was trained (input size, normalisation), applies the configured TTA and DenseCRF, and
yields softmax probabilities at the scoring size, in the precision and memory layout the config's
``speed`` section resolves to on this machine (the training's choice: runtime/precision.py)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from trashseg.config import upgrade
from trashseg.data.classes import CLASSES
from trashseg.data.coco import CocoSet
from trashseg.data.images import read_rgb
from trashseg.data.loaders import make_loader
from trashseg.data.transforms import eval_transform
from trashseg.hashing import file_sha256
from trashseg.inference.crf import refine
from trashseg.inference.probs import ProbsReader, ProbsWriter, making, probs_current, tta_views
from trashseg.inference.tta import probabilities
from trashseg.modeling.architectures import build_model, input_multiple
from trashseg.modeling.checkpoint import load_checkpoint
from trashseg.runtime.devices import resolve_device
from trashseg.runtime.precision import choose, say_once
from trashseg.settings import Settings, changed


def with_checkpoint_inputs(cfg: Settings, ckpt_cfg: Settings) -> Settings:
    """Today's config (data, eval, TTA) fed the way the checkpoint was trained: its input size and
    its normalisation, so a model is never scored on inputs it did not see in training."""
    return changed(cfg, {"train.img_size": ckpt_cfg.train.img_size, "augment": ckpt_cfg.augment})


class Predictor:
    """A trained checkpoint, ready to predict with the TTA and CRF settings of ``cfg``."""

    def __init__(self, checkpoint: Path, cfg: Settings, device: torch.device | None = None):
        self.checkpoint = Path(checkpoint)
        self.device = device or resolve_device(cfg.train.device)
        state = load_checkpoint(self.checkpoint)
        self.ckpt_cfg = upgrade(state["config"])
        self.epoch = state.get("epoch")
        model = build_model(changed(self.ckpt_cfg, {"model.weights": "none"}))
        model.load_state_dict(state["model"])
        self.speed = choose(cfg.speed, self.device)
        say_once(self.speed)
        print(f"predicting with {self.checkpoint} on {self.device} ({self.speed.describe()})", flush=True)
        model = model.to(self.device).eval()
        self.model = model.to(memory_format=torch.channels_last) if self.speed.channels_last else model
        self.cfg = with_checkpoint_inputs(cfg, self.ckpt_cfg)
        self.size = cfg.eval.score_size
        self.tta = tta_views(cfg)
        self.crf = cfg.crf if cfg.crf.enabled else None
        self.transform = eval_transform(self.cfg)
        self.multiple = input_multiple(self.ckpt_cfg)

    @cached_property
    def checkpoint_sha256(self) -> str:
        """The checkpoint's content hash, read once: every file this predictor writes names it."""
        return file_sha256(self.checkpoint)

    def describe(self) -> dict:
        """What produced a set of predictions, for probability-file manifests and results."""
        mc, tc = self.ckpt_cfg.model, self.ckpt_cfg.train
        return {
            "model": mc.name,
            "arch": mc.arch,
            "encoder": mc.encoder,
            "fold": tc.fold,
            "checkpoint": str(self.checkpoint),
            "checkpoint_epoch": self.epoch,
            **making(self.cfg, self.checkpoint_sha256),
            "speed": self.speed.record(),
        }

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """A normalised N,3,H,W batch -> N,C,size,size softmax probabilities (TTA averaged)."""
        return probabilities(self.forward, images.to(self.device), self.size, multiple=self.multiple, **self.tta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's float32 logits for one input batch, run as ``speed`` resolved."""
        if self.speed.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        amp = self.speed.amp
        with torch.autocast(self.device.type, dtype=amp or torch.float32, enabled=amp is not None):
            return self.model(x).float()

    def refine(self, probs: np.ndarray, image_path: Path) -> np.ndarray:
        """DenseCRF on one image's probabilities when enabled (the photo resized to the scoring size)."""
        if self.crf is None:
            return probs
        rgb = cv2.resize(read_rgb(image_path), (self.size, self.size), interpolation=cv2.INTER_AREA)
        return refine(probs, rgb, self.crf)

    def predict_set(
        self, cs: CocoSet, with_masks: bool = False, desc: str = "predict", progress: bool = True
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
        """(row index in ``cs``, C x size x size probabilities, truth mask at the scoring size or None)
        for every image of ``cs``, in order."""
        loader = make_loader(
            self.cfg,
            cs,
            self.transform,
            with_masks=with_masks,
            batch_size=self.cfg.eval.batch_size,
            mask_size=self.size if with_masks else None,
            progress=progress,
        )
        items = loader.dataset.items
        for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
            probs = self.probabilities(batch["image"]).cpu().numpy()
            masks = batch["mask"].numpy() if with_masks else [None] * len(probs)
            for index, p, mask in zip(batch["index"].tolist(), probs, masks):
                yield index, self.refine(p, items[index].image_path), mask

    def predict_image(self, rgb: np.ndarray) -> np.ndarray:
        """One H x W x 3 photo of any size -> C x H x W probabilities at the photo's own size."""
        x = self.transform(image=rgb)["image"][None]
        probs = self.probabilities(x)[0].cpu().numpy()
        return np.stack([cv2.resize(p, (rgb.shape[1], rgb.shape[0])) for p in probs])


def saved_probabilities(predictor: Predictor, cs: CocoSet, path: Path) -> ProbsReader | None:
    """The probability file at ``path`` when it holds exactly what ``predictor`` would compute for
    ``cs``, else None: a stage that only scores (report) reads it instead of predicting again."""
    now = making(predictor.cfg, predictor.checkpoint_sha256)
    if not probs_current(path, now, [cs.file_name(i) for i in cs.image_ids]):
        return None
    return ProbsReader(path)


def write_probabilities(predictor: Predictor, cs: CocoSet, out_path: Path, split: str) -> Path:
    """Every image's probabilities into one float16 file + manifest, written atomically."""
    manifest = {
        "image_ids": [cs.file_name(i) for i in cs.image_ids],
        "coco_ids": cs.image_ids,
        "source_json": str(cs.json_path),
        "split": split,
        **predictor.describe(),
    }
    writer = ProbsWriter(out_path, len(cs), len(CLASSES), predictor.size, manifest)
    try:
        for index, probs, _ in predictor.predict_set(cs, desc=f"infer {split}"):
            writer.write(index, probs)
    except BaseException as exc:
        writer.abort(exc)
        raise
    writer.close()
    print(f"wrote {out_path} ({len(cs)} images, {predictor.size}x{predictor.size}, float16)")
    return out_path


def infer(cfg: Settings, ckpt: Path, splits: list[str]) -> None:
    """`trashseg infer`: the checkpoint's probability files for ``splits`` (test, valid) of the run."""
    from trashseg.data.loaders import load_set
    from trashseg.errors import TrashsegError
    from trashseg.runs import data_json, probs_path

    if cfg.train.train_all and "valid" in splits:
        if splits == ["valid"]:
            raise TrashsegError("TRAIN_ALL=1: a run on all data has no validation images (SPLITS=test)")
        splits = [s for s in splits if s != "valid"]  # trained on every image: nothing is out of fold
    sets = {split: data_json(cfg, "test_json" if split == "test" else "valid_json") for split in splits}
    predictor = Predictor(ckpt, cfg)
    for split, json_path in sets.items():
        write_probabilities(predictor, load_set(cfg, json_path), probs_path(cfg, split), split)
