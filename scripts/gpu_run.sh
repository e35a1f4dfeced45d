#!/usr/bin/env bash
# Run ON a CUDA machine (H100/H200 image: python3 with torch and triton, no network), from the
# repository root, with .whl/ from scripts/gpu_wheels.sh beside it. Each stage fits in a
# 10-minute call; results go to $OUT (default gpu-results/).
#
#   scripts/gpu_run.sh setup tests verify     # install, GPU test suite, parity at Kodak shapes
#   scripts/gpu_run.sh mamba                  # build mamba-ssm's CUDA scan (the speed anchor)
#   scripts/gpu_run.sh bench                  # samic-fast bench --device cuda, pytest-benchmark
set -uo pipefail
OUT=${OUT:-gpu-results}
SITE=${SITE:-/tmp/samic-site}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

stage_setup() {
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl || return
  # Editable, into python3's own environment (the machine is bare and given back afterwards): a
  # --target install would be shadowed by ./samic_fast, which lacks the kernels/ mapping.
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . || return
  "$PY" - <<'PYEOF' | tee "$OUT/device.txt"
import torch, triton
p = torch.cuda.get_device_properties(0)
print(f"{p.name}, {p.multi_processor_count} SMs, torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}, triton {triton.__version__}")
PYEOF
}

stage_tests() {
  "$PY" -m pytest -q -p no:cacheprovider tests --junitxml="$OUT/tests.xml" 2>&1 | tee "$OUT/tests.log"
}

stage_verify() {
  "$PY" -m samic_fast verify --device cuda --shapes kodak 2>&1 | tee "$OUT/verify.txt"
}

stage_mamba() {
  MAMBA_FORCE_BUILD=TRUE MAMBA_KEEP_CUDA_BUILD=TRUE TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 \
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --target "$SITE" \
    .whl/mamba_ssm-*.tar.gz 2>&1 | tail -20 | tee "$OUT/mamba-build.log"
  "$PY" -c "import selective_scan_cuda; print('selective_scan_cuda OK')" | tee -a "$OUT/mamba-build.log"
}

stage_bench() {
  "$PY" -m samic_fast bench --device cuda --json "$OUT/bench-cuda.json" 2>&1 | tee "$OUT/bench-cuda.txt"
  "$PY" -m pytest -q -p no:cacheprovider bench --benchmark-enable --benchmark-only \
    --benchmark-group-by=group --benchmark-json="$OUT/pytest-bench.json" 2>&1 | tail -60 > "$OUT/pytest-bench.txt"
}

for stage in "$@"; do
  echo "== $stage"
  "stage_$stage" || echo "stage $stage failed (status $?)"
done
