#!/usr/bin/env bash
# Re-run the committed quick-profile results on this machine and collect them under results/.
#   bash scripts/quick_results.sh [SWEEP ...]     (default: every sweep below, in this order)
# Each sweep: python scripts/run.py sweep=NAME launcher=local (joblib, 2 jobs x 1 thread), then
# scripts/collect.py with the ESD showcase runs and a manifest.json (commit, command, machine,
# wall time).  Finished runs are skipped (done markers), so an interrupted call resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

# the paper's early-stopping settings (K = 8, seed 0) keep their eigenvalues for the ESD figures
declare -A SHOWCASE=(
  [nn1_d1]="data.delta=0.15,0.6,0.9"
  [nn1_d2]="data.t=0.24,2.4,4.8"
  [nn2_d1]="data.delta=0.02,0.13,0.2"
  [nn2_d2]="data.t=1.2,2.4,4.8"
)
ALL=(nn1_d1 nn1_d2 nn2_d1 nn2_d2 batch_nn1_d1 nn1_d1_val nn1_d2_val nn2_d1_val nn2_d2_val)

for name in "${@:-${ALL[@]}}"; do
  grid=${name%_val}
  extra=()
  [[ $name == *_val ]] && extra=(data.val_fraction=0.1)  # the validation-split twin (compare.py)
  command="python scripts/run.py sweep=$grid launcher=local train.progress=false sweep_name=$name ${extra[*]}"
  start=$(date +%s)
  $PY scripts/run.py "sweep=$grid" launcher=local train.progress=false "sweep_name=$name" "${extra[@]}"
  wall=$(( $(date +%s) - start ))
  esd=()
  [[ -n ${SHOWCASE[$name]:-} ]] && esd=(--esd data.K=8 seed=0 ${SHOWCASE[$name]})
  $PY scripts/collect.py "$name" "${esd[@]}" --command "$command" --wall-s "$wall"
done
