"""Pretraining and fine-tuning with `Trainer`: `run_pretraining(argv)` and `run_finetuning(argv)` (what
`scripts/pretrain.py` and `scripts/finetune.py` run, in the shape of transformers' run_mlm.py): arguments, data,
config, model, collators, `PolarBertTrainer`, train, save, evaluate. Training itself is `transformers.Trainer`'s;
nothing here loops over steps. The parts have homes of their own: the arguments, their YAML and the model config
they describe in training_args.py, the callbacks in training_callbacks.py, the `Trainer` subclass and its sampler in
trainer.py, the metrics in task_metrics.py.
"""

import logging

import torch
from transformers import set_seed

from .configuration_polarbert import PolarBertConfig
from .labels import check_label_columns, parse_label_columns, problem_type_of, sequence_task_config
from .loading import check_is_polarbert_folder, load_prepared_dataset
from .pulse_dataset import as_pulse_dataset
from .tasks import MASKED_DOM, head_for_task, label_column_tasks
from .trainer import PolarBertTrainer
from .training_args import ARGUMENT_TYPES, DataArguments, ModelArguments, build_config, build_feature_extractor, \
    check_launch, parse_arguments
from .training_callbacks import StopAtTimeLimit, StopOnNonFiniteLoss  # noqa: F401  (StopAtTimeLimit: the README names it here)

logger = logging.getLogger(__name__)


def describe_training_data(data_args: DataArguments, train_dataset) -> str:
    """One line for the model card: where the training events came from and how many there were."""
    return f"{len(train_dataset):,} events from `{data_args.train_dataset}` (a dataset written by `polarbert prepare`)."


def split_train_eval(data_args: DataArguments, require_labels: bool = False):
    """(train, eval) `datasets.Dataset`s from the data arguments."""
    train = load_prepared_dataset(data_args.train_dataset, require_labels)
    if data_args.eval_dataset:
        evaluation = load_prepared_dataset(data_args.eval_dataset, require_labels)
    else:
        if len(train) <= data_args.eval_events:
            raise ValueError(
                f"{data_args.train_dataset} holds {len(train)} events, not more than eval_events={data_args.eval_events}"
            )
        evaluation = train.select(range(len(train) - data_args.eval_events, len(train)))
        train = train.select(range(len(train) - data_args.eval_events))
    if data_args.max_train_events is not None:
        train = train.select(range(min(data_args.max_train_events, len(train))))
    if data_args.max_eval_events is not None:
        evaluation = evaluation.select(range(min(data_args.max_eval_events, len(evaluation))))
    return train, evaluation


def train_evaluate_and_save(trainer: PolarBertTrainer, hub_tags: list[str]) -> dict:
    """What both scripts do once the Trainer is built, as transformers' run_mlm.py does it: train (resuming if
    asked), save the model, metrics and state, evaluate, write the model card, push if asked."""
    args = trainer.args
    train_result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    # A schedule-free optimizer trains on one weight sequence and evaluates on its average: put the average in
    # the model before saving it (Trainer does so only around evaluations). A best checkpoint loaded at the end
    # already holds averaged weights, and converting them again would spoil them.
    if callable(getattr(trainer.optimizer, "eval", None)) and not args.load_best_model_at_end:
        trainer.optimizer.eval()
    trainer.save_model()
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()

    metrics = trainer.evaluate()
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)
    trainer.create_model_card()
    if args.push_to_hub:
        trainer.push_to_hub(tags=["polarbert", "icecube", "neutrino", *hub_tags])
    return metrics


def freeze_backbone(model) -> None:
    for parameter in model.polarbert.parameters():
        parameter.requires_grad_(False)


# ---- the two runs (the bodies of scripts/pretrain.py and scripts/finetune.py, in run_mlm.py's shape) -----------


def _load_pretrained(model_class, model_args: ModelArguments, config: PolarBertConfig):
    # float32 master weights whatever the checkpoint's dtype (a shipped backbone is bf16): mixed precision is
    # `--bf16`'s job, and an optimizer stepping bf16 weights loses small updates.
    return model_class.from_pretrained(model_args.model_name_or_path, config=config, dtype=torch.float32)


