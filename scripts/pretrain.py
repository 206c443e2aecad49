#!/usr/bin/env python
"""Pretrain PolarBERT by masked-DOM prediction + total charge (the paper's section 3), with `Trainer`.

    python scripts/pretrain.py configs/pretrain_tiny.yaml --output_dir runs/pretrain
    accelerate launch scripts/pretrain.py configs/pretrain_paper.yaml --train_dataset data/kaggle_prepared/train

The YAML file holds `ModelArguments`, `DataArguments` and `TrainingArguments` fields; any of them can be
overridden on the command line. The shape of transformers' examples/pytorch/language-modeling/run_mlm.py.
"""

import logging
import sys

import modeling_polarbert  # noqa: F401  (registers the Auto classes)
from modeling_polarbert import PolarBertForMaskedDOM
from modeling_polarbert.collators import PolarBertPretrainingCollator, as_training_dataset
from modeling_polarbert.training import (
    DataArguments,
    ModelArguments,
    PolarBertTrainer,
    StopOnNonFiniteLoss,
    build_config,
    check_is_polarbert_folder,
    describe_training_data,
    compute_pretraining_metrics,
    parse_arguments,
    preprocess_pretraining_logits,
    split_train_eval,
    train_evaluate_and_save,
)
from transformers import TrainingArguments, set_seed

logger = logging.getLogger("pretrain")


def main(argv: list[str] | None = None) -> dict:
    model_args, data_args, training_args = parse_arguments((ModelArguments, DataArguments, TrainingArguments), argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=training_args.get_process_log_level())
    set_seed(training_args.seed)

    # The DOM loss needs the charge target beside the DOM labels in evaluation.
    training_args.label_names = ["labels", "total_charge"]
    training_args.remove_unused_columns = False
    train_dataset, eval_dataset = split_train_eval(data_args)

    if model_args.model_name_or_path:
        check_is_polarbert_folder(model_args.model_name_or_path)
    config = build_config(model_args, sparse_prediction=True)
    if model_args.model_name_or_path:
        model = PolarBertForMaskedDOM.from_pretrained(model_args.model_name_or_path, config=config)
    else:
        model = PolarBertForMaskedDOM(config)
    model.set_attn_implementation(model_args.attn_implementation)
    logger.info("PolarBertForMaskedDOM with %s parameters", f"{model.num_parameters():,}")

    trainer = PolarBertTrainer(
        model=model,
        args=training_args,
        train_dataset=as_training_dataset(train_dataset),
        eval_dataset=as_training_dataset(eval_dataset),
        # A fresh draw of down-sampling and masking every epoch; evaluation draws the same pulses every time.
        data_collator=PolarBertPretrainingCollator(config, seed=training_args.seed),
        eval_data_collator=PolarBertPretrainingCollator(config, deterministic=True),
        callbacks=[StopOnNonFiniteLoss()],
        training_data=describe_training_data(data_args, train_dataset),
        compute_metrics=compute_pretraining_metrics,
        preprocess_logits_for_metrics=preprocess_pretraining_logits,
    )
    return train_evaluate_and_save(trainer, hub_tags=["masked-dom-prediction"])


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError, FloatingPointError) as error:
        print(f"pretrain: error: {error}", file=sys.stderr)
        sys.exit(2)
