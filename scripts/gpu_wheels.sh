#!/usr/bin/env bash
# Run HERE (a machine with PyPI access) before using a GPU machine that cannot reach the network:
# downloads what its image lacks into .whl/ (git-ignored): CompressAI's cp312 wheel and
# mamba-ssm's sdist (built there for the CUDA speed anchor). See scripts/gpu_run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
PY=${PYTHON:-.venv/bin/python}
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_17_x86_64 -d .whl compressai==1.2.8
MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE \
  "$PY" -m pip download -q --no-deps --no-build-isolation -d .whl mamba-ssm==2.3.2.post1
ls -l .whl
