# l2l: the single entry point. `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEVICE ?= auto
PROFILE ?= default

.PHONY: help setup lab run site readme test test-fast lint format bench pretrained clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

setup: $(VENV)/.installed  ## create .venv and install everything (torch and torchvision first, then the package)

$(VENV)/.installed: pyproject.toml requirements/torch.txt requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements/torch.txt -c requirements/constraints.txt
	$(PY) -m pip install -q -c requirements/constraints.txt -e ".[dev]"
	touch $@

lab: setup  ## open the course: JupyterLab on notebook 01 (prints the URL; LAB_ARGS="--port 8890 --no-browser")
	$(PY) -m l2l_helpers.notebook.lab $(LAB_ARGS)

run: setup  ## every notebook headless into runs/<timestamp>/: executed copies, report, site (DEVICE=auto|cpu|cuda, PROFILE=default|smoke|paper|dev|full)
	$(PY) -m l2l_helpers run-notebooks --profile $(PROFILE) --device $(DEVICE)

RUN ?= $(lastword $(sort $(wildcard runs/2*)))
site: setup  ## rebuild the browsable site of a run: make site RUN=runs/<timestamp> (default: the latest run)
	@test -n "$(RUN)" || { echo "make site: no run in runs/; make run first, or give RUN=runs/<timestamp>" >&2; exit 2; }
	$(PY) -m l2l_helpers.notebook.site $(RUN)

readme: setup  ## write a full run's claims by paper figure and its figure into README.md (RUN=runs/<timestamp>)
	@test -n "$(RUN)" || { echo "make readme: no run in runs/; make run first" >&2; exit 2; }
	$(PY) -m l2l_helpers.notebook.site --readme README.md $(RUN)

NOTEBOOKS := $(wildcard notebooks/[0-9]*.ipynb)
# pytest workers: one per core, at most 4 (TEST_JOBS=0: one process), one torch thread each, each taking a test
# module or a notebook at a time in the order of tests/conftest.py (modules with slow tests first)
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)
NBVAL_DIR := build/nbval

test: setup lint  ## the whole test suite: every notebook at SMOKE size under nbval and the unit tests, on TEST_JOBS workers
	rm -rf $(NBVAL_DIR) && mkdir -p $(NBVAL_DIR)/results
	# the native LSTM steps (this CPU's and the AVX2 build the tests compare) and the convnet's block compile while
	# the notebooks are prepared, instead of holding up a worker's collection or first test (cached after the first time)
	$(PY) -c "from l2l_helpers.kernels import conv_block, native; native.load(); conv_block.load()" >/dev/null 2>&1 & built=$$!; \
	(L2L_NATIVE_MARCH=haswell $(PY) -c "from l2l_helpers.kernels import native; native.load()" >/dev/null 2>&1 &); \
	for nb in $(NOTEBOOKS); do \
	  $(VENV)/bin/papermill --prepare-only -k python3 -p SMOKE True -p INTERACTIVE False \
	    "$$nb" "$(NBVAL_DIR)/$$(basename $$nb)" 2>/dev/null || exit 1; \
	done; wait $$built
	OMP_NUM_THREADS=1 L2L_RESULTS_DIR=$(CURDIR)/$(NBVAL_DIR)/results $(PY) -m pytest $(NBVAL_DIR) tests \
	  --nbval-lax --nbval-current-env -n $(TEST_JOBS) --dist loadscope --no-loadscope-reorder --durations=15

test-fast: setup  ## unit tests without the slow ones
	$(PY) -m pytest -m "not slow"

lint: setup  ## ruff on the package, tests, benchmarks and notebooks
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: setup  ## speed benchmarks: fused vs plain trainer, learned step vs Adam (tables, JSON under benchmarks/results/)
	$(PY) benchmarks/bench_speed.py

WEIGHTS := l2l_helpers/pretrained_weights

