"""Pretraining and fine-tuning with `Trainer`: `run_pretraining(argv)` and `run_finetuning(argv)` (what
`scripts/pretrain.py` and `scripts/finetune.py` run, in the shape of transformers' run_mlm.py), and what they share:
argument parsing from YAML + command line, the model config, a `Trainer` that samples batches by length from our
Arrow fast path and logs the loss parts, and the evaluation metrics. Training itself is `transformers.Trainer`'s;
nothing here loops over steps.
"""

import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from transformers import HfArgumentParser, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_pt_utils import LengthGroupedSampler

from .collators import (
    PolarBertDirectionCollator,
    PolarBertPretrainingCollator,
    PolarBertSequenceClassificationCollator,
    as_training_dataset,
)
from .configuration_polarbert import PolarBertConfig
from .hub import write_model_card
from .loading import check_is_polarbert_folder, load_prepared_dataset
from .modeling_polarbert import PolarBertForDirection, PolarBertForMaskedDOM, PolarBertForSequenceClassification
from .numpy_directions import opening_angle
from .task_metrics import class_auc, class_probabilities, residual_summary
from .tasks import TASKS, check_label_columns, parse_label_columns, problem_type_of, sequence_task_config, \
    source_columns

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A saved PolarBERT folder (or Hub id) to start from; none: a fresh model."}
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "Config values for a fresh model, or changes to a loaded one, e.g. "
                  "'hidden_size=64,num_hidden_layers=2,num_attention_heads=4,intermediate_size=256'."},
    )
    attn_implementation: str = field(default="sdpa", metadata={"help": "eager, sdpa, flash_attention_2, flex_attention"})
    from_scratch: bool = field(
        default=False, metadata={"help": "Take only the config of model_name_or_path; start from random weights."}
    )
    freeze_backbone: bool = field(default=False, metadata={"help": "Fine-tuning: train the task head only."})
    task: str = field(
        default="direction",
        metadata={"help": "Fine-tuning task: direction (PolarBertForDirection), regression or classification "
                  "(PolarBertForSequenceClassification, labels from --label_columns)."},
    )


@dataclass
class DataArguments:
    train_dataset: str = field(default="data/prepared/train", metadata={"help": "Folder written by `polarbert prepare`."})
    eval_dataset: str | None = field(
        default=None, metadata={"help": "Separate prepared folder for evaluation; none: the last eval_events of train."}
    )
    eval_events: int = field(default=2000, metadata={"help": "Events held out from train when no eval_dataset."})
    max_train_events: int | None = field(default=None, metadata={"help": "Train on the first N events only."})
    max_eval_events: int | None = field(default=None, metadata={"help": "Evaluate on the first N events only."})
    label_columns: str | None = field(
        default=None,
        metadata={"help": "Regression/classification labels: comma-separated dataset columns, 'log10:' to take a "
                  "column's log10, e.g. 'log10:energy', 'vertex_x,vertex_y,vertex_z', 'is_track'."},
    )


