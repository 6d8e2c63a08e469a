#!/usr/bin/env bash
# Sweeps on one GPU, for the device tool: one detached process per stack, then the run folders
# packed small for the trip back.
#   bash scripts/gpu_sweeps.sh RUNS_DIR PACK_DIR DEADLINE_S PROCESS [PROCESS ...]
# PROCESS is "name|sweep|override override ...": `scripts/run.py sweep=<sweep>
# launcher=batched` with those overrides (a subset of the sweep's grid: the runs one stacked
# model trains; runs that cannot be stacked are trained one after another in that process).
# Callers: scripts/gpu_paper_tables.sh (issue 10), scripts/gpu_stopping_runs.sh (issue 25).
# Same configs, same run names (train.device is not hashed), same files as the CPU runs.  The
# processes are detached (setsid): at DEADLINE_S this call packs what is saved so far and
# returns while they go on training; the same command, called again while the machine is
# still warm, attaches to them instead of starting over.  Keep RUNS_DIR outside the checkout:
# each call re-copies the working tree.  A fresh machine starts the runs over.
# Each call packs every run folder of RUNS_DIR/sweeps/*, without checkpoint and figure, into
# PACK_DIR as runs.tgz.* pieces of 15 MB (with the processes' logs), eigenvalues as float32
# (the precision esd.parquet keeps; a replay moves s_hat by < 1e-6); unpack them into the
# local runs folder and collect with `scripts/collect.py` (`--partial` while runs are
# unfinished).  The GPU-marked tests run beside the first call's training.  Hydra is not on
# the device machine: carry hydra-core, omegaconf, antlr4 wheels in .whl/ (scripts/gpu_tests.sh
# says how).  DEVICE overrides train.device (a CPU rehearsal: DEVICE=cpu); DRY_RUN=1 prints the
# processes and starts nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
usage="usage: gpu_sweeps.sh RUNS_DIR PACK_DIR DEADLINE_S 'name|sweep|overrides' ..."
RUNS=${1:?$usage}
PACK=${2:?$usage}
DEADLINE=${3:?$usage}
shift 3
[ $# -gt 0 ] || { echo "$usage" >&2; exit 2; }
if [ -n "${DRY_RUN:-}" ]; then  # the processes it would start, one per line, and nothing else
  printf '%s\n' "$@"
  exit 0
fi
DEVICE=${DEVICE:-cuda}
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
# one thread each: a process's host work (the spectral fits) is serial, and many share the CPUs
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true

training() {  # how many of the recorded training processes are alive
  local count=0 pid
  if [ -f "$PIDS" ]; then
    while read -r pid; do kill -0 "$pid" 2>/dev/null && count=$((count + 1)); done <"$PIDS"
  fi
  echo "$count"
}

start=$(date +%s)
if [ "$(training)" -gt 0 ]; then
  echo "attaching to the $(training) training processes an earlier call started"
else
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  $PY -m pytest -m gpu -p no:cacheprovider -q tests/test_gpu.py >"$LOGS/gpu_tests.log" 2>&1 &
  tests=$!
  : >"$PIDS"
  for process in "$@"; do
    IFS='|' read -r name sweep overrides <<<"$process"
    # shellcheck disable=SC2086  # the overrides are words
    setsid $PY scripts/run.py "sweep=$sweep" launcher=batched "train.device=$DEVICE" \
      train.progress=false train.threads=1 "paths.output_dir=$RUNS" $overrides \
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
    echo "${elapsed}s: $(for f in "$LOGS"/*.log; do tail -n 1 "$f" | cut -c1-30; done | paste -sd'|')"
  fi
  sleep 5
done
echo "this call: $(($(date +%s) - start))s"
if [ -n "${tests:-}" ]; then
  wait "$tests"
  echo "GPU tests: $(tail -n 1 "$LOGS/gpu_tests.log")"
fi
for log in "$LOGS"/*.log; do
  echo "--- $(basename "$log")"
  grep -E "runs training|Training|Error|error|failed" "$log" | tail -3
done
# the run folders, small: no checkpoints or figures; float32 eigenvalues; files copied in the
# order a save writes them (collect --partial keeps the epochs metrics.csv has)
stage=$(mktemp -d)
$PY - "$RUNS" "$stage" <<'EOF'
import shutil, sys
from pathlib import Path
import numpy as np
source, target = Path(sys.argv[1]), Path(sys.argv[2])
shutil.copytree(source / "logs", target / "logs")
done = runs = 0
for run in sorted(p for p in source.glob("sweeps/*/*") if p.is_dir()):
    runs += 1
    packed = target / "sweeps" / run.parent.name / run.name
    packed.mkdir(parents=True)
    for name in ("config.yaml", "done", "summary.json", "metrics.csv", "spectral.csv"):
        if (run / name).exists():
            shutil.copy2(run / name, packed / name)
    if (run / "eigenvalues.npz").exists():
        with np.load(run / "eigenvalues.npz") as stored:
            np.savez(packed / "eigenvalues.npz",
                     **{k: stored[k].astype(np.float32) for k in stored.files})
    done += (packed / "done").exists()
print(f"packed {runs} run folders, {done} finished")
EOF
tar -C "$stage" -czf - sweeps logs | split -b 15m - "$PACK/runs.tgz."
rm -rf "$stage"
ls -la "$PACK"
