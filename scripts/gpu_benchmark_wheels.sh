#!/usr/bin/env bash
# Fill .whl/ (git-ignored) with what the GPU machine's image lacks for scripts/gpu_benchmark.sh: datasets and the
# two pure-Python packages it needs that the image does not hold, for that machine's Python 3.12, and pyarrow 24 in
# .whl/optional/ for an image whose pyarrow is older than datasets 5.2 needs (about 50 MB in all). Run it here,
# where pip reaches PyPI, then name .whl (and reference) in the device tool's carry.
set -euo pipefail
cd "$(dirname "$0")/.."
download() {
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$@"
}
# The versions of the CPU lock, which the test suite runs with.
locked() { grep -E "^$1==" requirements/lock-cpu.txt; }
download .whl "$(locked datasets)" "$(locked dill)" "$(locked multiprocess)"
download .whl/optional pyarrow==24.0.0
ls -l .whl .whl/optional
