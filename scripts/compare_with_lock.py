"""Compare the packages installed in this Python environment with a lock file (requirements/lock-*.txt).

    python scripts/compare_with_lock.py requirements/lock-cpu.txt             # exit 1 if any version differs
    python scripts/compare_with_lock.py requirements/lock-cpu.txt --report    # print the differences, exit 0
    python scripts/compare_with_lock.py requirements/lock-cpu.txt --extras    # names installed but not locked

scripts/setup.sh runs the first (and removes the extras of a reused .venv), scripts/check_newest_releases.sh the
second. Standard library only, so that it runs in any environment.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path

# Installed with every venv or by setup.sh outside the lock: not differences.
NOT_LOCKED = {"pip", "polarbert"}
HEADLINE = ("torch", "transformers", "datasets", "accelerate")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock: Path) -> dict[str, str]:
    """{package: version} of the lock's `name==version` lines (comments and `# via` lines skipped)."""
    pins = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", line)
        if match:
            pins[normalized(match[1])] = match[2]
    if not pins:
        raise SystemExit(f"{lock}: no name==version lines")
    return pins


def installed_versions() -> dict[str, str]:
    return {normalized(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}


def differences(pins: dict[str, str], installed: dict[str, str]) -> list[str]:
    """One line per package whose installed version is not the locked one, or that is installed but not locked."""
    lines = [f"{name}: lock {version}, installed {installed.get(name, 'nothing')}"
             for name, version in sorted(pins.items()) if installed.get(name) != version]
    lines += [f"{name}: not in the lock, installed {installed[name]}" for name in extras(pins, installed)]
    return lines


def extras(pins: dict[str, str], installed: dict[str, str]) -> list[str]:
    return sorted(set(installed) - set(pins) - NOT_LOCKED)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lock", type=Path)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--report", action="store_true", help="print the differences and exit 0")
    mode.add_argument("--extras", action="store_true", help="print the installed packages that the lock lacks")
    args = parser.parse_args(argv)
    pins, installed = locked_versions(args.lock), installed_versions()
    if args.extras:
        print(" ".join(extras(pins, installed)))
        return 0
    found = differences(pins, installed)
    if not found:
        headline = ", ".join(f"{name} {pins[name]}" for name in HEADLINE if name in pins)
        print(f"installed = {args.lock} ({len(pins)} packages: {headline}, ...)")
        return 0
    print(f"installed differs from {args.lock} in {len(found)} packages:")
    print("\n".join(f"  {line}" for line in found))
    return 0 if args.report else 1


if __name__ == "__main__":
    sys.exit(main())
