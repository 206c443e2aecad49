#!/usr/bin/env python
"""The GPU measurement of docs/performance.md in one run that ends within its time budget (8 minutes by default):
the door to `modeling_polarbert.benchmarks.gpu_benchmark`, which says what it runs and writes.

    bash scripts/gpu_benchmark.sh                      # on the GPU machine: installs carried wheels, then this
    python scripts/gpu_benchmark.py --out runs/gpu_benchmark
    python scripts/gpu_benchmark.py --tiny --device cpu --out /tmp/gpu_benchmark --in-process   # what CI runs
"""

import sys
from pathlib import Path

# The GPU machine runs the repository's tree without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modeling_polarbert.benchmarks.gpu_benchmark import main  # noqa: E402

if __name__ == "__main__":
    main()
