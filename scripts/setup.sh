#!/usr/bin/env bash
# Set up a fresh machine: a virtual environment in .venv with polarbert and its test tools installed.
# Where no NVIDIA GPU is present, the CPU build of torch is installed first: a plain `torch` requirement
# would otherwise pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        "${pip[@]}" "torch>=2.4,<3"
    else
        "${pip[@]}" "torch==2.13.0"
    fi
fi
"${pip[@]}" -e ".[test]"
