#!/usr/bin/env bash
# The paper's early-stopping table settings at its scale (issue: paper tables), then their
# tables and figures.  Hours on a CPU (NN1: ~25 min per run, NN2: ~75 min, two at a time);
# resumable: run it again and it continues where it stopped.
#   bash scripts/paper_results.sh [extra overrides, e.g. seed=0,1,2]
#   SWEEP=paper_tables_k bash scripts/paper_results.sh    # Figure 2.13's K axis (K = 2, 5)
# Run folders go to $HEAVYTAIL_RUNS (default ~/heavytail-runs), outside the checkout, so they
# survive a new clone; only the collected tables are committed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUNS=${HEAVYTAIL_RUNS:-$HOME/heavytail-runs}
SWEEP=${SWEEP:-paper_tables}
case "$SWEEP" in
  paper_tables) esd="data.K=8" ;;
  paper_tables_k) esd="data.K=2,5" ;;
  *) echo "error: SWEEP must be paper_tables or paper_tables_k, got $SWEEP" >&2; exit 2 ;;
esac
command="python scripts/run.py sweep=$SWEEP profile=paper launcher=local train.progress=false paths.output_dir=$RUNS $*"
start=$(date +%s)
$PY scripts/run.py "sweep=$SWEEP" profile=paper launcher=local train.progress=false \
  "paths.output_dir=$RUNS" "$@"
wall=$(( $(date +%s) - start ))
# every eigenvalue of every run is kept: any spike or stopping rule can be replayed later
$PY scripts/collect.py "$SWEEP" --runs "$RUNS/sweeps/$SWEEP" --overwrite \
  --esd "$esd" --command "$command" --wall-s "$wall"
# the same runs without K (the gap rule): which fires were class spikes crossing the edge
$PY scripts/collect.py "$SWEEP" --runs "$RUNS/sweeps/$SWEEP" --overwrite \
  --n-classes none --out "results/gap_rule/$SWEEP"
rm -f "results/gap_rule/$SWEEP/epochs.csv"
$PY scripts/paper_tables.py
