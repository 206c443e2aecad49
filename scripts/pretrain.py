#!/usr/bin/env python
"""Pretrain PolarBERT by masked-DOM prediction + total charge (the paper's section 3), with `Trainer`.

    python scripts/pretrain.py configs/pretrain_tiny.yaml --output_dir runs/pretrain
    accelerate launch scripts/pretrain.py configs/pretrain_paper.yaml --train_dataset data/kaggle_prepared/train
    python scripts/pretrain.py configs/pretrain_paper.yaml --num_train_epochs 1000 --max_train_seconds 300

The YAML file holds `ModelArguments`, `DataArguments` and `PolarBertTrainingArguments` (`TrainingArguments` plus
`max_train_seconds`, a wall-clock budget) fields; any of them can be overridden on the command line. The shape of
transformers' examples/pytorch/language-modeling/run_mlm.py; the run itself is
`modeling_polarbert.training.run_pretraining`.
"""

import sys

from modeling_polarbert.training import run_pretraining

if __name__ == "__main__":
    try:
        run_pretraining()
    except (ValueError, FileNotFoundError, FloatingPointError) as error:
        print(f"pretrain: error: {error}", file=sys.stderr)
        sys.exit(2)
