# trex_bench: `make install`, then `make test`. See README.md.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
SEED ?= 0

.PHONY: install test test-slow test-mutation quickstart small bench reproduce-trex reproduce-drex tables lint clean regression regression-update

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

test-mutation:  ## mutation testing (not in CI): each edit of tools/mutations.toml on a copy, its tests; ARGS="--only M1,E04 --jobs 2"
	$(PY) tools/mutate.py $(ARGS)

lint:
	$(BIN)/ruff check trex_bench tests benchmarks tools
	$(BIN)/ruff format --check trex_bench  # the package is formatted at 120 columns (tests and tools not yet)

bench:  ## side-by-side speed ratios on this machine (each prints its own table)
	$(PY) benchmarks/collect_speed.py
	$(PY) benchmarks/ppo_reward_speed.py
	$(PY) benchmarks/reward_train_speed.py

quickstart:  ## the main job: Breakout, the PPO-checkpoint demos, T-REX at the `quick` budget, one leaderboard row
	$(BIN)/trex-bench pipeline breakout --method trex --budget quick --seed $(SEED) --demos demos/breakout/ppo-checkpoints --resume

small:  ## the `small` budget (<= 60 min on 2 cores) with its constant-reward control, two runs at once
	$(BIN)/trex-bench sweep --games breakout --methods trex,constant --seeds $(SEED) --budget small --workers 2 --threads 1

# Sweeps: comma-separated lists (seeds also as ranges, 0-2). WORKERS runs at once with THREADS torch threads each.
GAMES ?= breakout
SEEDS ?= 0-2
DEVICE ?= cpu
WORKERS ?= 1
THREADS ?= $(shell nproc)
SWEEP = $(BIN)/trex-bench sweep --games $(GAMES) --seeds $(SEEDS) --budget paper --device $(DEVICE) --workers $(WORKERS) --threads $(THREADS)
reproduce-trex:  ## T-REX at the papers' budget (GPU/cluster scale) for GAMES x SEEDS, then the T-REX table
	$(SWEEP) --methods trex
	$(BIN)/trex-bench leaderboard
	$(BIN)/trex-bench tables trex

reproduce-drex:  ## D-REX and its BC clone at the papers' budget for GAMES x SEEDS, then the D-REX table
	$(SWEEP) --methods drex,bc
	$(BIN)/trex-bench leaderboard
	$(BIN)/trex-bench tables drex

tables:  ## the papers' tables beside the published numbers and the aggregate statistics: results/tables/{trex,mturk,drex,stats}.md
	for k in trex mturk drex stats; do $(BIN)/trex-bench tables $$k || exit 1; done

regression:  ## CI regression checks: small deterministic runs vs results/regression.json (about a minute)
	$(BIN)/trex-bench regression check

regression-update:  ## re-measure results/regression.json after a deliberate change: make regression-update REASON="..."
	@test -n "$(strip $(REASON))" || { echo 'regression-update: REASON="why the expected values change" is required' >&2; exit 2; }
	$(BIN)/trex-bench regression update --reason "$(REASON)"

clean:
	rm -rf runs build *.egg-info
