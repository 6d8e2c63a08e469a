#!/usr/bin/env bash
# The paper-tables grid (15 settings x seeds 0-2) on one GPU, for the device tool (issue 10):
#   bash scripts/gpu_paper_tables.sh RUNS_DIR PACK_DIR [DEADLINE_S]
# e.g. bash scripts/gpu_paper_tables.sh /tmp/heavytail-runs $OUT 540   (carry .whl)
# Two processes, one per architecture (NN1, NN2), each training its settings x seeds as one
# stacked model (launcher=batched): a run alone leaves the GPU idle (launch-bound).
# scripts/gpu_sweeps.sh does the rest (detached processes, attaching on a second call, the
# packed run folders, the GPU tests).  Measured on an H200 (docs/benchmarks.md): ~3.2 s per
# epoch of each process, ~14 minutes for the grid; SEEDS=0 trains seed 0 only.  PROFILE,
# DEVICE and SEEDS override profile, train.device and the seeds (a CPU rehearsal:
# PROFILE=smoke DEVICE=cpu).
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:?usage: gpu_paper_tables.sh RUNS_DIR PACK_DIR [DEADLINE_S]}
PACK=${2:?usage: gpu_paper_tables.sh RUNS_DIR PACK_DIR [DEADLINE_S]}
DEADLINE=${3:-540}
PROFILE=${PROFILE:-paper}
SEEDS=${SEEDS:-0,1,2}
panels="nn1:nn1_d1_delta0.15,nn1_d1_delta0.3,nn1_d1_delta0.6,nn1_d1_delta0.9,nn1_d2_t0.24,\
nn1_d2_t1.2,nn1_d2_t2.4,nn1_d2_t3.2,nn1_d2_t4.8 nn2:nn2_d1_delta0.02,nn2_d1_delta0.13,\
nn2_d1_delta0.2,nn2_d2_t1.2,nn2_d2_t2.4,nn2_d2_t4.8"
processes=()
for panel in $panels; do
  experiments=$(echo "${panel#*:}" | tr ',' '\n' | sed "s|^|paper_tables/|" | paste -sd,)
  processes+=("${panel%%:*}|paper_tables|profile=$PROFILE experiment=$experiments seed=$SEEDS")
done
exec bash scripts/gpu_sweeps.sh "$RUNS" "$PACK" "$DEADLINE" "${processes[@]}"
