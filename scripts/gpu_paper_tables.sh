#!/usr/bin/env bash
# The paper-tables grid (15 settings x seeds 0-2) on one GPU, for the device tool (issue 10):
#   bash scripts/gpu_paper_tables.sh RUNS_DIR PACK_DIR [DEADLINE_S]
# e.g. bash scripts/gpu_paper_tables.sh /tmp/heavytail-runs $OUT 540   (carry .whl)
# Two processes, one per architecture (NN1, NN2), each training its settings x seeds as one
# stacked model (launcher=batched): a run alone leaves the GPU idle
# (launch-bound).  Same configs, same run names (train.device is not hashed), same files as
# the CPU runs.  The processes are detached (setsid): at DEADLINE_S (default 540) this call
# packs what is saved so far and returns while they go on training; the same command, called
# again while the machine is still warm, attaches to them instead of starting over.  Keep
# RUNS_DIR outside the checkout: each call re-copies the working tree, and run folders inside
# it were gone at the next call.  A fresh machine starts the runs over (nothing of the last
# one is kept).  Measured on an H200 (docs/benchmarks.md): ~3.2 s per epoch of each process,
# ~14 minutes for the grid; SEEDS=0 trains seed 0 only.
# Each call packs every run folder, without checkpoint and figure, into PACK_DIR as
# runs.tgz.* pieces of 15 MB (with the processes' logs), eigenvalues as float32 (the precision
# esd.parquet keeps; a replay moves s_hat by < 1e-6); collect them with
# `scripts/collect.py --partial` while runs are unfinished.  The GPU-marked tests run beside
# the first call's grid.  Hydra is not on the device machine: carry hydra-core, omegaconf,
# antlr4 wheels in .whl/ (scripts/gpu_tests.sh says how).  PROFILE, DEVICE and SEEDS override
# profile, train.device and the seeds (a CPU rehearsal: PROFILE=smoke DEVICE=cpu).
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:?usage: gpu_paper_tables.sh RUNS_DIR PACK_DIR [DEADLINE_S]}
PACK=${2:?usage: gpu_paper_tables.sh RUNS_DIR PACK_DIR [DEADLINE_S]}
DEADLINE=${3:-540}
PROFILE=${PROFILE:-paper}
DEVICE=${DEVICE:-cuda}
SEEDS=${SEEDS:-0,1,2}
PY=${PY:-python3}
LOGS=$RUNS/logs
PIDS=$RUNS/training.pids
mkdir -p "$LOGS" "$PACK"
if [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD/src:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD/src:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 MKL_NUM_THREADS=2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true

training() {  # how many of the recorded training processes are alive
  local count=0 pid
  if [ -f "$PIDS" ]; then
    while read -r pid; do kill -0 "$pid" 2>/dev/null && count=$((count + 1)); done <"$PIDS"
  fi
  echo "$count"
}

# one process per architecture: all its runs in one stack (spectra batched on the device,
# steps replayed as CUDA graphs), rather than a process per panel
panels="nn1:nn1_d1_delta0.15,nn1_d1_delta0.3,nn1_d1_delta0.6,nn1_d1_delta0.9,nn1_d2_t0.24,\
nn1_d2_t1.2,nn1_d2_t2.4,nn1_d2_t3.2,nn1_d2_t4.8 nn2:nn2_d1_delta0.02,nn2_d1_delta0.13,\
nn2_d1_delta0.2,nn2_d2_t1.2,nn2_d2_t2.4,nn2_d2_t4.8"
start=$(date +%s)
if [ "$(training)" -gt 0 ]; then
  echo "attaching to the $(training) training processes an earlier call started"
else
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  $PY -m pytest -m gpu -p no:cacheprovider -q tests/test_gpu.py >"$LOGS/gpu_tests.log" 2>&1 &
  tests=$!
  : >"$PIDS"
  for panel in $panels; do
    name=${panel%%:*}
    experiments=$(echo "${panel#*:}" | tr ',' '\n' | sed "s|^|paper_tables/|" | paste -sd,)
    setsid $PY scripts/run.py sweep=paper_tables "profile=$PROFILE" launcher=batched \
      "train.device=$DEVICE" train.progress=false train.threads=2 "paths.output_dir=$RUNS" \
      "hydra.sweeper.params.experiment=\"$experiments\"" "hydra.sweeper.params.seed=\"$SEEDS\"" \
      >>"$LOGS/$name.log" 2>&1 </dev/null &
    echo $! >>"$PIDS"
  done
fi
while :; do
  running=$(training)
  elapsed=$(($(date +%s) - start))
  [ "$running" -eq 0 ] && break
  if [ "$elapsed" -ge "$DEADLINE" ]; then
    echo "deadline at ${elapsed}s: $running process(es) still training; call again to attach"
    break
  fi
  if [ $((elapsed % 60)) -lt 5 ]; then
    echo "${elapsed}s: $(for f in "$LOGS"/nn*.log; do tail -n 1 "$f" | cut -c1-40; done | paste -sd'|')"
  fi
  sleep 5
done
echo "this call: $(($(date +%s) - start))s"
if [ -n "${tests:-}" ]; then
  wait "$tests"
  echo "GPU tests: $(tail -n 1 "$LOGS/gpu_tests.log")"
fi
for panel in $panels; do
  name=${panel%%:*}
  echo "--- $name"
  grep -E "runs training|Training|Error|error" "$LOGS/$name.log" | tail -3
done
# the run folders, small: no checkpoints or figures; float32 eigenvalues; files copied in the
# order a save writes them (collect --partial keeps the epochs metrics.csv has)
stage=$(mktemp -d)
$PY - "$RUNS/sweeps/paper_tables" "$stage/paper_tables" <<'EOF'
import shutil, sys
from pathlib import Path
import numpy as np
source, target = Path(sys.argv[1]), Path(sys.argv[2])
shutil.copytree(source.parent.parent / "logs", target.parent / "logs")
done = runs = 0
for run in sorted(p for p in source.iterdir() if p.is_dir()):
    runs += 1
    (target / run.name).mkdir(parents=True)
    for name in ("config.yaml", "done", "summary.json", "metrics.csv", "spectral.csv"):
        if (run / name).exists():
            shutil.copy2(run / name, target / run.name / name)
    if (run / "eigenvalues.npz").exists():
        with np.load(run / "eigenvalues.npz") as stored:
            np.savez(target / run.name / "eigenvalues.npz",
                     **{k: stored[k].astype(np.float32) for k in stored.files})
    done += (target / run.name / "done").exists()
print(f"packed {runs} run folders, {done} finished")
EOF
tar -C "$stage" -czf - paper_tables logs | split -b 15m - "$PACK/runs.tgz."
rm -rf "$stage"
ls -la "$PACK"
