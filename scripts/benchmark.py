#!/usr/bin/env python
"""Throughput and memory of PolarBERT: the door to `modeling_polarbert.benchmarks.throughput`, which says what it
measures (training and inference steps of every variant, Trainer end to end, prediction, the collator, the
reference implementation, two checks of the fast paths).

    python scripts/benchmark.py --device cuda --model paper --batch-size 2048          # the 8 M model on a GPU
    python scripts/benchmark.py --device cuda --model 159m --batch-size 512 --gradient-checkpointing off on
    python scripts/benchmark.py --device cpu --model tiny --events 4000 --batch-size 128  # what CI can run
"""

import sys
from pathlib import Path

# The GPU machine runs the repository's tree without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modeling_polarbert.benchmarks.throughput import main  # noqa: E402

if __name__ == "__main__":
    main()
