"""`trashseg eval`: a checkpoint scored, with the configured TTA and CRF, on any annotated COCO file
(a hold-out set, another recording date), the result kept as JSON beside the run."""

from __future__ import annotations

from pathlib import Path

from trashseg.atomic import write_json
from trashseg.data.loaders import load_set
from trashseg.evaluation.metrics import Scorer, format_table
from trashseg.inference.predictor import Predictor
from trashseg.runs import eval_result
from trashseg.settings import Settings


def evaluate_checkpoint(cfg: Settings, ckpt: Path, json_path: Path, image_root: Path | None, out: Path | None) -> dict:
    predictor = Predictor(ckpt, cfg)
    cs = load_set(cfg, json_path, image_root if image_root is not None else json_path.parent)
    scorer, names = Scorer(), []
    for index, probs, mask in predictor.predict_set(cs, with_masks=True, desc="eval"):
        scorer.update(mask, probs.argmax(0))
        names.append(cs.file_name(cs.image_ids[index]))
    result = scorer.result()
    result["per_image_iou"] = {n: (v if v == v else None) for n, v in zip(names, scorer.per_image)}  # NaN: None
    result.update(
        {
            "checkpoint": str(ckpt),
            "json": str(json_path),
            "score_size": predictor.size,
            "tta": predictor.tta,
            "crf": predictor.describe()["crf"],
            "speed": predictor.speed.record(),
        }
    )
    out = out or eval_result(cfg, json_path)
    write_json(out, result)
    print(format_table(result))
    print(f"wrote {out}")
    return result
