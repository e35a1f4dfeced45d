#!/usr/bin/env bash
# The whole GPU check in one call, on a bare CUDA machine without network (the lent H100/H200
# image: Python 3.12, torch 2.11, triton 3.6, pytest, nvcc), within GPU_CHECK_BUDGET_S seconds
# (default 450: under 8 minutes with set-up), from the repository root:
#
#   scripts/gpu_wheels.sh                 # HERE first, where PyPI is reachable: fills .whl/
#   scripts/gpu_check.sh                  # THERE, with .whl/ carried along; results in $OUT
#   GPU_CHECK_DRY=1 scripts/gpu_check.sh  # on a CPU: the same flow with tiny settings
#
# Steps, each time-boxed (a hang costs its own limit, never the whole budget), each recorded
# with its status; a failing step does not stop the ones after it:
#   setup    CompressAI, pytorch-msssim, thop from .whl/ (offline) and this package (editable)
#   mamba    mamba-ssm's selective_scan CUDA extension, sm_90 forward only
#            (scripts/build_mamba_sm90.py), in the background while the next steps run
#   tests    the GPU tests (kernels compiled for the GPU, model shapes)
#   verify   samic-fast verify --device cuda (parity at the Kodak shapes)
#   static   samic-fast bench --static (predicted H100 times from the SASS)
#   calibrate  the static model's load latency and launch costs, measured (bench/calibrate.py)
#   kernels  the kernel table: triton, reference, torch.compile, mamba-ssm CUDA; every ratio;
#            measured against predicted (--compare-static)
#   network  the network table for K = 4, 8, 16 at 768x512
#   pdl      the fused op with and without programmatic dependent launch (bench/pdl_ab.py)
#   network-4k  3840x2160 for K = 16, if time is left
# Files written to $OUT (at most 8): summary.md, gpu_check.log, static.md, static.json,
# bench.md, bench.json, network.json, mamba-build.log.
set -u
cd "$(dirname "$0")/.." || exit 1

OUT=${OUT:-gpu-results}
DRY=${GPU_CHECK_DRY:-0}
BUDGET=${GPU_CHECK_BUDGET_S:-450}
WHL=${WHL_DIR:-.whl}
WORK=${GPU_CHECK_WORK:-/tmp/samic-gpu-check}
if [[ $DRY == 1 ]]; then PY=${PYTHON:-.venv/bin/python}; else PY=${PYTHON:-python3}; fi
mkdir -p "$OUT" "$WORK"
LOG=$OUT/gpu_check.log
SUMMARY=$OUT/summary.md
: >"$LOG"
START=$SECONDS
ROWS=""
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

record() {  # NAME STATUS SECONDS NOTE
  ROWS+="| $1 | $2 | $3 | $4 |"$'\n'
  echo "=== $1: $2 after $3 s${4:+ ($4)}" >>"$LOG"
}

# step NAME LIMIT_S OUTFILE CMD... : CMD's stdout to OUTFILE (and the log; "-" = log only),
# stderr to the log; killed after min(LIMIT_S, what is left of the budget).
step() {
  local name=$1 limit=$2 outfile=$3 rc=0 t0=$SECONDS left
  shift 3
  left=$((BUDGET - (SECONDS - START)))
  ((left < limit)) && limit=$left
  if ((limit < 15)); then
    record "$name" skipped 0 "budget spent"
    return 1
  fi
  echo "=== [$((SECONDS - START)) s] $name (limit $limit s): $*" >>"$LOG"
  if [[ $outfile == - ]]; then
    timeout --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1 || rc=$?
  else
    # Both append (O_APPEND): stderr and the tee'd stdout interleave in the log, in order.
    # shellcheck disable=SC2094
    timeout --kill-after=10 "$limit" "$@" 2>>"$LOG" | tee -a "$LOG" >>"$outfile"
    rc=${PIPESTATUS[0]}
  fi
  if ((rc == 0)); then
    record "$name" ok $((SECONDS - t0)) ""
  elif ((rc == 124 || rc == 137)); then
    record "$name" TIMEOUT $((SECONDS - t0)) "killed at $limit s"
  else
    record "$name" "FAILED (exit $rc)" $((SECONDS - t0)) "see gpu_check.log"
  fi
  return "$rc"
}

