# Both entry points create the virtual environment when it is missing (Python 3.11).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
# The install is redone when pyproject.toml (the pins) changes.
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)

.PHONY: venv run demo test test-fast lint bench bench-training calibrate figures results-quick null-table clean

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[experiments,dev,sweeps]"
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

run: $(STAMP)  ## the default run: NN1 on D1(delta = 0.15), quick profile (about a minute)
	$(PY) scripts/run.py

demo: $(STAMP)  ## the spectral demo on random matrices with known spectra
	$(PY) scripts/demo_spectra.py

test: $(STAMP)  ## lint + the whole test suite (slow tests included)
	$(PY) -m ruff check .
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)  ## ours against WeightWatcher 0.7.7 (installs the optional extra)
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) scripts/bench_spectral.py

bench-training: $(STAMP)  ## our training loop against a bare one; monitoring overhead
	$(PY) scripts/bench_training.py

calibrate: $(STAMP)  ## regenerate the calibrated null table (about 20 min on 2 cores)
	$(PY) scripts/calibrate_null.py

figures: $(STAMP)  ## every table and figure from the committed results/ (no training, ~1 min)
	$(PY) scripts/tables.py
	$(PY) scripts/figures.py
	$(PY) scripts/compare.py

results-quick: $(STAMP)  ## re-run every committed quick-profile sweep and collect it (hours)
	PY=$(PY) bash scripts/quick_results.sh

null-table: $(STAMP)  ## the null-statistic draws behind results/figures/null_statistic.png (~2 min)
	$(PY) scripts/null_check.py --draws 50 --out results/null/null_statistic.csv

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache .ruff_cache
