"""SMP, imported once for the whole kit, with timm under it but without wandb.

timm's utils import wandb whenever it is installed (the kit installs it for LOGGER=wandb), for one
function the kit never calls (``timm.utils.update_summary(log_wandb=True)``); that import is ~2 s
of every model process's start on a 2-core CPU. While SMP (and so timm) is imported, ``import
wandb`` fails as if wandb were absent; afterwards it imports as usual, so LOGGER=wandb still works.
Every module of the kit takes ``smp`` from here, never from ``import segmentation_models_pytorch``.
"""

from __future__ import annotations

import sys


def _import_without_wandb():
    hide = "wandb" not in sys.modules
    if hide:
        sys.modules["wandb"] = None  # `import wandb` raises ImportError while this name is None
    try:
        import segmentation_models_pytorch
    finally:
        if hide and sys.modules.get("wandb", 0) is None:
            del sys.modules["wandb"]
    return segmentation_models_pytorch


smp = _import_without_wandb()
