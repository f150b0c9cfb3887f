# trex_bench: `make install`, then `make test`. See README.md.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
SEED ?= 0

.PHONY: install lock install-browser report test test-slow test-mutation quickstart small bench reproduce-trex reproduce-drex tables lint clean regression regression-update

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

LOCK ?= requirements.lock
install: $(PY)  ## virtualenv + CPU torch first (a bare `torch` pulls GBs of CUDA) + the exact versions of $(LOCK) + the package
	python3 -m trex_bench.core.lockfile check $(LOCK)
	$(PY) -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(PY) -m pip install --quiet -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	$(BIN)/trex-bench --version

# A throwaway venv from setup.cfg's ranges (dev extras) + CPU torch; its `pip freeze` becomes the lock. On purpose only.
LOCK_VENV ?= build/lock-venv
lock:  ## refresh $(LOCK): resolve setup.cfg's ranges (with dev extras) and CPU torch in a fresh venv, freeze it
	rm -rf $(LOCK_VENV)
	python3 -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(LOCK_VENV)/bin/python -m pip install --quiet ".[dev]"
	{ echo "# Exact versions for \`make install\` (CPU torch==$(TORCH_VERSION)); refresh with \`make lock\`, never by hand."; \
	  echo "# Resolved from setup.cfg (dev extras) with $$($(LOCK_VENV)/bin/python --version) on $$(date -u +%F)."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable | grep -viE '^(trex[-_]bench|pip|setuptools|wheel)( @|==)'; \
	} > $(LOCK).tmp
	python3 -m trex_bench.core.lockfile check $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf $(LOCK_VENV)

install-browser:  ## Debian's chromium for the report's browser check (root; CI runs it before `make test`)
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	chromium --version

report:  ## results/report/index.html from results/ (+ the browser check and its screenshot when chromium is installed)
	$(BIN)/trex-bench report --check

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
	$(BIN)/trex-bench pipeline breakout --method trex --budget quick --seed $(SEED) --demos demos/breakout/ppo-checkpoints --precision auto --resume

small:  ## the `small` budget (<= 60 min on 2 cores) with its constant-reward control, two runs at once
	$(BIN)/trex-bench sweep --games breakout --methods trex,constant --seeds $(SEED) --budget small --precision auto --workers 2 --threads 1

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

tables:  ## the papers' tables, the aggregate statistics, the learning-curve figures and docs/results.md, all from results/
	for k in trex mturk drex stats; do $(BIN)/trex-bench tables $$k || exit 1; done
	$(BIN)/trex-bench curves plot
	$(BIN)/trex-bench tables results

regression:  ## CI regression checks: small deterministic runs vs results/regression.json (minutes; replaying the demo sets dominates)
	$(BIN)/trex-bench regression check

regression-update:  ## re-measure results/regression.json after a deliberate change: make regression-update REASON="..."
	@test -n "$(strip $(REASON))" || { echo 'regression-update: REASON="why the expected values change" is required' >&2; exit 2; }
	$(BIN)/trex-bench regression update --reason "$(REASON)"

clean:
	rm -rf runs build *.egg-info
