#!/usr/bin/env bash
# Create the local virtual environment on first use (called by the Makefile).
# Order matters on a CPU-only machine (see README "Installing"): the CPU torch build first, so
# nothing later resolves a CUDA torch; CompressAI without its dependencies (it would pull
# torchvision, a CUDA build here); mamba-ssm (test reference only) without its CUDA extension.
set -euo pipefail
VENV=${1:-.venv}
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
TRITON_SPEC=${TRITON_SPEC:-triton==3.7.1}

"$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" "$TORCH_SPEC"
"${PIP[@]}" "$TRITON_SPEC" numpy einops pillow tqdm setuptools wheel
# CompressAI's import-time needs, then CompressAI itself without its dependency list.
"${PIP[@]}" scipy pandas pytorch-msssim requests torch-geometric
"${PIP[@]}" --no-deps compressai==1.2.8
# thop counts MACs the way the paper did (samic_fast.complexity); it needs only torch.
"${PIP[@]}" --no-deps thop==0.1.1.post2209072238
# Test and benchmark tools.
"${PIP[@]}" pytest pytest-benchmark hypothesis scikit-image
# matplotlib (`samic-fast show` / `plot`) and its pure dependencies, named so that pip resolves
# nothing else (numpy, pillow and packaging are already in; six comes with pandas).
"${PIP[@]}" --no-deps matplotlib contourpy cycler fonttools kiwisolver pyparsing python-dateutil
MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE \
  "${PIP[@]}" --no-build-isolation --no-deps mamba-ssm==2.3.2.post1
# The package itself, editable, without re-resolving its (already installed) dependencies.
"${PIP[@]}" --no-build-isolation --no-deps -e .
