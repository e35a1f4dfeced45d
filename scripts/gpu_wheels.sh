#!/usr/bin/env bash
# Run HERE (a machine with PyPI access) before a GPU session whose machine cannot reach the
# network: downloads into .whl/ (git-ignored) what that machine's image lacks, for
# scripts/gpu_check.sh to install offline:
#   - CompressAI's cp312 wheel, and pytorch-msssim, which CompressAI imports at load time;
#   - thop (FLOP counting in samic_fast.complexity, when installed);
#   - mamba-ssm's sdist: gpu_check.sh builds its selective_scan CUDA extension there, sm_90 only.
# The image already has torch, torchvision, triton, numpy, scipy, pandas, matplotlib, einops,
# torch-geometric, tqdm, pillow and pytest (device/KINDS.md). Fails if the folder exceeds the
# 64 MiB that a device call may carry.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${WHL_DIR:-.whl}
PY=${PYTHON:-.venv/bin/python}
LIMIT_MIB=${LIMIT_MIB:-60}   # leaves room under the 64 MiB carry limit for the source tree
mkdir -p "$DEST"
PIP=("$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$DEST")
"${PIP[@]}" --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
  --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 compressai==1.2.8
"${PIP[@]}" --only-binary=:all: --python-version 3.12 pytorch-msssim==1.0.0 thop==0.1.1.post2209072238
MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE \
  "${PIP[@]}" --no-binary=:all: --no-build-isolation mamba-ssm==2.3.2.post1
ls -l "$DEST"
size_kib=$(du -sk "$DEST" | cut -f1)
echo "total: $((size_kib / 1024)) MiB in $DEST (limit ${LIMIT_MIB} MiB)"
if (( size_kib > LIMIT_MIB * 1024 )); then
  echo "error: $DEST is over ${LIMIT_MIB} MiB; remove stale files (one version of each package)" >&2
  exit 1
fi
