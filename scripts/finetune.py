#!/usr/bin/env python
"""Fine-tune PolarBERT for direction reconstruction (the paper's section 3), with `Trainer`.

    python scripts/finetune.py configs/finetune_tiny.yaml --model_name_or_path runs/pretrain --output_dir runs/finetune
    python scripts/finetune.py configs/finetune_tiny.yaml --model_name_or_path runs/pretrain --from_scratch true ...
    accelerate launch scripts/finetune.py configs/finetune_paper.yaml --max_train_events 100000 ...

From a pretrained checkpoint the backbone is taken and the direction head initialised (as BERT does for a
classification head); `--from_scratch true` takes only the checkpoint's config, for the same architecture with
random weights. `--max_train_events N` trains on the first N labelled events.
"""

import logging
import sys

import modeling_polarbert  # noqa: F401  (registers the Auto classes)
from modeling_polarbert import PolarBertForDirection
from modeling_polarbert.collators import PolarBertDirectionCollator, as_training_dataset
from modeling_polarbert.training import (
    DataArguments,
    ModelArguments,
    PolarBertTrainer,
    StopOnNonFiniteLoss,
    build_config,
    check_is_polarbert_folder,
    describe_training_data,
    compute_direction_metrics,
    freeze_backbone,
    parse_arguments,
    split_train_eval,
    train_evaluate_and_save,
)
from transformers import TrainingArguments, set_seed

logger = logging.getLogger("finetune")


def main(argv: list[str] | None = None) -> dict:
    model_args, data_args, training_args = parse_arguments((ModelArguments, DataArguments, TrainingArguments), argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=training_args.get_process_log_level())
    set_seed(training_args.seed)
    training_args.remove_unused_columns = False
    train_dataset, eval_dataset = split_train_eval(data_args, require_labels=True)

    if model_args.model_name_or_path:
        check_is_polarbert_folder(model_args.model_name_or_path)
    config = build_config(model_args)
    if model_args.model_name_or_path and not model_args.from_scratch:
        model = PolarBertForDirection.from_pretrained(model_args.model_name_or_path, config=config)
    else:
        model = PolarBertForDirection(config)
    model.set_attn_implementation(model_args.attn_implementation)
    if model_args.freeze_backbone:
        freeze_backbone(model)
    logger.info(
        "PolarBertForDirection (%s) with %s trainable parameters, %d training events",
        "from scratch" if model_args.from_scratch or not model_args.model_name_or_path else "pretrained",
        f"{model.num_parameters(only_trainable=True):,}", len(train_dataset),
    )

    trainer = PolarBertTrainer(
        model=model,
        args=training_args,
        train_dataset=as_training_dataset(train_dataset),
        eval_dataset=as_training_dataset(eval_dataset),
        data_collator=PolarBertDirectionCollator(config, seed=training_args.seed),
        eval_data_collator=PolarBertDirectionCollator(config, deterministic=True),
        callbacks=[StopOnNonFiniteLoss()],
        training_data=describe_training_data(data_args, train_dataset),
        compute_metrics=compute_direction_metrics,
    )
    return train_evaluate_and_save(trainer, hub_tags=["direction-reconstruction"])


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError, FloatingPointError) as error:
        print(f"finetune: error: {error}", file=sys.stderr)
        sys.exit(2)
