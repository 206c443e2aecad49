#!/usr/bin/env bash
# Set up a machine: a virtual environment in .venv with polarbert and its test tools, at exactly the versions of
# a lock (requirements/lock-*.txt, written by scripts/lock.sh), so that the same commands give the same
# environment on any day. Where no NVIDIA GPU is present the CPU lock is used: it pins torch's CPU build, where a
# plain `torch` would pull a multi-GB CUDA build. This workplace serves that build from pip's local wheel folder;
# elsewhere, point pip at PyTorch's CPU wheel index (PIP_EXTRA_INDEX_URL) before running this.
# It ends by checking that what is installed equals the lock, and says so. docs/dependencies.md: the locks, the
# GPU machine, and the check against the newest releases.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    lock=requirements/lock-cuda.txt
else
    lock=requirements/lock-cpu.txt
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check)
# --no-deps: the lock already lists every dependency, so pip installs exactly it and resolves nothing new.
"${pip[@]}" install --quiet --no-deps -r "$lock"
# A .venv made earlier may hold packages the lock no longer has (an older lock's, or ones installed by hand).
extras=$(.venv/bin/python scripts/compare_with_lock.py "$lock" --extras)
if [ -n "$extras" ]; then
    echo "removing packages that $lock does not list: $extras"
    # shellcheck disable=SC2086  # one word per package
    "${pip[@]}" uninstall --quiet --yes $extras
fi
"${pip[@]}" install --quiet --no-deps -e .
"${pip[@]}" check
.venv/bin/python scripts/compare_with_lock.py "$lock"
