#!/usr/bin/env python
"""The paper's sample-efficiency figure on one GPU in one run of under 9 minutes, and a pretrained backbone to ship:
the door to `modeling_polarbert.gpu_study`, which says what each phase does and what it writes.

    python scripts/gpu_study.py --out runs/gpu_study --data-dir data/gpu_study --collect OUT_DIR   # the GPU run
    python scripts/gpu_study.py --tiny --out runs/gpu_study_tiny --data-dir data/gpu_study_tiny      # CPU, seconds
"""

from modeling_polarbert.gpu_study import main

if __name__ == "__main__":
    main()
