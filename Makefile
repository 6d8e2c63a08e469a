# Every target creates the virtual environment when it is missing (Python 3.11): `make help`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
# The install is redone when pyproject.toml (the pins) changes.
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)
# pytest-xdist workers, one BLAS thread each: two workers on two cores, not four threads
# spinning against each other (OpenBLAS under contention runs 50x slower)
PYTEST := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -n auto --dist loadgroup --durations=15

.PHONY: help venv run demo test test-fast lint bench bench-training bench-lightning bench-gpu \
	calibrate figures results-quick results-paper results-paper-k stopping-runs stopping results-real null-table clean

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[experiments,dev,sweeps,lightning,report,transformers]"
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)  ## create .venv and install everything (first time: ~2 min, ~6 GB with torch)

run: $(STAMP)  ## the default run: NN1 on D1(delta = 0.15), quick profile (about a minute)
	$(PY) scripts/run.py

demo: $(STAMP)  ## the spectral demo on random matrices with known spectra
	$(PY) scripts/demo_spectra.py

test: $(STAMP)  ## lint + the whole test suite, what CI runs
	$(PY) -m ruff check .
	$(PYTEST)

test-fast: $(STAMP)  ## the inner loop: the suite without the slow tests (about 80 s)
	$(PYTEST) -m "not slow"

lint: $(STAMP)  ## ruff
	$(PY) -m ruff check .

bench: $(STAMP)  ## ours against WeightWatcher 0.7.7 (installs the optional extra)
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) scripts/bench_spectral.py --out results/benchmarks/spectral.md

bench-training: $(STAMP)  ## our training loop against a bare one; monitoring overhead
	$(PY) scripts/bench_training.py --out results/benchmarks/training.md

bench-lightning: $(STAMP)  ## the Lightning callback's overhead per epoch
	$(PY) scripts/bench_lightning.py --out results/benchmarks/lightning.md

bench-gpu: $(STAMP)  ## single runs against the batched trainer (on a GPU when present)
	$(PY) scripts/bench_gpu.py --out results/benchmarks/gpu.md

calibrate: $(STAMP)  ## regenerate the calibrated null table (1,127 s on 2 cores)
	$(PY) scripts/calibrate_null.py

figures: $(STAMP)  ## every table, figure and generated docs page from results/ (no training)
	$(PY) scripts/tables.py
	$(PY) scripts/figures.py
	$(PY) scripts/compare.py
	$(PY) scripts/before_after.py
	$(PY) scripts/paper_tables.py
	$(PY) scripts/docs.py

results-quick: $(STAMP)  ## re-run every committed quick-profile sweep and collect it (hours)
	PY=$(PY) bash scripts/quick_results.sh

results-paper: $(STAMP)  ## the paper-scale table settings (resumable, many hours on a CPU)
	PY=$(PY) bash scripts/paper_results.sh

results-paper-k: $(STAMP)  ## NN1's table settings at K = 2 and 5, the paper's scale (resumable, hours)
	PY=$(PY) SWEEP=paper_tables_k bash scripts/paper_results.sh

stopping-runs: $(STAMP)  ## train and collect the stopping benchmark's suite (resumable, ~10 h on a CPU)
	PY=$(PY) bash scripts/stopping_runs.sh

stopping: $(STAMP)  ## the stopping benchmark's tables from the committed runs (results/stopping, ~1 min)
	$(PY) scripts/stopping.py

results-real: $(STAMP)  ## the paper's real-data grid and its table (downloads MNIST, CIFAR-10; GPU hours)
	PY=$(PY) bash scripts/real_results.sh

null-table: $(STAMP)  ## the null-statistic draws behind results/figures/null_statistic.png (~2 min)
	$(PY) scripts/null_check.py --draws 50 --out results/null/null_statistic.csv

clean:  ## remove the environment and local outputs (run folders elsewhere are kept)
	rm -rf $(VENV) outputs multirun .pytest_cache .ruff_cache
