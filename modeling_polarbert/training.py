"""Pretraining and fine-tuning with `Trainer`: `run_pretraining(argv)` and `run_finetuning(argv)` (what
`scripts/pretrain.py` and `scripts/finetune.py` run, in the shape of transformers' run_mlm.py), and what they share:
argument parsing from YAML + command line, the model config, a `Trainer` that samples batches by length from our
Arrow fast path, logs the loss parts and can train to a wall-clock budget, and the evaluation metrics. Training
itself is `transformers.Trainer`'s; nothing here loops over steps.
"""

import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from transformers import HfArgumentParser, Trainer, TrainerCallback, TrainingArguments, get_scheduler, set_seed
from transformers.trainer_pt_utils import LengthGroupedSampler

from .collators import (
    PolarBertDirectionCollator,
    PolarBertPretrainingCollator,
    PolarBertSequenceClassificationCollator,
    as_training_dataset,
)
from .configuration_polarbert import PolarBertConfig
from .feature_extraction_polarbert import PolarBertFeatureExtractor
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
    pack_length: int | None = field(
        default=None,
        metadata={"help": "Pack the training events into rows of this many tokens, with no padding between events "
                  "(the padding-free path; attn_implementation eager, sdpa or flex_attention). None: one padded "
                  "row per event. Evaluation batches stay padded."},
    )
    label_columns: str | None = field(
        default=None,
        metadata={"help": "Regression/classification labels: comma-separated dataset columns, 'log10:' to take a "
                  "column's log10, e.g. 'log10:energy', 'vertex_x,vertex_y,vertex_z', 'is_track'."},
    )


