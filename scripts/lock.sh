#!/usr/bin/env bash
# Rewrite the locks that scripts/setup.sh installs, from pyproject.toml's ranges and requirements/constraints.txt
# (torch), with uv's resolver (the newest versions inside the ranges):
#
#     bash scripts/lock.sh
#
#   requirements/lock-cpu.txt    a machine without an NVIDIA GPU (CI, the dev machines): torch's CPU build, which
#                                this workplace serves from the local wheel folder $TORCH_WHEELS (default /opt/wheels)
#   requirements/lock-cuda.txt   a machine with one: torch from PyPI, with the CUDA libraries it pins
#
# Both are resolved for CPython 3.11 on Linux x86_64, the Python of CI. Run the suite on the new lock
# (bash scripts/setup.sh && .venv/bin/python -m pytest -q tests) before committing it; docs/dependencies.md says
# when and how the lock was last refreshed. uv is installed into a throwaway folder, not into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
uv_version=0.13.9
tool_dir=${TMPDIR:-/tmp}/polarbert-uv-$uv_version
if [ ! -x "$tool_dir/bin/uv" ]; then
    python3 -m venv "$tool_dir"
    "$tool_dir/bin/python" -m pip install --quiet "uv==$uv_version"
fi
compile() {
    "$tool_dir/bin/uv" pip compile pyproject.toml --extra test --constraint requirements/constraints.txt \
        --python-version 3.11 --python-platform x86_64-manylinux_2_28 --custom-compile-command "bash scripts/lock.sh" \
        --quiet "$@"
}
# What each lock is for, above uv's own header.
with_header() {
    local lock=$1 header=$2
    { printf '%s\n' "$header"; cat "$lock"; } >"$lock.new" && mv "$lock.new" "$lock"
}
# uv reads neither pip's configuration nor its find-links: the CPU wheel's folder is named here.
compile --find-links "${TORCH_WHEELS:-/opt/wheels}" --output-file requirements/lock-cpu.txt
with_header requirements/lock-cpu.txt "\
# The set the test suite passes with: CPython 3.11, Linux x86_64, no NVIDIA GPU (CI, the dev machines), torch's
# CPU build. scripts/setup.sh installs exactly these (pip --no-deps) and checks that the result equals this file.
# The lent GPU machine does not run setup.sh (it has no network): it keeps its image's Python 3.12, torch 2.11,
# transformers 5.17 and its own pyarrow and pandas, and scripts/gpu_benchmark.sh adds datasets, dill and
# multiprocess at this file's versions (docs/dependencies.md)."
compile --output-file requirements/lock-cuda.txt
with_header requirements/lock-cuda.txt "\
# What scripts/setup.sh installs on a machine with an NVIDIA GPU: requirements/lock-cpu.txt's versions, but torch
# from PyPI with the CUDA libraries it pins. Resolved for CPython 3.11 on Linux x86_64; no machine of this project
# has run it yet (the lent GPU machine has no network and uses its own torch, see docs/dependencies.md)."
if ! grep -q '^torch==.*+cpu$' requirements/lock-cpu.txt; then
    echo "lock-cpu.txt did not get torch's CPU build (is it in ${TORCH_WHEELS:-/opt/wheels}?)" >&2
    exit 1
fi
grep -E '^(torch|transformers|datasets|accelerate)==' requirements/lock-cpu.txt
