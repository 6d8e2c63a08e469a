#!/usr/bin/env bash
# The paper-tables grid (15 settings x seeds 0-2) on one GPU, as one command for the device
# tool (issue 10):  bash scripts/gpu_paper_tables.sh RUNS_DIR PACK_DIR [DEADLINE_S]
# Four processes, one per panel (NN1 + D1, NN1 + D2, NN2 + D1, NN2 + D2), each training its
# settings x seeds as one stacked model (launcher=batched): a run alone leaves the GPU idle
# (launch-bound), and four processes keep it busy while each one's spectra are computed.
# Same configs, same run names (train.device is not hashed), same files as the CPU runs.
# At DEADLINE_S (default 530) unfinished processes are stopped (their runs resume from the
# last checkpoint when the same command runs again); then every run folder, without its
# checkpoint and figure, is packed into PACK_DIR as runs.tgz.* pieces of 15 MB (with the
# processes' logs), eigenvalues as float32 (the precision esd.parquet keeps; a replay moves
# s_hat by < 1e-6).  The GPU-marked tests run beside the grid (tests/test_gpu.py).
# Measured on an H200 (docs/benchmarks.md): ~3.2 s per epoch of each process, so the whole
# grid needs ~14 minutes, more than one 10-minute call; run folders on the device machine did
# not survive to the next call (the second call started over), so a call must finish its runs.
# Hydra is not on the device machine: carry hydra-core, omegaconf, antlr4 wheels in .whl/
# (scripts/gpu_tests.sh says how).  PROFILE and DEVICE override profile and train.device
# (a CPU rehearsal: PROFILE=smoke DEVICE=cpu).
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:?usage: gpu_paper_tables.sh RUNS_DIR PACK_DIR [DEADLINE_S]}
PACK=${2:?usage: gpu_paper_tables.sh RUNS_DIR PACK_DIR [DEADLINE_S]}
DEADLINE=${3:-530}
PROFILE=${PROFILE:-paper}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
LOGS=$RUNS/sweeps/paper_tables/logs
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
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

panels="nn1_d1:delta0.15,delta0.3,delta0.6,delta0.9 nn1_d2:t0.24,t1.2,t2.4,t3.2,t4.8
nn2_d1:delta0.02,delta0.13,delta0.2 nn2_d2:t1.2,t2.4,t4.8"
start=$(date +%s)
$PY -m pytest -m gpu -p no:cacheprovider -q tests/test_gpu.py > "$LOGS/gpu_tests.log" 2>&1 &
tests=$!
pids=()
for panel in $panels; do
  name=${panel%%:*}
  experiments=$(echo "${panel#*:}" | tr ',' '\n' | sed "s|^|paper_tables/${name}_|" | paste -sd,)
  $PY scripts/run.py sweep=paper_tables "profile=$PROFILE" launcher=batched \
    "train.device=$DEVICE" train.progress=false train.threads=2 "paths.output_dir=$RUNS" \
    "hydra.sweeper.params.experiment=\"$experiments\"" 'hydra.sweeper.params.seed="0,1,2"' \
    > "$LOGS/$name.log" 2>&1 &
  pids+=($!)
done
while :; do
  running=0
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && running=$((running + 1)); done
  elapsed=$(( $(date +%s) - start ))
  [ "$running" -eq 0 ] && break
  if [ $((elapsed % 60)) -lt 5 ]; then
    echo "${elapsed}s: $(for f in "$LOGS"/nn*.log; do tail -n 1 "$f" | cut -c1-40; done | paste -sd'|')"
  fi
  if [ "$elapsed" -ge "$DEADLINE" ]; then
    echo "deadline: stopping $running process(es) at ${elapsed}s"
    kill -TERM "${pids[@]}" 2>/dev/null
    sleep 5
    break
  fi
  sleep 5
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
echo "training wall time: $(( $(date +%s) - start ))s (exit status $status)"
wait "$tests"; echo "GPU tests: $(tail -n 1 "$LOGS/gpu_tests.log")"
for panel in $panels; do
  name=${panel%%:*}
  echo "--- $name"; grep -E "runs training|Training|Error|error" "$LOGS/$name.log" | tail -3
done
# the run folders, small: no checkpoints or figures; float32 eigenvalues
stage=$(mktemp -d)
$PY - "$RUNS/sweeps/paper_tables" "$stage/paper_tables" <<'EOF'
import shutil, sys
from pathlib import Path
import numpy as np
source, target = Path(sys.argv[1]), Path(sys.argv[2])
done = 0
shutil.copytree(source / "logs", target / "logs")
for run in sorted(p for p in source.iterdir() if p.is_dir() and p.name != "logs"):
    (target / run.name).mkdir(parents=True)
    for item in run.iterdir():
        if item.name == "eigenvalues.npz":
            with np.load(item) as stored:
                np.savez(target / run.name / item.name,
                         **{k: stored[k].astype(np.float32) for k in stored.files})
        elif item.is_file() and item.suffix not in (".pt", ".png") and item.name != ".lock":
            shutil.copy2(item, target / run.name / item.name)
    done += (run / "done").exists()
print(f"packed {done} finished run folders of {sum(1 for _ in target.iterdir()) - 1}")
EOF
tar -C "$stage" -czf - paper_tables | split -b 15m - "$PACK/runs.tgz."
ls -la "$PACK"
exit $status
