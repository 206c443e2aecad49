#!/usr/bin/env python
"""Fine-tune PolarBERT with `Trainer`: direction (the paper's section 3) or any event-level regression or
classification (energy, track/cascade, vertex) from the same pretrained folder.

    python scripts/finetune.py configs/finetune_tiny.yaml --model_name_or_path runs/pretrain --output_dir runs/finetune
    python scripts/finetune.py configs/finetune_tiny.yaml --model_name_or_path runs/pretrain --from_scratch true ...
    python scripts/finetune.py configs/finetune_tiny.yaml --model_name_or_path runs/pretrain \
        --task regression --label_columns log10:energy --output_dir runs/energy
    python scripts/finetune.py configs/finetune_tiny.yaml --model_name_or_path runs/pretrain \
        --task classification --label_columns is_track --output_dir runs/track
    accelerate launch scripts/finetune.py configs/finetune_paper.yaml --max_train_events 100000 ...

`--task direction` (the default) trains `PolarBertForDirection`; `--task regression` and `--task classification`
train `PolarBertForSequenceClassification` on the dataset columns of `--label_columns` (modeling_polarbert/labels.py:
a `log10:` prefix, several columns for several targets or, in classification, several boolean labels), checked in
the training and evaluation sets before training. From a pretrained checkpoint the backbone is taken and the head
initialised (as BERT does for a classification head); `--from_scratch true` takes only the checkpoint's config, for
the same architecture with random weights; `--freeze_backbone true` trains the head only. `--max_train_events N`
trains on the first N labelled events; `--max_train_seconds S` stops after S seconds of training. The run itself is
`modeling_polarbert.training.run_finetuning`.
"""

import sys

from modeling_polarbert.training import run_finetuning

if __name__ == "__main__":
    try:
        run_finetuning()
    except (ValueError, FileNotFoundError, FloatingPointError) as error:
        print(f"finetune: error: {error}", file=sys.stderr)
        sys.exit(2)
