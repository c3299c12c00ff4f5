# Every target bootstraps .venv from nothing (python3 >= 3.11 is the only prerequisite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
# PyPI's Linux torch wheel is the CUDA build (several GB with its NVIDIA packages); this index has the CPU build.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_STAMP := $(VENV)/.torch
BASE_STAMP := $(VENV)/.installed-base
DEV_STAMP := $(VENV)/.installed

.PHONY: venv venv-dev run data test test-all lint format bench clean

venv: $(BASE_STAMP)
venv-dev: $(DEV_STAMP)

# torch first, so that no dependency pulls the CUDA build: a torch wheel already on this machine
# (pip's find-links) if there is one, else the CPU build unless an NVIDIA GPU is present.
$(TORCH_STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@if $(BIN)/python -c 'import torch' 2>/dev/null; then \
	  echo "torch: already installed"; \
	elif $(BIN)/python -m pip install --quiet --no-deps --no-index $(TORCH) 2>/dev/null; then \
	  echo "torch: installed the wheel found on this machine"; \
	elif command -v nvidia-smi >/dev/null 2>&1; then \
	  echo "torch: NVIDIA GPU found, installing the CUDA build"; \
	  $(BIN)/python -m pip install --quiet $(TORCH); \
	else \
	  echo "torch: no NVIDIA GPU, installing the CPU build from $(TORCH_CPU_INDEX)"; \
	  $(BIN)/python -m pip install --quiet --no-deps --index-url $(TORCH_CPU_INDEX) $(TORCH) \
	    || $(BIN)/python -m pip install --quiet --no-deps $(TORCH); \
	fi
	@touch $@

# The lean base install: what `make run` needs.
$(BASE_STAMP): $(TORCH_STAMP) pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	@touch $@

# Tests and linters, with every optional extra (Ray, TensorBoard, network sources).
$(DEV_STAMP): $(TORCH_STAMP) pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,all]'
	@touch $@ $(BASE_STAMP)

run: venv  ## the main job: train, backtest and report the quickstart (configs/quickstart.yaml)
	$(BIN)/rltrade run configs/quickstart.yaml

data: venv  ## ingest every embedded sample into ./rltrade-data and show the stores
	$(BIN)/rltrade data ingest sample:sp500
	$(BIN)/rltrade data ingest sample:sp500_index
	$(BIN)/rltrade data ingest sample:indices
	$(BIN)/rltrade data ingest sample:eurusd
	$(BIN)/rltrade data show
	# bokeh's AAPL/MSFT (raw OHLCV) would clash with skfolio's (adjusted close): a store of its own
	$(BIN)/rltrade data ingest sample:stocks --store rltrade-data/stocks
	$(BIN)/rltrade data show --store rltrade-data/stocks

test: venv-dev  ## the test suite (fast tests; slow ones with `make test-all`)
	$(BIN)/python -m pytest -q

test-all: venv-dev
	$(BIN)/python -m pytest -q -m ''

lint: venv-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: venv-dev
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: venv-dev
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_envs.py
	$(BIN)/python benchmarks/bench_training.py

clean:
	rm -rf $(VENV) rltrade-data .pytest_cache .mypy_cache .ruff_cache
