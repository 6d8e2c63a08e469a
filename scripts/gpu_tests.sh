#!/usr/bin/env bash
# The GPU checks as one command for a GPU machine (the device tool; about 10 minutes):
#   the tests marked gpu, then the benchmark at the paper's scale.
# The device machine has torch, pandas, pyarrow, pytest, lightning and the rest, but not
# hydra-core, omegaconf and antlr4 (the tests' conftest registers the config resolvers).
# Carry them as wheels in .whl/ (the device tool's README), once, here:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux2014_x86_64 -d .whl \
#     hydra-core==1.3.2 omegaconf==2.3.0
#   python3 -m pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3   # sdist only
# then run `bash scripts/gpu_tests.sh` there with .whl in carry.
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