pretrained: setup  ## re-make the shipped optimizers and their evaluations from scratch (2-core CPU: about 6.5 hours)
	for seed in 0 1 2; do suffix=$$([ $$seed = 0 ] || echo _seed$$seed); \
	  $(PY) -m l2l_helpers train --problem quadratic --epochs 400 --tasks-per-epoch 64 --lr 0.003 --val-every 20 \
	    --val-tasks 64 --checkpoint-every 50 --seed $$seed --quiet --out $(WEIGHTS)/quadratic$$suffix.pt || exit 1; \
	  $(PY) -m l2l_helpers train --problem quadratic --preprocessing none --output-scale 1 --epochs 400 \
	    --tasks-per-epoch 64 --lr 0.003 --val-every 20 --val-tasks 64 --checkpoint-every 50 --seed $$seed --quiet \
	    --out $(WEIGHTS)/quadratic_paper$$suffix.pt || exit 1; \
	done
	$(PY) -m l2l_helpers evaluate --problem quadratic --optimizer quadratic --baselines sgd,nag,rmsprop,adam \
	  --tasks 100 --tune-tasks 16 --out $(WEIGHTS)/quadratic.eval.json
	for seed in 0 1 2; do suffix=$$([ $$seed = 0 ] || echo _seed$$seed); \
	  $(PY) -m l2l_helpers train --problem quadratic --gac-cells 5 --memory-slots 18 --write-heads 3 --grad-clip 1 \
	    --epochs 400 --tasks-per-epoch 64 --lr 0.003 --val-every 20 --val-tasks 64 --checkpoint-every 50 \
	    --seed $$seed --quiet --out $(WEIGHTS)/quadratic_ntm$$suffix.pt || exit 1; \
	  $(PY) -m l2l_helpers train --problem quadratic --grad-clip 1 --epochs 400 --tasks-per-epoch 64 --lr 0.003 \
	    --val-every 20 --val-tasks 64 --checkpoint-every 50 --seed $$seed --quiet \
	    --out $(WEIGHTS)/quadratic_clip$$suffix.pt || exit 1; \
	  $(PY) -m l2l_helpers train --problem quadratic --gac-cells 5 --grad-clip 1 --epochs 400 --tasks-per-epoch 64 \
	    --lr 0.003 --val-every 20 --val-tasks 64 --checkpoint-every 50 --seed $$seed --quiet \
	    --out $(WEIGHTS)/quadratic_gac$$suffix.pt || exit 1; \
	done
	for seed in 0 1 2; do suffix=$$([ $$seed = 0 ] || echo _seed$$seed); \
	  $(PY) -m l2l_helpers train --problem mnist --init normal --weights ones --select sum --epochs 2000 --lr 0.003 \
	    --val-every 50 --val-tasks 16 --checkpoint-every 50 --seed $$seed --quiet --out $(WEIGHTS)/mnist$$suffix.pt \
	    || exit 1; \
	done
	$(PY) -m l2l_helpers evaluate --problem mnist --optimizer mnist --baselines sgd,nag,rmsprop,adam \
	  --tasks 20 --tune-tasks 8 --out $(WEIGHTS)/mnist.eval.json
	for seed in 0 1 2; do suffix=$$([ $$seed = 0 ] || echo _seed$$seed); \
	  $(PY) -m l2l_helpers train --problem neural_art --style-weight 1e6 --weights ones --select final --epochs 450 \
	    --tasks-per-epoch 2 --lr 0.003 --val-every 10 --val-tasks 6 --checkpoint-every 10 --seed $$seed --quiet \
	    --out $(WEIGHTS)/neural_art$$suffix.pt || exit 1; \
	done
	$(PY) -m l2l_helpers evaluate --problem neural_art --optimizer neural_art --baselines sgd,nag,rmsprop,adam \
	  --tasks 16 --tune-tasks 4 --out $(WEIGHTS)/neural_art.eval.json
	for seed in 0 1 2; do suffix=$$([ $$seed = 0 ] || echo _seed$$seed); \
	  for kind in conv conv_sub conv_one; do \
	    extra=$$([ $$kind = conv_sub ] && echo --labels 5,6,7,8,9; [ $$kind = conv_one ] && echo --one-lstm); \
	    $(PY) -m l2l_helpers train --problem conv $$extra --epochs 100 --lr 0.003 --val-every 20 --val-tasks 4 \
	      --checkpoint-every 20 --seed $$seed --quiet --out $(WEIGHTS)/$$kind$$suffix.pt || exit 1; \
	  done; \
	done

clean:  ## remove build products (keeps .venv, checkpoints/ and runs/)
	rm -rf build .pytest_cache .ruff_cache
