"""The registry of heads: each kind of head PolarBERT trains declares here, once, everything the package does with
it: its model class, its collator, the Transformers Auto classes it registers with, its training metrics, how a
fine-tuned folder of it is loaded, predicted with and evaluated. Training (`--task`), `polarbert evaluate` (the
CLI's `evaluate` through evaluation.py) and the Auto registrations of `__init__.py` read this table; prediction's
loaders and predict functions are named in it (prediction.py comes before it in the data flow, so it reads nothing
of it). Which head a folder holds is decided here alone (`head_of_folder`, from the config's `architectures`). The
shape is Transformers' `SUPPORTED_TASKS` (pipelines/__init__.py): one entry per task, everything else reads the
table.

The backbone, `PolarBertModel` (`AutoModel`), is no head: every head holds one. Adding a head is its class in
modeling_polarbert.py, its collator in collators.py, its predict and evaluate functions, and one entry in `HEADS`;
docs/architecture.md ("Adding a head") lists the steps.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from transformers import AutoModelForMaskedLM, AutoModelForPreTraining, AutoModelForSequenceClassification

from .collators import (
    PolarBertDirectionCollator,
    PolarBertPretrainingCollator,
    PolarBertSequenceClassificationCollator,
)
from .direction_evaluation import evaluate_direction_model
from .labels import SEQUENCE_TASKS, source_columns
from .loading import check_is_polarbert_folder
from .modeling_polarbert import PolarBertForDirection, PolarBertForMaskedDOM, PolarBertForSequenceClassification
from .prediction import load_direction_model, load_sequence_model, predict_directions, predict_sequence_logits
from .sequence_evaluation import evaluate_sequence_model
from .task_metrics import (
    compute_direction_metrics,
    compute_pretraining_metrics,
    compute_sequence_metrics,
    preprocess_pretraining_logits,
)


@dataclass(frozen=True)
class Head:
    """One kind of head and what the package does with it.

    Attributes:
        name: what messages call it.
        model_class: its `PolarBertPreTrainedModel` subclass; a saved folder holds this head when its config's
            `architectures` names this class.
        collator_class: dataset rows -> its training and evaluation batches (`config` first, then the shared
            collator arguments).
        tasks: the `--task` values of `scripts/finetune.py` that train it; none for the pretraining head.
        labels: where its labels come from, for messages ("azimuth/zenith", "--label_columns").
        reads_label_columns: its labels come from the dataset columns that `--label_columns` names (checked before
            training and written into the config); otherwise from fixed columns that the datasets must hold.
        auto_classes: the Transformers Auto classes that load it (the first is the one its code is saved for).
        metrics: config -> Trainer's `compute_metrics`.
        hub_tags: config -> the tags of its model card.
        extra_columns: config -> the per-event dataset columns its labels come from, for the fast path.
        preprocess_logits: Trainer's `preprocess_logits_for_metrics`, where the head needs one.
        load: (folder, device) -> the fine-tuned model in eval mode, refusing one whose head was never trained.
        predict: (model, dataset, batch_size, all_pulses, progress) -> its outputs for every event, in dataset order.
        evaluate: `polarbert evaluate` of a folder holding this head (the arguments of `evaluation.evaluate_model`).
    """

    name: str
    model_class: type
    collator_class: type
    tasks: tuple[str, ...]
    labels: str
    reads_label_columns: bool
    auto_classes: tuple[type, ...]
    metrics: Callable
    hub_tags: Callable
    extra_columns: Callable = lambda config: ()
    preprocess_logits: Callable | None = None
    load: Callable | None = None
    predict: Callable | None = None
    evaluate: Callable | None = None


MASKED_DOM = Head(
    name="masked-DOM pretraining", model_class=PolarBertForMaskedDOM, collator_class=PolarBertPretrainingCollator,
    tasks=(), labels="the masked DOM ids and the total charge", reads_label_columns=False,
    auto_classes=(AutoModelForMaskedLM, AutoModelForPreTraining),
    metrics=lambda config: compute_pretraining_metrics, hub_tags=lambda config: ["masked-dom-prediction"],
    preprocess_logits=preprocess_pretraining_logits,
)
DIRECTION = Head(
    name="direction", model_class=PolarBertForDirection, collator_class=PolarBertDirectionCollator,
    tasks=("direction",), labels="azimuth/zenith", reads_label_columns=False,
    # No Auto class: Transformers has none for a unit-vector regression, and one model type maps to one class per
    # Auto class (the sequence head holds AutoModelForSequenceClassification; see modeling_polarbert.py).
    auto_classes=(),
    metrics=lambda config: compute_direction_metrics, hub_tags=lambda config: ["direction-reconstruction"],
    load=load_direction_model, predict=predict_directions, evaluate=evaluate_direction_model,
)
SEQUENCE = Head(
    name="regression/classification", model_class=PolarBertForSequenceClassification,
    collator_class=PolarBertSequenceClassificationCollator, tasks=SEQUENCE_TASKS, labels="--label_columns",
    reads_label_columns=True,
    auto_classes=(AutoModelForSequenceClassification,),
    metrics=compute_sequence_metrics,
    hub_tags=lambda config: ["regression" if config.problem_type == "regression" else "classification"],
    extra_columns=lambda config: source_columns(config.label_columns),
    load=load_sequence_model, predict=predict_sequence_logits, evaluate=evaluate_sequence_model,
)

HEADS = (MASKED_DOM, DIRECTION, SEQUENCE)
TASKS = tuple(task for head in HEADS for task in head.tasks)  # ("direction", "regression", "classification")


def head_for_task(task: str) -> Head:
    """The head a fine-tuning `--task` trains."""
    for head in HEADS:
        if task in head.tasks:
            return head
    raise ValueError(f"--task must be one of {TASKS}, got {task!r}")


def label_column_tasks() -> Sequence[str]:
    """The tasks whose labels come from `--label_columns`."""
    return [task for head in HEADS if head.reads_label_columns for task in head.tasks]


def head_of_folder(path: str) -> Head | None:
    """The head a saved PolarBERT folder (or Hub id) holds, from its config's `architectures`; None for a backbone
    or a folder without architectures."""
    architectures = check_is_polarbert_folder(path).get("architectures") or []
    return next((head for head in HEADS if head.model_class.__name__ in architectures), None)


def evaluated_head(path: str) -> Head:
    """The head `polarbert evaluate` evaluates a folder as: the fine-tuned head it holds, else direction (the default
    task), whose loader then explains that the folder's direction head was never trained and how to train one."""
    head = head_of_folder(path)
    return head if head is not None and head.evaluate is not None else DIRECTION


__all__ = ["Head", "HEADS", "MASKED_DOM", "DIRECTION", "SEQUENCE", "TASKS", "head_for_task",
           "label_column_tasks", "head_of_folder", "evaluated_head"]
