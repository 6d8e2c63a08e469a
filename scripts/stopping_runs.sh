#!/usr/bin/env bash
# The stopping benchmark's training runs (configs/sweep/stopping_*.yaml, docs/stopping.md), part
# by part, each collected into results/stopping_runs/<part> as soon as it ends, every eigenvalue
# kept.  About 10 hours on a 2-core CPU (two runs at a time, one thread each); resumable: run it
# again and it continues where it stopped, skipping finished runs.
#   bash scripts/stopping_runs.sh                      # every part, in order
#   PARTS="stopping_mnist1d" bash scripts/stopping_runs.sh
#   COLLECT_ONLY=1 bash scripts/stopping_runs.sh       # collect what has finished, train nothing
# Run folders go to $HEAVYTAIL_RUNS (default ~/heavytail-runs), outside the checkout.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUNS=${HEAVYTAIL_RUNS:-$HOME/heavytail-runs}
PARTS=${PARTS:-stopping_dev stopping_mnist1d stopping_nn1 stopping_recipes stopping_nn2}
status=0
for part in $PARTS; do
  if [ -z "${COLLECT_ONLY:-}" ]; then
    start=$(date +%s)
    $PY scripts/run.py "sweep=$part" launcher=local train.progress=false \
      "paths.output_dir=$RUNS" || status=1
    echo "$part: $(( $(date +%s) - start )) s" >&2
  fi
  [ -d "$RUNS/sweeps/$part" ] || continue
  # finished runs only; unfinished ones are listed in problems.csv
  $PY scripts/collect.py "$part" --runs "$RUNS/sweeps/$part" --out "results/stopping_runs/$part" \
    --overwrite --esd seed=0,1,2 \
    --command "python scripts/run.py sweep=$part launcher=local paths.output_dir=$RUNS" \
    || status=1
done
exit $status
