# Every target bootstraps .venv from nothing (python3 >= 3.11 is the only prerequisite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run data test test-all lint format bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, the CPU build (otherwise a dependency may pull the CUDA build)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

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

test: venv  ## the test suite (fast tests; slow ones with `make test-all`)
	$(BIN)/python -m pytest -q

test-all: venv
	$(BIN)/python -m pytest -q -m ''

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: venv
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: venv
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_envs.py
	$(BIN)/python benchmarks/bench_training.py

clean:
	rm -rf $(VENV) rltrade-data .pytest_cache .mypy_cache .ruff_cache
