#!/usr/bin/env bash
# The GPU check on a bare GPU box (see bench/gpu_check.py). Wheels carried in .whl/ (the list:
# python3 bench/gpu_check.py --list-packages) are installed to /tmp/site first; the check must
# end inside 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
exec timeout 480 python3 bench/gpu_check.py "$@"
