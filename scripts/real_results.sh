#!/usr/bin/env bash
# The paper's real-data grid (MNIST and CIFAR-10 x LeNet, MiniAlexNet, VGG11 x batch 16, 32, 64,
# 128, 256: 30 runs, sweep=real) at the paper's scale, then its table beside the paper's
# (results/tables/paper_real.md) and the FC1 / FC2 ESD figures.  Needs the data sets: downloaded
# through torchvision into $HEAVYTAIL_DATA (default data/) on a machine with internet, or put
# there by hand.  Resumable: run it again and it continues where it stopped.
#   make results-real                       # the paper's scale: 250 epochs, whole data sets
#   PROFILE=quick make results-real         # 500 images per class, 60 epochs
# Cost: GPU work (docs/running.md): LeNet on CIFAR-10 is ~47 s per epoch on a 2-core CPU,
# MiniAlexNet ~330 s, so the whole grid is months on a CPU and hours on one GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUNS=${HEAVYTAIL_RUNS:-$HOME/heavytail-runs}
PROFILE=${PROFILE:-paper}
RESULTS=${RESULTS:-results}
LAUNCHER=${LAUNCHER:-local}
launch=()
[ "$LAUNCHER" = basic ] || launch=("launcher=$LAUNCHER")
# the downloads once, before the parallel jobs (two jobs downloading into one folder race);
# DOWNLOAD=0 when the files are already in place
if [ "${DOWNLOAD:-1}" = 1 ]; then
  $PY -c "import sys; from htrain.data import load_cifar10, load_mnist
load_mnist(sys.argv[1], True, 28); load_cifar10(sys.argv[1], True, 32)" "${HEAVYTAIL_DATA:-data}"
fi
$PY scripts/run.py sweep=real "profile=$PROFILE" "${launch[@]}" train.progress=false \
  "paths.output_dir=$RUNS" "$@"
# every eigenvalue kept: any rule can be replayed later
$PY scripts/collect.py real --runs "$RUNS/sweeps/real" --out "$RESULTS/paper_real" --overwrite \
  --esd data.name=mnist,cifar10 --command "make results-real PROFILE=$PROFILE"
$PY scripts/collect.py real --runs "$RUNS/sweeps/real" --out "$RESULTS/gap_rule/paper_real" \
  --overwrite --n-classes none
format=()
[ "$PROFILE" = paper ] || format=(--format-test)
$PY scripts/paper_real.py --results "$RESULTS" "${format[@]}"