# ---- settings: the real run, or a dry run on a CPU with tiny sizes ----------------------------
if [[ $DRY == 1 ]]; then
  DEV=cpu
  PIP_TARGET_FLAGS=(--python-version 3.12 --only-binary=:all:)
  TESTS=(tests/test_bench_static.py tests/test_bench_report.py -k "layout or ratio or probe")
  VERIFY=(--device cpu --shapes small --dtype fp32)
  STATIC=(--shapes tiny)
  KERNELS=(--shapes tiny --ops sass_scan --providers "reference,mamba_cuda" --threads 1)
  NETWORK=(--ks 16 --model-size 64x64 --threads 1)
  NETWORK_4K=()
  MAMBA=(--sources-only)
  VERIFY_ENV=(env TRITON_INTERPRET=1)  # CPU verify runs the kernels in Triton's interpreter
else
  DEV=cuda
  PIP_TARGET_FLAGS=()
  TESTS=(tests/test_kernel_sass_scan.py tests/test_kernel_cluster_assign.py
         tests/test_kernel_scan_order.py tests/test_custom_ops.py tests/test_cross_backend.py
         tests/test_selective_scan_fn.py tests/test_bench_static.py)
  VERIFY=(--device cuda --shapes kodak)
  STATIC=()
  KERNELS=(--ops "sass_scan,selective_scan" --providers "triton,reference,compile,mamba_cuda,dropin")
  NETWORK=(--ks "4,8,16")
  NETWORK_4K=(--ks 16 --model-size 3840x2160)
  MAMBA=()
  VERIFY_ENV=(env)
fi

# ---- env -----------------------------------------------------------------------------------
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  dry run: $DRY  budget: $BUDGET s"
  command -v nvidia-smi >/dev/null && nvidia-smi -L
  "$PY" -c "import sys, torch, triton; print('python', sys.version.split()[0], '| torch', torch.__version__, '| CUDA', torch.version.cuda, '| triton', triton.__version__, '| GPU', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none')"
  git log -1 --format='commit: %h %s' 2>/dev/null
} >"$WORK/env.txt" 2>&1
cat "$WORK/env.txt" >>"$LOG"