def run_pretraining(argv: list[str] | None = None) -> dict:
    """`scripts/pretrain.py`: masked-DOM pretraining from YAML + command-line arguments; returns the eval metrics."""
    check_launch()
    model_args, data_args, training_args = parse_arguments(ARGUMENT_TYPES, argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=training_args.get_process_log_level())
    set_seed(training_args.seed)

    # The DOM loss needs the charge target beside the DOM labels in evaluation.
    training_args.label_names = ["labels", "total_charge"]
    training_args.remove_unused_columns = False
    train_dataset, eval_dataset = split_train_eval(data_args)

    if model_args.model_name_or_path:
        check_is_polarbert_folder(model_args.model_name_or_path)
    extractor = build_feature_extractor(model_args)
    config = build_config(model_args, extractor, sparse_prediction=True)
    head = MASKED_DOM
    if model_args.model_name_or_path:
        model = _load_pretrained(head.model_class, model_args, config)
    else:
        model = head.model_class(config)
    model.set_attn_implementation(model_args.attn_implementation)
    logger.info("%s with %s parameters", head.model_class.__name__, f"{model.num_parameters():,}")

    trainer = PolarBertTrainer(
        model=model,
        args=training_args,
        # Saved beside every checkpoint (preprocessor_config.json + its code): events -> inputs from the Hub alone.
        processing_class=extractor,
        train_dataset=as_pulse_dataset(train_dataset),
        eval_dataset=as_pulse_dataset(eval_dataset),
        # A fresh draw of down-sampling and masking every epoch; evaluation draws the same pulses every time.
        data_collator=head.collator_class(config, seed=training_args.seed, pack_length=data_args.pack_length,
                                          feature_extractor=extractor),
        eval_data_collator=head.collator_class(config, deterministic=True, feature_extractor=extractor),
        callbacks=[StopOnNonFiniteLoss()],
        training_data=describe_training_data(data_args, train_dataset),
        compute_metrics=head.metrics(config),
        preprocess_logits_for_metrics=head.preprocess_logits,
    )
    return train_evaluate_and_save(trainer, hub_tags=head.hub_tags(config))


def sequence_task(model_args: ModelArguments, data_args: DataArguments, train_dataset, eval_dataset) -> dict:
    """The config fields of a regression/classification task, after checking both datasets' label columns."""
    specs = parse_label_columns(data_args.label_columns)
    problem_type = problem_type_of(model_args.task, specs)
    train_table = check_label_columns(train_dataset, specs, problem_type, data_args.train_dataset)
    check_label_columns(eval_dataset, specs, problem_type, data_args.eval_dataset or data_args.train_dataset)
    return sequence_task_config(model_args.task, specs, train_table)


def run_finetuning(argv: list[str] | None = None) -> dict:
    """`scripts/finetune.py`: fine-tuning from YAML + command-line arguments; returns the eval metrics.
    `--task` picks the head in tasks.py's registry: direction (the default) trains `PolarBertForDirection`;
    regression / classification train `PolarBertForSequenceClassification` on the dataset columns of
    `--label_columns` (see labels.py), checked in both datasets before training."""
    check_launch()
    model_args, data_args, training_args = parse_arguments(ARGUMENT_TYPES, argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=training_args.get_process_log_level())
    head = head_for_task(model_args.task)
    if not head.reads_label_columns and data_args.label_columns:
        raise ValueError(f"--label_columns is for --task {' or '.join(label_column_tasks())}; {model_args.task} "
                         f"reads {head.labels}")
    if head.reads_label_columns and not data_args.label_columns:
        raise ValueError(f"--task {model_args.task} needs --label_columns, e.g. log10:energy or is_track")
    set_seed(training_args.seed)
    training_args.remove_unused_columns = False
    # Fixed label columns (azimuth, zenith) are checked on loading, `--label_columns` by sequence_task below.
    train_dataset, eval_dataset = split_train_eval(data_args, require_labels=not head.reads_label_columns)

    if model_args.model_name_or_path:
        check_is_polarbert_folder(model_args.model_name_or_path)
    extractor = build_feature_extractor(model_args)
    task = sequence_task(model_args, data_args, train_dataset, eval_dataset) if head.reads_label_columns else {}
    if task:
        logger.info("task %s on %s: %s", task["problem_type"], task["label_columns"], task["id2label"])
    config = build_config(model_args, extractor, **task)
    model_class, collator_class = head.model_class, head.collator_class
    if model_args.model_name_or_path and not model_args.from_scratch:
        model = _load_pretrained(model_class, model_args, config)
    else:
        model = model_class(config)
    model.set_attn_implementation(model_args.attn_implementation)
    if model_args.freeze_backbone:
        freeze_backbone(model)
    logger.info(
        "%s (%s) with %s trainable parameters, %d training events", model_class.__name__,
        "from scratch" if model_args.from_scratch or not model_args.model_name_or_path else "pretrained",
        f"{model.num_parameters(only_trainable=True):,}", len(train_dataset),
    )

    trainer = PolarBertTrainer(
        model=model,
        args=training_args,
        # Saved beside every checkpoint (preprocessor_config.json + its code): events -> inputs from the Hub alone.
        processing_class=extractor,
        train_dataset=as_pulse_dataset(train_dataset, head.extra_columns(config)),
        eval_dataset=as_pulse_dataset(eval_dataset, head.extra_columns(config)),
        data_collator=collator_class(config, seed=training_args.seed, pack_length=data_args.pack_length,
                                     feature_extractor=extractor),
        eval_data_collator=collator_class(config, deterministic=True, feature_extractor=extractor),
        callbacks=[StopOnNonFiniteLoss()],
        training_data=describe_training_data(data_args, train_dataset),
        compute_metrics=head.metrics(config),
    )
    return train_evaluate_and_save(trainer, hub_tags=head.hub_tags(config))
