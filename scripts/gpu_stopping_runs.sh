#!/usr/bin/env bash
# The stopping benchmark's held-out runs on one GPU, for the device tool (issue 25):
#   bash scripts/gpu_stopping_runs.sh RUNS_DIR PACK_DIR [DEADLINE_S]
# e.g. bash scripts/gpu_stopping_runs.sh /tmp/heavytail-runs $OUT 480   (carry .whl)
# stopping_nn1 (20 runs), stopping_recipes (36: momentum, batch 256, Adam) and stopping_nn2
# (24), as twelve stacked models, one process each (a stack: one network, one data size, one
# recipe).  MNIST-1D needs the mnist1d package: it trains on the CPU
# (scripts/stopping_runs.sh, which skips the runs this one finished once they are unpacked
# into its runs folder).  ONLY=WORD keeps the processes whose name holds WORD (ONLY=adam: the
# Adam stacks alone).  scripts/gpu_sweeps.sh does the rest.  Same run names as the CPU runs;
# the evidence-based criterion is measured in the stack as in a single run.
# PROFILE and DEVICE override profile and train.device (a CPU rehearsal: PROFILE=smoke
# DEVICE=cpu EXTRA=train.epochs=1).
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:?usage: gpu_stopping_runs.sh RUNS_DIR PACK_DIR [DEADLINE_S]}
PACK=${2:?usage: gpu_stopping_runs.sh RUNS_DIR PACK_DIR [DEADLINE_S]}
DEADLINE=${3:-480}
EXTRA="profile=${PROFILE:-paper} ${EXTRA:-}"
nn2_d1=paper_tables/nn2_d1_delta0.02,paper_tables/nn2_d1_delta0.13,paper_tables/nn2_d1_delta0.2
nn2_d2=paper_tables/nn2_d2_t1.2,paper_tables/nn2_d2_t2.4,paper_tables/nn2_d2_t4.8
processes=()
for fraction in 0.0 0.1; do
  processes+=("nn1_val$fraction|stopping_nn1|data.val_fraction=$fraction $EXTRA")
  for recipe in momentum batch256 adam; do
    processes+=("${recipe}_val$fraction|stopping_recipes|recipe=$recipe data.val_fraction=$fraction $EXTRA")
  done
  processes+=("nn2_d1_val$fraction|stopping_nn2|experiment=$nn2_d1 data.val_fraction=$fraction $EXTRA")
  processes+=("nn2_d2_val$fraction|stopping_nn2|experiment=$nn2_d2 data.val_fraction=$fraction $EXTRA")
done
chosen=()
for process in "${processes[@]}"; do
  case "${process%%|*}" in *"${ONLY:-}"*) chosen+=("$process") ;; esac
done
exec bash scripts/gpu_sweeps.sh "$RUNS" "$PACK" "$DEADLINE" "${chosen[@]}"