# ---- setup ---------------------------------------------------------------------------------
SITE=$WORK/site
shopt -s nullglob
wheels=("$WHL"/*.whl)
sdists=("$WHL"/mamba_ssm-*.tar.gz)
shopt -u nullglob
if ((${#wheels[@]})); then
  step setup-wheels 60 - "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade \
    --target "$SITE" "${PIP_TARGET_FLAGS[@]}" "${wheels[@]}"
  # In a dry run the cp312 wheels are only unpacked, not used (the venv has its own copies).
  [[ $DRY == 1 ]] || export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
else
  record setup-wheels FAILED 0 "no wheels in $WHL: run scripts/gpu_wheels.sh where PyPI is reachable"
fi
if [[ $DRY != 1 ]]; then
  # Editable, so that samic_fast.kernels / samic_fast.bench map to kernels/ and bench/.
  step setup-package 90 - "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e .
fi

# ---- mamba-ssm's CUDA scan, in the background ------------------------------------------------
MAMBA_PID=""
if ((${#sdists[@]})); then
  echo "=== [$((SECONDS - START)) s] mamba build started in the background" >>"$LOG"
  MAMBA_T0=$SECONDS
  (MAX_JOBS=${MAX_JOBS:-8} timeout --kill-after=10 240 "$PY" scripts/build_mamba_sm90.py \
    "${sdists[0]}" "$WORK/mamba" "${MAMBA[@]}" >"$OUT/mamba-build.log" 2>&1
   echo $? >"$WORK/mamba.rc") &
  MAMBA_PID=$!
else
  record mamba FAILED 0 "no mamba_ssm sdist in $WHL"
fi

# ---- tests, verify, static -------------------------------------------------------------------
step tests 150 - "$PY" -m pytest -q -p no:cacheprovider "${TESTS[@]}"
step verify 60 - "${VERIFY_ENV[@]}" "$PY" -m samic_fast verify "${VERIFY[@]}"
: >"$OUT/static.md"
step static 90 "$OUT/static.md" "$PY" -m samic_fast bench --static --json "$OUT/static.json" "${STATIC[@]}"

if [[ $DRY != 1 ]]; then  # the model's load latency and launch costs, measured
  step calibrate 40 "$OUT/static.md" "$PY" -m samic_fast.bench.calibrate --device "$DEV"
fi

# ---- wait for mamba ----------------------------------------------------------------------------
if [[ -n $MAMBA_PID ]]; then
  wait "$MAMBA_PID"
  rc=$(cat "$WORK/mamba.rc" 2>/dev/null || echo 1)
  ext=$WORK/mamba/ext
  src=$(find "$WORK/mamba/src" -maxdepth 1 -name 'mamba_ssm-*' 2>/dev/null | head -1)
  if [[ $rc == 0 && $DRY != 1 ]]; then
    export PYTHONPATH="$ext:$src${PYTHONPATH:+:$PYTHONPATH}"
    if "$PY" -c "import torch, selective_scan_cuda; assert hasattr(selective_scan_cuda, 'fwd')" >>"$LOG" 2>&1; then
      record mamba ok $((SECONDS - MAMBA_T0)) "selective_scan_cuda imports"
    else
      record mamba "FAILED (import)" $((SECONDS - MAMBA_T0)) "see mamba-build.log"
    fi
  elif [[ $rc == 0 ]]; then
    record mamba ok $((SECONDS - MAMBA_T0)) "dry run: sources generated, not compiled"
  else
    record mamba "FAILED (exit $rc)" $((SECONDS - MAMBA_T0)) "see mamba-build.log; mamba_cuda rows will say why"
  fi
fi

# ---- measured tables -------------------------------------------------------------------------
: >"$OUT/bench.md"
echo "# kernels" >>"$OUT/bench.md"
step kernels 150 "$OUT/bench.md" "$PY" -m samic_fast bench --device "$DEV" --no-model --quiet \
  --compare-static "$OUT/static.json" --json "$OUT/bench.json" "${KERNELS[@]}"
echo "# network" >>"$OUT/bench.md"
step network 90 "$OUT/bench.md" "$PY" -m samic_fast bench --device "$DEV" --no-kernels --quiet \
  --json "$OUT/network.json" "${NETWORK[@]}"
if [[ $DRY != 1 ]]; then  # GPU timings only: nothing to time on a CPU
  echo "# programmatic dependent launch" >>"$OUT/bench.md"
  step pdl 45 "$OUT/bench.md" "$PY" -m samic_fast.bench.pdl_ab --device "$DEV"
fi
if ((${#NETWORK_4K[@]})); then
  echo "# network, 3840x2160" >>"$OUT/bench.md"
  step network-4k 90 "$OUT/bench.md" "$PY" -m samic_fast bench --device "$DEV" --no-kernels --quiet \
    --json "$WORK/network-4k.json" "${NETWORK_4K[@]}"
fi

# ---- summary -----------------------------------------------------------------------------------
{
  echo "# GPU check ($([[ $DRY == 1 ]] && echo 'DRY RUN on CPU, tiny settings' || echo 'CUDA'))"
  echo
  sed 's/^/    /' "$WORK/env.txt"
  echo
  echo "| step | status | seconds | note |"
  echo "|---|---|---:|---|"
  printf '%s' "$ROWS"
  echo
  echo "Total: $((SECONDS - START)) s of a $BUDGET s budget."
  echo
  # The fused op against its prediction, the network tables, and one targets table merged
  # from every run (a measured row wins over a "not measured" one).
  awk '/^### fused SASS op: measured/{p=1} /^### \(b\)/{p=0} p' "$OUT/bench.md"
  awk '/^### fused SASS op with programmatic/{p=1} /^# network/{p=0} p' "$OUT/bench.md"
  awk '/^### static model constants, measured/{p=1} p' "$OUT/static.md"
  awk '/^# network/{n=1} n && /^### \(b\)/{p=1} /^### \(c\)/{p=0} p' "$OUT/bench.md"
  "$PY" - "$OUT/bench.json" "$OUT/network.json" "$WORK/network-4k.json" <<'PYEOF' 2>>"$LOG"
import json, sys
from samic_fast.bench.report import md_table
rows = {}
for path in sys.argv[1:]:
    try:
        devices = json.load(open(path))["devices"]
    except (OSError, ValueError, KeyError):
        continue
    for dev in devices.values():
        for t in dev.get("targets", []):
            if t["name"] not in rows or (t["measured"] and not rows[t["name"]]["measured"]):
                rows[t["name"]] = t
print("### targets (every run merged)\n")
print(md_table(["target", "goal", "measured", "status", "what bounds it"],
               [[t["name"], t["target"], t["measured"] or "-", t["status"], t["bound"]]
                for t in rows.values()], "lllll"))
PYEOF
  echo
  echo "Static report (predicted): static.md; full output: bench.md; log: gpu_check.log."
} >"$SUMMARY"
echo "wrote $(find "$OUT" -maxdepth 1 -type f | wc -l) files to $OUT in $((SECONDS - START)) s"
grep -q "FAILED\|TIMEOUT" <<<"$ROWS" && exit 1
exit 0
