# trex_bench: `make install`, then `make test`. See README.md.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
SEED ?= 0

.PHONY: install test test-slow quickstart bench reproduce-trex reproduce-drex reproduce-mturk tables lint clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

install: $(PY)  ## virtualenv + CPU torch first (a bare `torch` pulls GBs of CUDA) + the package with dev extras
	$(PY) -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(PY) -m pip install --quiet -e ".[dev]"
	$(BIN)/trex-bench --version

test:  ## the default test run (CI): everything not marked slow
	$(BIN)/pytest -q -p no:cacheprovider

test-slow:  ## the slow tests only
	$(BIN)/pytest -q -p no:cacheprovider -m slow

lint:
	$(BIN)/ruff check trex_bench tests benchmarks

bench:  ## side-by-side speed ratios on this machine
	$(PY) benchmarks/collect_speed.py

quickstart:  ## the main job (see README): placeholder until the pipeline lands
	$(BIN)/trex-bench demos collect breakout --demonstrator scripted --episodes 4 --seed $(SEED) --out runs/quickstart-demos --overwrite
	$(BIN)/trex-bench demos verify runs/quickstart-demos

clean:
	rm -rf runs build *.egg-info
