#!/usr/bin/env bash
# Re-run the committed quick-profile results and collect them under results/ (hours).
#   bash scripts/quick_results.sh [SWEEP ...]     (default: every sweep below, in this order)
# Each sweep: python scripts/run.py sweep=NAME launcher=local (joblib, 2 jobs x 1 thread),
# run folders under $HEAVYTAIL_RUNS (default ~/heavytail-runs, outside the checkout), then
# scripts/collect.py with every eigenvalue of seed 0 (esd.parquet: any spike or stopping rule
# can be replayed from it) and a manifest.json.  Finished runs are skipped (done markers), so
# an interrupted call resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUNS=${HEAVYTAIL_RUNS:-$HOME/heavytail-runs}
ALL=(nn1_d1 nn1_d2 nn2_d1 nn2_d2 batch_nn1_d1 nn1_d1_val nn1_d2_val nn2_d1_val)

for name in "${@:-${ALL[@]}}"; do
  grid=${name%_val}
  extra=()
  # the validation-split twins (compare.py); NN2's for seed 0 only (time)
  [[ $name == *_val ]] && extra=(data.val_fraction=0.1)
  [[ $name == nn2_d1_val ]] && extra+=(seed=0)
  command="python scripts/run.py sweep=$grid launcher=local train.progress=false sweep_name=$name paths.output_dir=$RUNS ${extra[*]}"
  start=$(date +%s)
  $PY scripts/run.py "sweep=$grid" launcher=local train.progress=false "sweep_name=$name" \
    "paths.output_dir=$RUNS" "${extra[@]}"
  wall=$(( $(date +%s) - start ))
  esd=()
  [[ $name != *_val && $name != batch_* ]] && esd=(--esd seed=0)
  $PY scripts/collect.py "$name" --runs "$RUNS/sweeps/$name" --overwrite "${esd[@]}" \
    --command "$command" --wall-s "$wall"
  # the same runs replayed without K (the gap rule), for scripts/before_after.py; their
  # epochs are those of results/$name
  $PY scripts/collect.py "$name" --runs "$RUNS/sweeps/$name" --overwrite --n-classes none \
    --out "results/gap_rule/$name"
  rm -f "results/gap_rule/$name/epochs.csv"
done