@dataclass
class PolarBertTrainingArguments(TrainingArguments):
    """`TrainingArguments` plus a wall-clock budget for the training loop (see `StopAtTimeLimit`)."""

    max_train_seconds: float | None = field(
        default=None,
        metadata={"help": "Stop training after this many seconds of the training loop (evaluation and saving after it "
                  "are extra) and save; the learning-rate schedule is fitted to the steps that fit. Set "
                  "num_train_epochs high enough that time, not epochs, is the limit."},
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


# Where a launcher tells a process how many there are: torchrun (WORLD_SIZE, LOCAL_RANK) or MPI.
_WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "LOCAL_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def check_launch(environ=None) -> None:
    """Refuse `accelerate launch --cpu --num_processes N` (N > 1) without MPI: accelerate then starts ONE process
    (its multi-CPU mode spawns through `mpirun`, `--mpirun_hostfile`) and only exports MASTER_ADDR for peers that
    never come, so the run would silently train on one process."""
    environ = os.environ if environ is None else environ
    accelerate_cpu = environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    if accelerate_cpu and "MASTER_ADDR" in environ and not any(name in environ for name in _WORLD_SIZE_VARIABLES):
        raise ValueError(
            "`accelerate launch --cpu` with several processes starts only one here (accelerate spawns CPU processes "
            "through mpirun, --mpirun_hostfile). For N processes on CPU use `accelerate launch --multi_gpu "
            "--num_processes N ...` or `torchrun --nproc_per_node N ...`, with `--use_cpu true --ddp_backend gloo`; "
            "for one process, `python scripts/...`"
        )


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


class StopAtTimeLimit(TrainerCallback):
    """Stops training once `max_seconds` have passed since the training loop began, and saves a checkpoint there
    (unless `save_strategy` is "no"; the scripts save the final model in any case).

    So that the learning-rate schedule still ends where it should (a cosine decays to zero) instead of being cut
    off half way, the callback measures the time per optimizer step after the first `skip_steps` (start-up:
    DataLoader workers, kernel warm-up) over `calibration_steps` steps, and shortens the run to the steps that
    fit in the remaining time: `state.max_steps` becomes that number and the `LambdaLR` schedule that `Trainer`
    built is re-made for it (transformers' `get_scheduler`, same type, warm-up and options). At the end of every
    epoch the estimate is refined with the rate measured since calibration began, which counts per-epoch costs
    (sampler, evaluation) too. The run is only ever shortened, never lengthened past its epochs or `max_steps`.
    `clock` is injectable for tests."""

    def __init__(self, max_seconds: float, skip_steps: int = 5, calibration_steps: int = 20, clock=time.monotonic):
        if not max_seconds > 0:
            raise ValueError(f"max_train_seconds must be positive, got {max_seconds}")
        self.max_seconds, self.skip_steps, self.calibration_steps, self.clock = (
            max_seconds, skip_steps, calibration_steps, clock
        )

    def on_train_begin(self, args, state, control, **kwargs):
        self.start, self.first_step = self.clock(), state.global_step
        self.reference, self.fitted_steps = None, None

    def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
        now = self.clock()
        if self.reference is None:
            if state.global_step - self.first_step >= self.skip_steps:
                self.reference = (now, state.global_step)
        elif self.fitted_steps is None and state.global_step - self.reference[1] >= self.calibration_steps:
            self._fit(args, state, now, lr_scheduler)
        out_of_time = now - self.start >= self.max_seconds
        if out_of_time or (self.fitted_steps is not None and state.global_step >= self.fitted_steps):
            control.should_training_stop = True
            control.should_save = args.save_strategy != "no"
            if out_of_time:
                logger.info("time limit of %.0f s reached at step %d (epoch %.2f)", self.max_seconds,
                            state.global_step, state.epoch or 0.0)

    def on_epoch_end(self, args, state, control, lr_scheduler=None, **kwargs):
        if self.fitted_steps is not None and not control.should_training_stop:
            self._fit(args, state, self.clock(), lr_scheduler)

    def _fit(self, args, state, now: float, lr_scheduler) -> None:
        reference_time, reference_step = self.reference
        if state.global_step <= reference_step:
            return
        seconds_per_step = (now - reference_time) / (state.global_step - reference_step)
        remaining = self.max_seconds - (now - self.start)
        fitted = state.global_step + max(int(remaining / max(seconds_per_step, 1e-9)), 0)
        fitted = max(min(fitted, state.max_steps), state.global_step + 1)
        if fitted != self.fitted_steps:
            self.fitted_steps = state.max_steps = fitted
            refit_schedule(lr_scheduler, args, fitted)
            logger.info("%.3f s per step: training for %d steps to fit %.0f s", seconds_per_step, fitted,
                        self.max_seconds)


def refit_schedule(lr_scheduler, args: TrainingArguments, num_training_steps: int) -> bool:
    """Make Trainer's learning-rate schedule (a `LambdaLR`, as transformers' schedules are) the one `get_scheduler`
    gives for `num_training_steps`, keeping its current step; returns False (and changes nothing) for a schedule of
    another kind. The new schedule is built on a throwaway optimizer so that the real one's state is untouched."""
    scheduler = getattr(lr_scheduler, "scheduler", lr_scheduler)  # Accelerate may wrap it
    if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
        return False
    throwaway = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    fresh = get_scheduler(
        args.lr_scheduler_type, throwaway, num_warmup_steps=args.get_warmup_steps(num_training_steps),
        num_training_steps=num_training_steps, scheduler_specific_kwargs=args.lr_scheduler_kwargs,
    )
    if not isinstance(fresh, torch.optim.lr_scheduler.LambdaLR):
        return False
    scheduler.lr_lambdas = [fresh.lr_lambdas[0]] * len(scheduler.optimizer.param_groups)
    step = scheduler.last_epoch
    learning_rates = [base * factor(step) for base, factor in zip(scheduler.base_lrs, scheduler.lr_lambdas)]
    for group, learning_rate in zip(scheduler.optimizer.param_groups, learning_rates):
        group["lr"] = learning_rate
    scheduler._last_lr = learning_rates  # what get_last_lr() (Trainer's logged lr) reads
    return True


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """Trainer's length-grouped sampler, with its order a function of (seed, epoch) alone. Trainer calls
    `set_epoch` at every epoch, also when it resumes from a checkpoint, so a resumed run sees the batches of an
    uninterrupted one.

    The order is exactly that of transformers' `get_length_grouped_indices` (random permutation, mega-batches of
    up to 50 batches sorted by length, the longest batch first), computed with numpy: the Python sort there takes
    seconds per epoch for millions of events, time in which the GPU waits."""

    def __init__(self, batch_size: int, lengths, seed: int):
        super().__init__(batch_size, lengths=np.asarray(lengths, dtype=np.int64))
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator = torch.Generator().manual_seed(self.seed + epoch)

    def __iter__(self):
        lengths = self.lengths
        multiple = min(len(lengths) // (self.batch_size * 4), 50) or 1
        size = multiple * self.batch_size
        indices = torch.randperm(len(lengths), generator=self.generator).numpy()
        # A stable sort on the negated lengths orders ties as Python's sorted(..., reverse=True) does.
        megabatches = [part[np.argsort(-lengths[part], kind="stable")] for part in
                       (indices[start:start + size] for start in range(0, len(lengths), size))]
        longest = int(np.argmax([lengths[part[0]] for part in megabatches]))
        megabatches[0][0], megabatches[longest][0] = megabatches[longest][0], megabatches[0][0]
        return iter(np.concatenate(megabatches).tolist())


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
        if getattr(self.args, "max_train_seconds", None) is not None:
            self.add_callback(StopAtTimeLimit(self.args.max_train_seconds))
        self.eval_data_collator = eval_data_collator
        self.training_data = training_data
        self._loss_part_sums = {}
        self._loss_part_steps = 0

    def _save(self, output_dir=None, state_dict=None):
        """Save as Trainer does, but the training arguments as JSON instead of a pickle (training_args.bin)."""
        super()._save(output_dir, state_dict)
        if not self.args.should_save:  # Trainer calls _save on every process; one writes
            return
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
        return EpochSeededLengthGroupedSampler(batch_size, lengths=dataset.lengths, seed=seed)

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


# ---- evaluation metrics (Trainer's preprocess_logits_for_metrics + compute_metrics) --------------------------


def preprocess_pretraining_logits(outputs, labels):
    """Reduce each eval batch to what the metrics need, per event: the summed cross-entropy and hits of its
    masked pulses, their number, and the charge prediction. Keeping the (pulses x 5,160) logits for the whole eval
    set would not fit in memory. Per event, because Trainer gathers these across processes along the first
    dimension: every rank's tensors must have the batch's shape (a per-pulse tensor differs in length between
    ranks), and the events that even batching repeats at the end of an epoch are dropped by that dimension."""
    logits, charge_prediction = outputs[0], outputs[1]
    dom_labels = labels[0] if isinstance(labels, (tuple, list)) else labels
    masked = dom_labels != -100  # (batch, seq_len)
    masked_logits = logits if logits.dim() == 2 else logits[masked]  # sparse_prediction gives masked rows only
    targets = dom_labels[masked]
    event_of_pulse = masked.nonzero()[:, 0]  # row-major, the order of the masked rows
    cross_entropy = torch.nn.functional.cross_entropy(masked_logits.float(), targets, reduction="none")
    hits = (masked_logits.argmax(dim=-1) == targets).float()
    per_event = torch.zeros(dom_labels.shape[0], device=cross_entropy.device)
    return (per_event.index_add(0, event_of_pulse, cross_entropy), per_event.index_add(0, event_of_pulse, hits),
            masked.sum(dim=1).float(), charge_prediction)


def compute_pretraining_metrics(eval_prediction) -> dict:
    cross_entropy, hits, n_masked, charge_prediction = eval_prediction.predictions
    labels = eval_prediction.label_ids
    total = float(np.sum(n_masked)) or float("nan")  # no masked pulse at all (every pulse auxiliary): undefined
    metrics = {
        "masked_dom_cross_entropy": float(np.sum(cross_entropy)) / total,
        "masked_dom_accuracy": float(np.sum(hits)) / total,
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

ARGUMENT_TYPES = (ModelArguments, DataArguments, PolarBertTrainingArguments)


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
    config = build_config(model_args, sparse_prediction=True)
    if model_args.model_name_or_path:
        model = _load_pretrained(PolarBertForMaskedDOM, model_args, config)
    else:
        model = PolarBertForMaskedDOM(config)
    model.set_attn_implementation(model_args.attn_implementation)
    logger.info("PolarBertForMaskedDOM with %s parameters", f"{model.num_parameters():,}")

    trainer = PolarBertTrainer(
        model=model,
        args=training_args,
        # Saved beside every checkpoint (preprocessor_config.json + its code): events -> inputs from the Hub alone.
        processing_class=PolarBertFeatureExtractor.from_config(config),
        train_dataset=as_training_dataset(train_dataset),
        eval_dataset=as_training_dataset(eval_dataset),
        # A fresh draw of down-sampling and masking every epoch; evaluation draws the same pulses every time.
        data_collator=PolarBertPretrainingCollator(config, seed=training_args.seed, pack_length=data_args.pack_length),
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
    check_launch()
    model_args, data_args, training_args = parse_arguments(ARGUMENT_TYPES, argv)
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
        processing_class=PolarBertFeatureExtractor.from_config(config),
        train_dataset=as_training_dataset(train_dataset, extra_columns),
        eval_dataset=as_training_dataset(eval_dataset, extra_columns),
        data_collator=collator_class(config, seed=training_args.seed, pack_length=data_args.pack_length),
        eval_data_collator=collator_class(config, deterministic=True),
        callbacks=[StopOnNonFiniteLoss()],
        training_data=describe_training_data(data_args, train_dataset),
        compute_metrics=compute_metrics,
    )
    return train_evaluate_and_save(trainer, hub_tags=hub_tags)
