#!/usr/bin/env bash
# The benchmarks on a CUDA GPU: the training loop against a bare loop, the evaluation engine against the
# peer-style loop (and the GPU's matmul rate), rsgd against y sgd epochs; all on device cuda.
#
#   benchmarks/gpu.sh                   # full sizes, ~2-3 min on a recent GPU
#   benchmarks/gpu.sh --quick           # smoke sizes
#   benchmarks/gpu.sh --with-study      # also the default study with device auto (it then uses the GPU)
#
# Extra arguments go to benchmarks/run.py. The log and a JSON of every number go to $BENCH_OUT
# (default results/benchmarks/, ignored by git). The dry-run benchmark (CPU only) is left out.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUTDIR=${BENCH_OUT:-results/benchmarks}
mkdir -p "$OUTDIR"
stamp=$(date +%Y%m%d-%H%M%S)

if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
fi
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu.sh: torch sees no CUDA device (torch $("$PY" -c 'import torch; print(torch.__version__)'))" >&2
    exit 2
fi
"$PY" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))'

parts=(train evaluate samplers)
if [[ " $* " == *" --with-study "* ]]; then parts+=(study); fi
"$PY" benchmarks/run.py --device cuda --only "${parts[@]}" --json "$OUTDIR/gpu-$stamp.json" "$@" \
    2>&1 | tee "$OUTDIR/gpu-$stamp.log"
echo "written: $OUTDIR/gpu-$stamp.log, $OUTDIR/gpu-$stamp.json"
