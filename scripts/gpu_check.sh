#!/usr/bin/env bash
# GPU checks for a lent device machine (see the device tool): the GPU bench, then the real make
# path (folds -> train with the GPU defaults -> resume -> infer -> ensemble) on data/sample.
# The device image has torch but not SMP/albumentations/pycocotools: they travel as wheels in .whl/
# (carry .whl). Each step has its own time limit and writes its log under $OUT as it goes, so a
# step that hangs still leaves the others' output. Call without a pipe: `bash scripts/gpu_check.sh`.
# Wheels for the device's Python 3.12 (here, in the repo root; .whl/ is ignored via .git/info/exclude):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#     segmentation-models-pytorch==0.6.0 albumentations==2.0.8 albucore==0.0.24 pycocotools==2.0.11 \
#     iterative-stratification==0.1.9 pydantic==2.14.4 pydantic_core==2.50.5 simsimd==6.5.16 \
#     stringzilla==5.3.2 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0
# Dry run on a CPU machine first (a python3 holding torch, timm, opencv, scikit-learn, pandas first on
# PATH, wheels for its Python in .whl/), with small settings:
#   GPU_CHECK_SETTINGS="IMG_SIZE=64 ENCODER=tu-mobilenetv3_small_050 BATCH=4 WORKERS=0 DEVICE=cpu" \
#     OUT=/tmp/gpu_out bash scripts/gpu_check.sh
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
step() {  # step NAME SECONDS CMD...
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  grep -v "it/s\]" "$OUT/$name.log" | tail -n 25
  echo "== $name exit $rc"
  return $rc
}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD/code || exit 1   # the kit itself: no editable install on the device
export PYTHONUNBUFFERED=1
nvidia-smi -L
step imports 120 python3 -c "import torch, timm, segmentation_models_pytorch as smp, albumentations as A, cv2, pycocotools.mask, iterstrat.ml_stratifiers, yaml, pandas; print('torch', torch.__version__, 'timm', timm.__version__, 'smp', smp.__version__, 'albumentations', A.__version__, 'cv2', cv2.__version__)" || exit 1
# a stand-in venv whose python is the image's (a wrapper, not a symlink: a symlink loses its venv)
mkdir -p /tmp/v/bin && printf '#!/bin/sh\nexec %s "$@"\n' "$(command -v python3)" > /tmp/v/bin/python \
  && chmod +x /tmp/v/bin/python && touch /tmp/v/.installed
M="make --no-print-directory VENV=/tmp/v"
step bench_gpu 240 $M bench-gpu ARGS= 
S="DATA_DIR=data/sample RUNS=/tmp/runs ENCODER_WEIGHTS=none FOLD=0 ${GPU_CHECK_SETTINGS:-ENCODER=tu-tf_efficientnet_b3 IMG_SIZE=512 BATCH=8 WORKERS=2}"
step folds 60 $M folds DATA_DIR=data/sample K=3 GROUP='^(batch_[^/]+)/' \
  && step train 180 $M train-fpn $S EPOCHS=3 FORCE=1 \
  && step resume 120 $M train-fpn $S EPOCHS=4 RESUME=1 \
  && step infer 120 $M infer-fpn $S \
  && step ensemble 60 $M ensemble DATA_DIR=data/sample RUNS=/tmp/runs SUBMISSIONS=/tmp/subs NAME=gpu
cat /tmp/runs/fpn/fold0/metrics.csv 2>/dev/null
python3 -c "import json; r=json.load(open('/tmp/runs/fpn/fold0/run_record.json')); print({k: r[k] for k in ('torch','cuda','cudnn','device_names','resumed_from_epoch')})" 2>/dev/null