def parse_arguments(dataclass_types, argv: list[str] | None = None):
    """`script.py [config.yaml] [--key value ...]`: the YAML file sets defaults, the command line overrides them."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser(dataclass_types)
    if argv and argv[0].endswith((".yaml", ".yml")):
        path = Path(argv.pop(0))
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} not found")
        values = yaml.safe_load(path.read_text()) or {}
        known = {action.dest for action in parser._actions}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path}: unknown argument(s) {unknown}")
        parser.set_defaults(**values)
    return parser.parse_args_into_dataclasses(args=argv)


def parse_config_overrides(text: str | None) -> dict:
    """'a=1,b=x,c=true' -> {'a': 1, 'b': 'x', 'c': True}, values read as YAML scalars."""
    if not text:
        return {}
    overrides = {}
    for item in text.split(","):
        key, separator, value = item.partition("=")
        if not separator:
            raise ValueError(f"config_overrides: expected key=value, got {item!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def build_config(model_args: ModelArguments, **fixed) -> PolarBertConfig:
    """The config of a fresh model, or that of `model_name_or_path` with the overrides applied."""
    overrides = {**parse_config_overrides(model_args.config_overrides), **fixed}
    if model_args.model_name_or_path:
        config = PolarBertConfig.from_pretrained(model_args.model_name_or_path)
        unknown = [key for key in overrides if not hasattr(config, key)]
        if unknown:
            raise ValueError(f"config_overrides: unknown PolarBertConfig field(s) {unknown}")
        for key, value in overrides.items():
            setattr(config, key, value)
        return config
    return PolarBertConfig(**overrides)


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


class StopOnNonFiniteLoss(TrainerCallback):
    """A loss that turns NaN or inf stops the run with a message instead of training on garbage."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise FloatingPointError(
                f"training loss became {loss} at step {state.global_step}; stopping. The last checkpoint in "
                f"{args.output_dir} is intact: lower the learning rate or check the data, then resume from it."
            )


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """Trainer's length-grouped sampler, with its order a function of (seed, epoch) alone. Trainer calls
    `set_epoch` at every epoch, also when it resumes from a checkpoint, so a resumed run sees the batches of an
    uninterrupted one."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator = torch.Generator().manual_seed(self.seed + epoch)


class PolarBertTrainer(Trainer):
    """`Trainer` with three additions:

    - length-grouped batches (training and evaluation) read their lengths from our Arrow fast-path dataset
      (`as_training_dataset`), because Trainer only knows how to read them from a `datasets.Dataset` column;
    - evaluation and prediction may use their own collator (`eval_data_collator`): a deterministic one selects and
      masks the same pulses of an event at every evaluation, so eval metrics are comparable between steps;
    - the training log carries the loss parts a PolarBERT output reports (masked-DOM CE, charge MSE).
    """

    LOSS_PARTS = ("masked_dom_loss", "charge_loss")

    def __init__(self, *args, eval_data_collator=None, training_data: str = "Not recorded.", **kwargs):
        super().__init__(*args, **kwargs)
        self.eval_data_collator = eval_data_collator
        self.training_data = training_data
        self._loss_part_sums = {}
        self._loss_part_steps = 0

    def _save(self, output_dir=None, state_dict=None):
        """Save as Trainer does, but the training arguments as JSON instead of a pickle (training_args.bin)."""
        super()._save(output_dir, state_dict)
        output_dir = Path(output_dir if output_dir is not None else self.args.output_dir)
        (output_dir / "training_args.bin").unlink(missing_ok=True)
        (output_dir / "training_args.json").write_text(self.args.to_json_string())

    def create_model_card(self, *args, **kwargs):
        """Our card (README.md with Hub metadata and the last evaluation) instead of Trainer's generic one; also
        what `push_to_hub` uploads."""
        if not self.is_world_process_zero():
            return
        evaluations = [entry for entry in self.state.log_history if any(key.startswith("eval_") for key in entry)]
        metrics = {key: value for key, value in evaluations[-1].items() if key.startswith("eval_")} if evaluations else None
        write_model_card(
            self.args.output_dir, self.accelerator.unwrap_model(self.model), training_data=self.training_data,
            metrics=metrics, repo_id=self.args.hub_model_id,
        )

    def _with_eval_collator(self, build_dataloader, dataset):
        if self.eval_data_collator is None:
            return build_dataloader(dataset)
        train_collator, self.data_collator = self.data_collator, self.eval_data_collator
        try:
            return build_dataloader(dataset)
        finally:
            self.data_collator = train_collator

    def get_eval_dataloader(self, eval_dataset=None):
        return self._with_eval_collator(super().get_eval_dataloader, eval_dataset)

    def get_test_dataloader(self, test_dataset):
        return self._with_eval_collator(super().get_test_dataloader, test_dataset)

    def _length_grouped_sampler(self, dataset, batch_size: int):
        """Our sampler where Trainer would group by length and the dataset is the fast path; else None."""
        if self.args.train_sampling_strategy != "group_by_length" or not hasattr(dataset, "lengths"):
            return None
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return EpochSeededLengthGroupedSampler(batch_size, lengths=[int(n) for n in dataset.lengths], seed=seed)

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        sampler = self._length_grouped_sampler(dataset, self.args.train_batch_size * self.args.gradient_accumulation_steps)
        return sampler if sampler is not None else super()._get_train_sampler(train_dataset)

    def _get_eval_sampler(self, eval_dataset):
        sampler = self._length_grouped_sampler(eval_dataset, self.args.eval_batch_size)
        return sampler if sampler is not None else super()._get_eval_sampler(eval_dataset)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if model.training:
            for name in self.LOSS_PARTS:
                part = outputs.get(name) if isinstance(outputs, dict) else None
                if part is not None:
                    self._loss_part_sums[name] = self._loss_part_sums.get(name, 0.0) + part.detach().float()
            self._loss_part_steps += 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs, *args, **kwargs):
        if "loss" in logs and self._loss_part_steps:
            for name, total in self._loss_part_sums.items():
                logs[name] = round(float(total) / self._loss_part_steps, 4)
            self._loss_part_sums, self._loss_part_steps = {}, 0
        super().log(logs, *args, **kwargs)


def train_evaluate_and_save(trainer: "PolarBertTrainer", hub_tags: list[str]) -> dict:
    """What both scripts do once the Trainer is built, as transformers' run_mlm.py does it: train (resuming if
    asked), save the model, metrics and state, evaluate, write the model card, push if asked."""
    args = trainer.args
    train_result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
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


# ---- evaluation metrics (Trainer's preprocess_logits_for_metrics + compute_metrics) --------------------------


def preprocess_pretraining_logits(outputs, labels):
    """Reduce each eval batch to what the metrics need: per-masked-pulse cross-entropy and hit, and the charge
    prediction. Keeping the (pulses x 5,160) logits for the whole eval set would not fit in memory."""
    logits, charge_prediction = outputs[0], outputs[1]
    dom_labels = labels[0] if isinstance(labels, (tuple, list)) else labels
    masked = dom_labels != -100
    masked_logits = logits if logits.dim() == 2 else logits[masked]  # sparse_prediction gives masked rows only
    targets = dom_labels[masked]
    cross_entropy = torch.nn.functional.cross_entropy(masked_logits.float(), targets, reduction="none")
    hits = (masked_logits.argmax(dim=-1) == targets).float()
    return cross_entropy, hits, charge_prediction


def compute_pretraining_metrics(eval_prediction) -> dict:
    cross_entropy, hits, charge_prediction = eval_prediction.predictions
    labels = eval_prediction.label_ids
    metrics = {
        "masked_dom_cross_entropy": float(np.mean(cross_entropy)),
        "masked_dom_accuracy": float(np.mean(hits)),
    }
    if isinstance(labels, (tuple, list)) and len(labels) > 1:  # label_names = ["labels", "total_charge"]
        metrics["charge_mse"] = float(np.mean((charge_prediction - labels[1]) ** 2))
    return metrics


def compute_direction_metrics(eval_prediction) -> dict:
    predictions = eval_prediction.predictions
    direction = predictions[0] if isinstance(predictions, (tuple, list)) else predictions
    angles = opening_angle(eval_prediction.label_ids, direction)
    return {
        "mean_opening_angle": float(np.mean(angles)),
        "median_opening_angle": float(np.median(angles)),
    }


def metric_name(spec: str) -> str:
    """A label spec as a metric-name part: 'log10:energy' -> 'log10_energy'."""
    return spec.replace(":", "_")


def compute_sequence_metrics(config):
    """Trainer's compute_metrics for `PolarBertForSequenceClassification` under `config`'s problem type:
    regression: per target bias (median residual), resolution (half 16-84 % width) and RMSE, in the target's
    units; classification: accuracy and ROC AUC (multi-label: their means over the labels)."""
    problem_type, names = config.problem_type, [config.id2label[i] for i in range(config.num_labels)]

    def compute(eval_prediction) -> dict:
        predictions = eval_prediction.predictions
        logits = np.asarray(predictions[0] if isinstance(predictions, (tuple, list)) else predictions)
        labels = np.asarray(eval_prediction.label_ids)
        metrics = {}
        if problem_type == "regression":
            labels = labels.reshape(len(logits), -1)
            for index, name in enumerate(names):
                summary = residual_summary(logits[:, index], labels[:, index])
                for key in ("bias", "resolution", "rmse"):
                    metrics[f"{metric_name(name)}_{key}"] = summary[key]
            return metrics
        probabilities = class_probabilities(logits, problem_type)
        if problem_type == "single_label_classification":
            classes = labels.reshape(-1).astype(np.int64)
            metrics["accuracy"] = float(np.mean(probabilities.argmax(axis=-1) == classes))
            metrics["roc_auc"] = class_auc(probabilities, classes)
            return metrics
        truth = labels.astype(bool)
        metrics["accuracy"] = float(np.mean((probabilities > 0.5) == truth))
        metrics["roc_auc"] = float(np.nanmean([class_auc(np.stack([1 - p, p], -1), t.astype(np.int64))
                                               for p, t in zip(probabilities.T, truth.T)]))
        return metrics

    return compute


def freeze_backbone(model) -> None:
    for parameter in model.polarbert.parameters():
        parameter.requires_grad_(False)


# ---- the two runs (the bodies of scripts/pretrain.py and scripts/finetune.py, in run_mlm.py's shape) -----------


def run_pretraining(argv: list[str] | None = None) -> dict:
    """`scripts/pretrain.py`: masked-DOM pretraining from YAML + command-line arguments; returns the eval metrics."""
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



def sequence_task(model_args: ModelArguments, data_args: DataArguments, train_dataset, eval_dataset) -> dict:
    """The config fields of a regression/classification task, after checking both datasets' label columns."""
    specs = parse_label_columns(data_args.label_columns)
    problem_type = problem_type_of(model_args.task, specs)
    train_table = check_label_columns(train_dataset, specs, problem_type, data_args.train_dataset)
    check_label_columns(eval_dataset, specs, problem_type, data_args.eval_dataset or data_args.train_dataset)
    return sequence_task_config(model_args.task, specs, train_table)


