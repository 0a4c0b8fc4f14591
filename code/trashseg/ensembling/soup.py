"""`make soup`: a uniform model soup, the average of several checkpoints' weights of one architecture,
written as an ordinary run that infer, oof and ensemble take, and scored out of fold at once.

Two kinds. ``epochs`` (default): in each fold run, the weights of the last epochs the trainer kept
(``train.keep_last: N``, files epoch<e>.pt) -> RUNS/<model>-soup/fold<k>/; its validation
probabilities are written and the soup's OOF score is printed beside the run's own, so it is judged
out of fold before it is trusted. ``folds``: every fold's best.pt -> RUNS/<model>-soup/all/ (test
probabilities only): a soup of folds has seen every image, so it cannot be scored out of fold;
the folds' own OOF score is what vouches for it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from trashseg.atomic import atomic_open, atomic_path
from trashseg.config import dump, upgrade
from trashseg.errors import TrashsegError
from trashseg.modeling.checkpoint import load_checkpoint
from trashseg.runs import ALL, Layout, epoch_checkpoints
from trashseg.settings import Settings, changed


def average(paths: list[Path]) -> dict:
    """The mean of the checkpoints' model tensors (integer buffers taken from the first); every
    file must hold the same keys and shapes."""
    first = load_checkpoint(paths[0])
    total = {k: v.double() if v.is_floating_point() else v.clone() for k, v in first["model"].items()}
    for path in paths[1:]:
        state = load_checkpoint(path)["model"]
        if state.keys() != total.keys():
            raise TrashsegError(f"{path}: holds other weights than {paths[0]} (not the same architecture)")
        for key, value in state.items():
            if value.shape != total[key].shape:
                raise TrashsegError(f"{path}: {key} is {tuple(value.shape)}, {paths[0]} has {tuple(total[key].shape)}")
            if value.is_floating_point():
                total[key] += value.double()
    return {k: (v / len(paths)).to(first["model"][k].dtype) if v.is_floating_point() else v for k, v in total.items()}


def write_soup(out_dir: Path, state: dict, cfg: Settings, sources: list[Path]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / "best.pt"
    payload = {
        "model": state,
        "config": cfg.model_dump(),
        "epoch": 0,
        "metrics": {"soup_of": [str(p) for p in sources]},
    }
    with atomic_path(ckpt, suffix=".pt") as tmp:
        torch.save(payload, tmp)
    with atomic_open(out_dir / "config.yaml") as fh:
        fh.write(dump(cfg))
    with atomic_open(out_dir / "soup.yaml") as fh:
        fh.write(yaml.safe_dump({"sources": [str(p) for p in sources]}))
    return ckpt


def soup(cfg: Settings, kind: str) -> list[Path]:
    from trashseg.inference.predictor import infer

    layout = Layout(Path(cfg.train.runs_dir))
    model = cfg.model.name
    name = f"{model}-soup"
    folds = sorted(
        (d for d in layout.model_dir(model).glob("fold*") if d.name[4:].isdigit() and (d / "best.pt").is_file()),
        key=lambda d: int(d.name[4:]),
    )
    if not folds:
        raise TrashsegError(f"no {layout.model_dir(model)}/fold*/best.pt: train the folds first")
    made = []
    if kind == "folds":
        sources = [d / "best.pt" for d in folds]
        run_cfg = changed(upgrade(load_checkpoint(sources[0])["config"]), {"model.name": name, "train.train_all": True})
        ckpt = write_soup(layout.run(name, ALL), average(sources), run_cfg, sources)
        print(f"soup of {len(sources)} folds -> {ckpt} (it has seen every image: no out-of-fold score exists)")
        infer(
            changed(cfg, {"model.name": name, "train.train_all": True}),
            ckpt,
            ["test"],
        )
        return [ckpt]
    for run in folds:
        sources = [path for _, path in epoch_checkpoints(run)]
        if len(sources) < 2:
            raise TrashsegError(
                f"{run}: {len(sources)} kept epoch file(s); train with train.keep_last=N (N >= 2, e.g. "
                "ARGS='--set train.keep_last=3') to keep the last epochs' weights for a soup"
            )
        fold = int(run.name[4:])
        run_cfg = changed(upgrade(load_checkpoint(sources[0])["config"]), {"model.name": name})
        ckpt = write_soup(layout.run(name, fold), average(sources), run_cfg, sources)
        print(f"fold {fold}: soup of {', '.join(p.name for p in sources)} -> {ckpt}")
        fold_cfg = changed(cfg, {"model.name": name, "train.fold": fold})
        infer(
            fold_cfg,
            ckpt,
            ["valid", "test"] if (Path(cfg.data.data_dir) / cfg.data.test_json).is_file() else ["valid"],
        )
        made.append(ckpt)
    return made


def score(cfg: Settings, models: list[str]) -> None:
    """OOF of the soup beside its source's (when every fold of the source has valid probabilities)."""
    from trashseg.data.loaders import load_set
    from trashseg.evaluation.oof import Truth, score_and_write
    from trashseg.runs import data_dir

    layout = Layout.of(cfg)
    truth = Truth(cfg, load_set(cfg, data_dir(cfg) / "train_all.json", quiet=True), cfg.eval.score_size)
    for model in models:
        if not layout.fold_probs(model, "valid"):
            print(f"no OOF of {model} to compare with: infer its folds' validation images (SPLITS=valid) first")
        else:
            result = score_and_write(layout, truth, model)
            print(
                f"OOF {model}: mIoU {result['miou']:.4f} (per-image {result['miou_per_image']:.4f})",
                flush=True,
            )
