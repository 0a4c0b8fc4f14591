"""fit-ensemble's search scores every weighting of the simplex on every out-of-fold image: its batched
scorer (undisputed pixels counted once, classes that cannot win left out) must give exactly the
confusion matrices of merging each weighting and scoring it alone, and a bad OBJECTIVE stops first."""

import importlib

import numpy as np
import pytest
import torch

import helpers  # noqa: F401  (sets the thread count before torch)
from trashseg.data.classes import IGNORE_INDEX, NUM_CLASSES
from trashseg.ensembling.fit import confusions, simplex_grid
from trashseg.evaluation.metrics import confusion_matrix, mean_iou, mean_ious


def one_by_one(weights: torch.Tensor, stack: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """The reference: each weighting's merge on its own, scored by the competition's scorer."""
    return np.stack([confusion_matrix(target, torch.einsum("m,mchw->chw", w, stack).argmax(0)) for w in weights])


def probabilities(rng, models: int, size: int, truth: np.ndarray, noise: float) -> torch.Tensor:
    onehot = np.eye(NUM_CLASSES, dtype=np.float32)[np.where(truth == IGNORE_INDEX, 0, truth)].transpose(2, 0, 1)
    logits = 2 * onehot + rng.normal(0, noise, (models, NUM_CLASSES, size, size)).astype(np.float32)
    return torch.from_numpy(logits).softmax(1).half().float()  # float16 on disk, as probability files are


@pytest.mark.parametrize("models,noise", [(2, 0.5), (3, 0.5), (3, 2.0), (4, 1.0)])
def test_batched_confusions_equal_each_weighting_scored_alone(models, noise):
    rng = np.random.default_rng(models * 10 + int(noise))
    size = 48
    truth = rng.choice([0, 1, 6, 8], size=(size, size))
    truth[:4] = IGNORE_INDEX  # skipped, as the scorer skips them
    stack = probabilities(rng, models, size, truth, noise)
    weights = torch.tensor(simplex_grid(models, 0.1 if models < 4 else 0.25), dtype=torch.float32)
    target = torch.from_numpy(truth)
    top = stack.argmax(1)
    disputed = (top != top[0]).any(0).float().mean()
    assert 0 < disputed < 1  # both ways of counting a pixel are exercised
    assert np.array_equal(confusions(weights, stack, target), one_by_one(weights, stack, target))


def test_a_class_no_model_puts_first_can_win_the_merge():
    """Model a: Paper 0.5, Plastic 0.45; model b: General trash 0.5, Plastic 0.45. Equal weights merge to
    Plastic, which neither puts first: the scorer must not leave it out, nor count the pixel as settled."""
    stack = torch.zeros(2, NUM_CLASSES, 1, 2)
    stack[0, 2], stack[0, 6] = 0.5, 0.45
    stack[1, 1], stack[1, 6] = 0.5, 0.45
    stack[:, 0, 0, 1] = 0.05
    stack[:, 3, 0, 1] = 0.9  # a second pixel both put on Paper pack
    target = torch.tensor([[6, 3]])
    weights = torch.tensor(simplex_grid(2, 0.5), dtype=torch.float32)  # (1, 0), (0.5, 0.5), (0, 1)
    cms = confusions(weights, stack, target)
    assert np.array_equal(cms, one_by_one(weights, stack, target))
    equal = [i for i, w in enumerate(weights.tolist()) if w == [0.5, 0.5]][0]
    assert cms[equal, 6, 6] == 1 and cms[equal, 3, 3] == 1


def test_mean_ious_score_each_matrix_as_mean_iou_does():
    rng = np.random.default_rng(0)
    cms = rng.integers(0, 5, size=(6, NUM_CLASSES, NUM_CLASSES)) * (rng.random((6, NUM_CLASSES, NUM_CLASSES)) < 0.2)
    cms[0] = 0  # nothing present: NaN, as mean_iou says
    got = mean_ious(cms)
    want = np.array([mean_iou(cm) for cm in cms])
    assert np.isnan(got[0]) and np.isnan(want[0])
    assert np.allclose(got[1:], want[1:])


@pytest.mark.parametrize("verb", ["fit_ensemble", "pipeline"])
def test_a_bad_objective_stops_with_one_line_before_any_work(verb, capsys):
    module = importlib.import_module("trashseg.cli.merge" if verb == "fit_ensemble" else "trashseg.cli.pipeline")
    with pytest.raises(SystemExit) as stop:
        getattr(module, verb)(["--models=fpn deeplab", "--objective=perimage"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines() == ["error: OBJECTIVE=perimage: one of dataset | per-image"]