def run_finetuning(argv: list[str] | None = None) -> dict:
    """`scripts/finetune.py`: fine-tuning from YAML + command-line arguments; returns the eval metrics.
    `--task direction` (the default) trains `PolarBertForDirection`; `--task regression` / `classification` train
    `PolarBertForSequenceClassification` on the dataset columns of `--label_columns` (see tasks.py), checked in
    both datasets before training."""
    model_args, data_args, training_args = parse_arguments((ModelArguments, DataArguments, TrainingArguments), argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=training_args.get_process_log_level())
    if model_args.task not in TASKS:
        raise ValueError(f"--task must be one of {TASKS}, got {model_args.task!r}")
    direction = model_args.task == "direction"
    if direction and data_args.label_columns:
        raise ValueError("--label_columns is for --task regression or classification; direction reads azimuth/zenith")
    if not direction and not data_args.label_columns:
        raise ValueError(f"--task {model_args.task} needs --label_columns, e.g. log10:energy or is_track")
    set_seed(training_args.seed)
    training_args.remove_unused_columns = False
    train_dataset, eval_dataset = split_train_eval(data_args, require_labels=direction)

    if model_args.model_name_or_path:
        check_is_polarbert_folder(model_args.model_name_or_path)
    if direction:
        config, model_class, collator_class = build_config(model_args), PolarBertForDirection, PolarBertDirectionCollator
        extra_columns, compute_metrics, hub_tags = (), compute_direction_metrics, ["direction-reconstruction"]
    else:
        task = sequence_task(model_args, data_args, train_dataset, eval_dataset)
        config = build_config(model_args, **task)
        model_class, collator_class = PolarBertForSequenceClassification, PolarBertSequenceClassificationCollator
        extra_columns, compute_metrics = source_columns(task["label_columns"]), compute_sequence_metrics(config)
        hub_tags = ["regression" if task["problem_type"] == "regression" else "classification"]
        logger.info("task %s on %s: %s", task["problem_type"], task["label_columns"], task["id2label"])
    if model_args.model_name_or_path and not model_args.from_scratch:
        model = model_class.from_pretrained(model_args.model_name_or_path, config=config)
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
        train_dataset=as_training_dataset(train_dataset, extra_columns),
        eval_dataset=as_training_dataset(eval_dataset, extra_columns),
        data_collator=collator_class(config, seed=training_args.seed),
        eval_data_collator=collator_class(config, deterministic=True),
        callbacks=[StopOnNonFiniteLoss()],
        training_data=describe_training_data(data_args, train_dataset),
        compute_metrics=compute_metrics,
    )
    return train_evaluate_and_save(trainer, hub_tags=hub_tags)
