#!/usr/bin/env bash
# Every GPU figure of grokscope in one call (bench/README.md, "First session with a GPU"):
#
#   bash bench/gpu.sh                  # a CUDA machine: every bench with --device cuda and one full-setting
#                                      # grokking run, at most 8 minutes, all figures in out/gpu/figures.json
#   bash bench/gpu.sh --cpu-smoke      # the same steps, tiny, on the CPU (GROKSCOPE_GPU_SMOKE=1 does the same)
#
# Further options go to bench/gpu.py: --out DIR, --budget SECONDS, --only NAME..., --skip NAME...,
# --launch fork|spawn. The interpreter is $PYTHON (default python3). Where it cannot import
# transformer_lens and a folder .whl/ of wheels sits in the repository (a machine without a package
# registry: bench/README.md says which wheels), they are installed into a temporary folder first.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

if ! "$PY" -c "import transformer_lens" >/dev/null 2>&1 && compgen -G ".whl/*.whl" >/dev/null; then
  site=${TMPDIR:-/tmp}/grokscope-site
  echo "installing the wheels of .whl/ into $site"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:$site"
fi

exec "$PY" bench/gpu.py "$@"
