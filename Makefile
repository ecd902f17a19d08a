# Two commands set everything up on a fresh machine: `make figures` (the main job) and `make test`.
# `make figures` (cpu profile) also writes each executed notebook, cleaned, to notebooks/executed/.
# Each creates .venv on first use and installs the CPU stack into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROFILE ?= cpu

.PHONY: venv test lint figures lab tinyworld bench gpu-smoke clean-runs

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: it resolves to the local CPU wheel instead of a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check tts_utils tests notebooks

test: lint
	$(PY) -m pytest -q

figures: $(STAMP)
	$(PY) -m tts_utils.run_notebooks --profile $(PROFILE) $(if $(filter cpu,$(PROFILE)),--readme --executed notebooks/executed)

# JupyterLab on the notebooks; its "python3" kernel is .venv's Python, so the notebooks import the
# project as make figures does. Edit a notebook's parameters cell and run all to ask another question.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

tinyworld: $(STAMP)
	$(PY) -m tts_utils.tinyworld.build

bench: $(STAMP)
	$(PY) -m tts_utils.bench --figures $(BENCH_ARGS)

# On a GPU machine, in the GPU environment (environment.yml), not .venv (whose torch is CPU-only):
# transformers on CUDA with the tiny world, then vLLM if installed, on 5 problems. `timeout`: a
# wedged driver or vLLM start-up must not hang a borrowed machine.
GPU_PYTHON ?= python
gpu-smoke:
	timeout 900 $(GPU_PYTHON) -m tts_utils.gpu_smoke $(GPU_SMOKE_ARGS)

clean-runs:
	rm -rf runs
