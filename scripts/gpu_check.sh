#!/usr/bin/env bash
# GPU checks for a lent device machine (see the device tool): the GPU bench, then the real make
# path (folds -> train with the GPU defaults -> resume -> infer -> ensemble) on data/sample.
# The device image has torch but not SMP/albumentations/pycocotools: they travel as wheels in .whl/
# (carry .whl). Each step has its own time limit and writes its log under $OUT as it goes, so a
# step that hangs still leaves the others' output. Call without a pipe: `bash scripts/gpu_check.sh`.
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
  && export PYTHONPATH=/tmp/site || exit 1
export PYTHONUNBUFFERED=1
nvidia-smi -L
step imports 120 python3 -c "import torch, timm, segmentation_models_pytorch as smp, albumentations as A, cv2; print('torch', torch.__version__, 'timm', timm.__version__, 'smp', smp.__version__, 'albumentations', A.__version__, 'cv2', cv2.__version__)" || exit 1
# a stand-in venv whose python is the image's (a wrapper, not a symlink: a symlink loses its venv)
mkdir -p /tmp/v/bin && printf '#!/bin/sh\nexec %s "$@"\n' "$(command -v python3)" > /tmp/v/bin/python \
  && chmod +x /tmp/v/bin/python && touch /tmp/v/.installed
M="make --no-print-directory VENV=/tmp/v"
step bench_gpu 240 $M bench-gpu ARGS= 
S="DATA_DIR=data/sample RUNS=/tmp/runs WEIGHTS=none ENCODER=tu-tf_efficientnet_b3 IMG_SIZE=512 BATCH=8 WORKERS=2 FOLD=0"
step folds 60 $M folds DATA_DIR=data/sample K=3 \
  && step train 180 $M train-fpn $S EPOCHS=3 \
  && step resume 120 $M train-fpn $S EPOCHS=4 RESUME=1 \
  && step infer 120 $M infer-fpn $S \
  && step ensemble 60 $M ensemble DATA_DIR=data/sample RUNS=/tmp/runs SUBMISSIONS=/tmp/subs NAME=gpu
cat /tmp/runs/fpn/fold0/metrics.csv 2>/dev/null
python3 -c "import json; r=json.load(open('/tmp/runs/fpn/fold0/run_record.json')); print({k: r[k] for k in ('torch','cuda','cudnn','device_names','resumed_from_epoch')})" 2>/dev/null
