#!/usr/bin/env bash
# The GPU checks as one command for a GPU machine (the device tool; about 10 minutes):
#   the tests marked gpu, then the benchmark at the paper's scale.
# On the device machine torch is installed but hydra-core, omegaconf, antlr4 and the other
# pure-Python needs are not: carry them as wheels in .whl/ (see the device tool's README:
# `pip download --no-deps ... -d .whl hydra-core==1.3.2 omegaconf==2.3.0
# antlr4-python3-runtime==4.9.3 pyyaml pandas pyarrow tqdm matplotlib ...`).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD/src:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD/src:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv || true
python3 -m pytest -m gpu -p no:cacheprovider -q tests/test_gpu.py
python3 scripts/bench_gpu.py "$@"
