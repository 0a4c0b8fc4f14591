"""Optional DenseCRF refinement of probabilities (pydensecrf2, `make setup-crf`): pulls label
edges onto colour edges of the photo. Applied, when enabled, to OOF and test probabilities alike,
so `make oof CRF=1` shows whether it helps before it is ever used on a submission."""

from __future__ import annotations

import numpy as np

from trashseg.errors import TrashsegError
from trashseg.settings import Crf


def refine(probs: np.ndarray, rgb: np.ndarray, c: Crf) -> np.ndarray:
    """C x H x W probabilities -> refined probabilities, ``rgb`` being the H x W x 3 image, with the
    ``crf`` settings ``c``."""
    try:
        import pydensecrf.densecrf as dcrf
        from pydensecrf.utils import unary_from_softmax
    except ImportError:
        raise TrashsegError("crf.enabled needs pydensecrf2: run `make setup-crf` (compiles it, ~2 min)") from None
    n, h, w = probs.shape
    crf = dcrf.DenseCRF2D(w, h, n)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(np.clip(probs, 1e-6, 1.0).astype(np.float32))))
    crf.addPairwiseGaussian(sxy=c.gaussian_sxy, compat=c.gaussian_compat)
    crf.addPairwiseBilateral(
        sxy=c.bilateral_sxy,
        srgb=c.bilateral_srgb,
        rgbim=np.ascontiguousarray(rgb, dtype=np.uint8),
        compat=c.bilateral_compat,
    )
    return np.asarray(crf.inference(c.iterations), dtype=np.float32).reshape(n, h, w)
