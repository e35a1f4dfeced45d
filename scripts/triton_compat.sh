#!/usr/bin/env bash
# Run the Triton kernel tests against another Triton release, without touching the venv.
#
#   scripts/triton_compat.sh VERSION [DIR] [-- PYTEST_ARGS...]
#   scripts/triton_compat.sh 3.6.0                  # temp dir, removed afterwards
#   scripts/triton_compat.sh 3.9.0 /tmp/tr3.9.0     # kept, and reused when already installed there
#   scripts/triton_compat.sh 3.6.0 -- -x -k sass    # extra pytest arguments
#
# The kernels must work on Triton 3.6 through 3.9 (GPU machines: torch 2.11 + triton 3.6; users
# may have 3.9), but the venv pins one (scripts/bootstrap.sh). This installs `triton==VERSION`
# with --no-deps into a --target directory and puts it first on PYTHONPATH, so it shadows the
# venv's triton for this run only. Without a GPU the tests run under the interpreter
# (tests/conftest.py sets TRITON_INTERPRET=1); on a GPU machine they compile for it.
# Not part of CI or `make test`: each Triton wheel is ~0.7-1 GB installed. Compatibility rules
# the kernels follow: kernels/_utils.py, "Triton version compatibility".
set -euo pipefail

usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -ge 1 && $1 != -* ]] || usage
VERSION=$1
shift
DIR=""
if [[ $# -ge 1 && $1 != -- ]]; then
  DIR=$1
  shift
fi
[[ $# -ge 1 && $1 == -- ]] && shift

cd "$(dirname "$0")/.."
PY=${VENV:-.venv}/bin/python
[[ -x $PY ]] || { echo "error: $PY not found (run 'make test' once to create the venv)" >&2; exit 1; }

if [[ -z $DIR ]]; then
  DIR=$(mktemp -d "${TMPDIR:-/tmp}/triton-$VERSION.XXXXXX")
  trap 'rm -rf "$DIR"' EXIT
fi
if [[ -d $DIR/triton-$VERSION.dist-info ]]; then
  echo "using triton $VERSION already in $DIR"
else
  echo "installing triton==$VERSION into $DIR ..."
  "$PY" -m pip install -q --disable-pip-version-check --no-deps --target "$DIR" "triton==$VERSION"
fi

export PYTHONPATH="$DIR${PYTHONPATH:+:$PYTHONPATH}"
# Make sure the shadowing worked: the tests must not silently run the venv's triton.
"$PY" - "$VERSION" "$DIR" <<'EOF'
import os, sys
import triton
want, where = sys.argv[1], os.path.realpath(sys.argv[2])
got = os.path.realpath(triton.__file__)
if triton.__version__ != want or not got.startswith(where + os.sep):
    sys.exit(f"error: imported triton {triton.__version__} from {got}, wanted {want} from {where}")
print(f"triton {triton.__version__} from {os.path.dirname(got)}")
EOF

start=$SECONDS
status=0
"$PY" -m pytest -q -p no:cacheprovider \
  tests/test_kernel_cluster_assign.py tests/test_kernel_scan_order.py \
  tests/test_kernel_sass_scan.py tests/test_custom_ops.py "$@" || status=$?
echo "triton $VERSION: pytest exit $status in $((SECONDS - start)) s"
exit $status
