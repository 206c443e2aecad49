#!/usr/bin/env bash
# The GPU measurement of docs/performance.md in one command, on the GPU machine (no network there):
#
#     bash scripts/gpu_benchmark.sh [extra arguments of scripts/gpu_benchmark.py]
#
# It installs the wheels carried in .whl/ (datasets and what it needs, which that machine lacks; fill .whl/ with
# scripts/gpu_benchmark_wheels.sh where PyPI is reachable), then runs scripts/gpu_benchmark.py with the report in
# $OUT (the device tool's folder that comes back; runs/gpu_benchmark elsewhere) and the data in /tmp. The
# reference implementation is read from reference/ (git-ignored; see modeling_polarbert/benchmarks/reference.py).
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
  wheels=(.whl/*.whl)
  # datasets 5.2 needs pyarrow >= 24: take the carried one only where the machine's is older
  if ! python3 -c "import pyarrow, sys; sys.exit(int(pyarrow.__version__.split('.')[0]) < 24)" 2>/dev/null; then
    wheels+=(.whl/optional/pyarrow-*.whl)
  fi
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${wheels[@]}"
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -c "import datasets, pyarrow, torch, transformers; print('torch', torch.__version__, '| transformers', transformers.__version__, '| datasets', datasets.__version__, '| pyarrow', pyarrow.__version__, '| cuda', torch.cuda.is_available())"
exec python3 scripts/gpu_benchmark.py --out "${OUT:-runs/gpu_benchmark}" --work /tmp/polarbert-gpu-benchmark "$@"
