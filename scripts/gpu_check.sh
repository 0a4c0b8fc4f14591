#!/usr/bin/env bash
# GPU checks for a lent device machine (see the device tool): the GPU bench, then the real make
# path (folds -> train with the GPU defaults -> infer -> ensemble -> validated CSV) on data/sample.
# The device image has torch but not SMP/albumentations/pycocotools: they travel as wheels in .whl/.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site || exit 1
export PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import torch, timm, segmentation_models_pytorch as smp, albumentations as A, cv2; print('torch', torch.__version__, 'timm', timm.__version__, 'smp', smp.__version__, 'albumentations', A.__version__, 'cv2', cv2.__version__)"
mkdir -p /tmp/v/bin && ln -sf "$(command -v python3)" /tmp/v/bin/python && touch /tmp/v/.installed
M="make --no-print-directory VENV=/tmp/v"
echo "== bench-gpu"
timeout 300 $M bench-gpu 2>&1 | tee "$OUT/bench_gpu.txt"
echo "== make path on GPU"
S="DATA_DIR=data/sample RUNS=/tmp/runs WEIGHTS=none ENCODER=tu-tf_efficientnet_b3 IMG_SIZE=512 BATCH=8 WORKERS=4 FOLD=0"
{ $M folds DATA_DIR=data/sample K=3 \
  && $M train-fpn $S EPOCHS=3 \
  && $M train-fpn $S EPOCHS=5 RESUME=1 \
  && $M infer-fpn $S \
  && $M ensemble DATA_DIR=data/sample RUNS=/tmp/runs SUBMISSIONS=/tmp/subs NAME=gpu \
  && cat /tmp/runs/fpn/fold0/metrics.csv && python3 -c "import json; r=json.load(open('/tmp/runs/fpn/fold0/run_record.json')); print({k: r[k] for k in ('torch','cuda','cudnn','device_names','git_commit','resumed_from_epoch')})"; } 2>&1 \
  | grep -v "it/s\]" | tee "$OUT/make_path.txt"
