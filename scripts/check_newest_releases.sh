#!/usr/bin/env bash
# The test suite on the newest releases that pyproject.toml's ranges allow, so that a release elsewhere is found
# here before a newcomer finds it:
#
#     bash scripts/check_newest_releases.sh [pytest arguments]
#
# It builds a throwaway venv (removed at the end) from the ranges alone, prints which installed versions differ
# from requirements/lock-cpu.txt, runs the suite there and exits with the suite's status. torch stays the CPU
# build of requirements/constraints.txt (the newest CPU build this workplace serves; a newer torch would be a
# multi-GB CUDA build). Not part of .ci/run: a release elsewhere must not block a landing. Green and different:
# refresh the lock (bash scripts/lock.sh, then scripts/setup.sh and the suite). Red: fix the code or narrow the
# range. Either way, record the outcome in docs/dependencies.md. About 4 minutes of installs and 5 of tests on
# 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/polarbert-newest.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
python=$work/venv/bin/python
pip=("$python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet -r requirements/constraints.txt
# No lock here: pip takes the newest version of every other dependency inside the ranges.
"${pip[@]}" install --quiet -e ".[test]"
"${pip[@]}" check
echo "== $(date -u +%Y-%m-%d): the newest releases inside pyproject.toml's ranges, against the lock"
"$python" scripts/compare_with_lock.py requirements/lock-cpu.txt --report
status=0
"$python" -m pytest -q -p no:cacheprovider tests "$@" || status=$?
if [ "$status" -eq 0 ]; then
    echo "== the newest releases pass the suite"
else
    echo "== the newest releases FAIL the suite (exit $status)"
fi
exit "$status"
