"""The labels of the event-level tasks (regression and classification, besides direction): which dataset columns
they come from, the checks they pass before training, and the labels a collator gives
`PolarBertForSequenceClassification`. Which head a task trains is tasks.py's registry.

`scripts/finetune.py --label_columns` takes comma-separated column specs; a `log10:` prefix takes the log10 of the
column (a positive quantity spanning decades, such as the energy in GeV):

    --task regression --label_columns log10:energy                  one target: log10(energy / GeV)
    --task regression --label_columns vertex_x,vertex_y,vertex_z    three targets at once (metres)
    --task classification --label_columns is_track                  the classes are the column's values
    --task classification --label_columns is_track,is_contained     several boolean columns: multi-label

A task is written into the model's config, where evaluation and prediction read it back: `problem_type`,
`label_columns`, `id2label` / `label2id` (regression: the target specs; single-label classification: the class
names, i.e. the column's values as strings, in their natural order, so `False, True` for a boolean column;
multi-label: the column names) and, for regression, `target_mean` / `target_std` of the training targets, which
the model uses to standardise its targets (see `PolarBertForSequenceClassification`).
"""

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .kaggle_layout import PULSE_COLUMNS

SEQUENCE_TASKS = ("regression", "classification")  # the `--task` values of PolarBertForSequenceClassification
LOG10_PREFIX = "log10:"


def parse_label_columns(text: str | Sequence[str] | None) -> list[str]:
    """'log10:energy, is_track' or a list of specs -> ['log10:energy', 'is_track'], each checked for form."""
    specs = [part.strip() for part in text.split(",")] if isinstance(text, str) else list(text or [])
    if not specs or not all(specs):
        raise ValueError(f"label_columns: expected comma-separated column names, got {text!r}")
    for spec in specs:
        prefix, _, column = spec.rpartition(":")
        if prefix and (f"{prefix}:" != LOG10_PREFIX or not column):
            raise ValueError(f"label_columns: {spec!r}: the only prefix is {LOG10_PREFIX!r}, e.g. 'log10:energy'")
    if len(set(specs)) != len(specs):
        raise ValueError(f"label_columns: {specs} names a column twice")
    return specs


def source_column(spec: str) -> str:
    """The dataset column a spec reads: 'log10:energy' -> 'energy'."""
    return spec[len(LOG10_PREFIX):] if spec.startswith(LOG10_PREFIX) else spec


def source_columns(specs: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(source_column(spec) for spec in specs))


def problem_type_of(task: str, specs: Sequence[str]) -> str:
    """The Transformers `problem_type` of a task: classification of several columns is multi-label."""
    if task == "regression":
        return "regression"
    if task == "classification":
        return "single_label_classification" if len(specs) == 1 else "multi_label_classification"
    raise ValueError(f"task must be one of {SEQUENCE_TASKS} for a sequence-level head, got {task!r}")


# ----------------------------------------------------------------------------------------------------------------
# Checks on a whole dataset (columnar, before training)
# ----------------------------------------------------------------------------------------------------------------


def label_table(dataset, specs: Sequence[str], name: str) -> pa.Table:
    """event_id and the label columns of a prepared `datasets.Dataset`, in dataset order (its selection applied),
    or a ValueError naming the missing column."""
    missing = [column for column in source_columns(specs) if column not in dataset.column_names]
    if missing:
        raise ValueError(
            f"{name}: no column {missing[0]!r} for the labels (label_columns {list(specs)}); its per-event columns "
            f"are {[c for c in dataset.column_names if c not in PULSE_COLUMNS]}"
        )
    # select_columns is free; slicing the arrow-formatted dataset gathers just these columns through its selection.
    return dataset.select_columns(["event_id", *source_columns(specs)]).with_format("arrow")[:]


def _first_event(table: pa.Table, bad: pa.ChunkedArray | pa.Array) -> int:
    index = pc.index(pc.fill_null(bad, False), True).as_py()
    return int(table.column("event_id")[index].as_py())


def check_label_columns(dataset, specs: Sequence[str], problem_type: str, name: str) -> pa.Table:
    """Raise a ValueError naming the column and the first bad event (event_id) for a label that is missing,
    non-finite, non-positive under `log10:`, or of a type the task cannot use; return the label table."""
    table = label_table(dataset, specs, name)
    for spec in specs:
        column_name = source_column(spec)
        column = table.column(column_name)
        kind = column.type
        if column.null_count:
            raise ValueError(f"{name}: column {column_name!r} has no value for event_id {_first_event(table, pc.is_null(column))}")
        if problem_type == "regression":
            if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
                raise ValueError(f"{name}: column {column_name!r} is {kind}: regression needs numbers")
            if pa.types.is_floating(kind):
                finite = pc.is_finite(column)
                if not pc.all(finite).as_py():
                    event = _first_event(table, pc.invert(finite))
                    value = column[pc.index(finite, False).as_py()].as_py()
                    raise ValueError(f"{name}: column {column_name!r} holds a non-finite value ({value}) at event_id {event}")
            if spec.startswith(LOG10_PREFIX):
                positive = pc.greater(column, 0)
                if not pc.all(positive).as_py():
                    event = _first_event(table, pc.invert(positive))
                    value = column[pc.index(positive, False).as_py()].as_py()
                    raise ValueError(
                        f"{name}: column {column_name!r} must be positive for {spec!r}; event_id {event} has {value}"
                    )
            continue
        if spec.startswith(LOG10_PREFIX):
            raise ValueError(f"label_columns: {spec!r}: a log10 prefix makes no sense for classification")
        if problem_type == "multi_label_classification":
            if not pa.types.is_boolean(kind):
                raise ValueError(
                    f"{name}: column {column_name!r} is {kind}: multi-label classification (several label columns) "
                    "needs one boolean column per label"
                )
        elif not (pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_string(kind)
                  or pa.types.is_large_string(kind)):
            raise ValueError(
                f"{name}: column {column_name!r} is {kind}: classification labels must be bool, int or string "
                "(use --task regression for a continuous quantity)"
            )
    return table


# ----------------------------------------------------------------------------------------------------------------
# What a task writes into the config, from the training events
# ----------------------------------------------------------------------------------------------------------------


def regression_targets(columns: Mapping[str, np.ndarray], specs: Sequence[str]) -> np.ndarray:
    """(N, num_targets) float64 targets from per-event column arrays, `log10:` applied."""
    targets = [np.asarray(columns[source_column(spec)], dtype=np.float64) for spec in specs]
    targets = [np.log10(values) if spec.startswith(LOG10_PREFIX) else values for spec, values in zip(specs, targets)]
    return np.stack(targets, axis=-1)


def table_column_numpy(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False)


def class_names(values: pa.ChunkedArray | np.ndarray) -> list[str]:
    """The classes of a label column: its distinct values in their natural order (False < True, 2 < 10), as
    strings (the keys of `label2id`)."""
    distinct = pc.unique(values).to_pylist() if isinstance(values, (pa.Array, pa.ChunkedArray)) else np.unique(values).tolist()
    return [str(value) for value in sorted(distinct)]


def sequence_task_config(task: str, specs: Sequence[str], train_table: pa.Table) -> dict:
    """The config fields of a task (see the module docstring), from the training events' label table."""
    problem_type = problem_type_of(task, specs)
    fields = {"problem_type": problem_type, "label_columns": list(specs), "target_mean": None, "target_std": None}
    if problem_type == "regression":
        names = list(specs)
        targets = regression_targets({c: table_column_numpy(train_table, c) for c in source_columns(specs)}, specs)
        std = targets.std(axis=0)
        if (std == 0).any():
            raise ValueError(f"regression target {names[int(np.flatnonzero(std == 0)[0])]!r} has one value only")
        fields.update(target_mean=targets.mean(axis=0).tolist(), target_std=std.tolist())
    elif problem_type == "single_label_classification":
        names = class_names(train_table.column(source_column(specs[0])))
        if len(names) < 2:
            raise ValueError(f"column {specs[0]!r} holds one class only ({names}): nothing to classify")
    else:
        names = list(specs)
    fields["id2label"] = dict(enumerate(names))
    fields["label2id"] = {label: index for index, label in enumerate(names)}
    return fields


# ----------------------------------------------------------------------------------------------------------------
# The labels of a batch (what the collator and evaluation give the model)
# ----------------------------------------------------------------------------------------------------------------


def encode_labels(columns: Mapping[str, np.ndarray], config, event_ids: np.ndarray | None = None) -> np.ndarray:
    """Per-event column arrays -> the labels of `PolarBertForSequenceClassification` under `config`:
    regression float32 (B, num_labels) targets (physical units, `log10:` applied); single-label int64 (B,) class
    indices; multi-label float32 (B, num_labels) of 0/1. A value the config has no class for raises a ValueError
    naming the event."""
    specs = config.label_columns
    if config.problem_type == "regression":
        return regression_targets(columns, specs).astype(np.float32)
    if config.problem_type == "multi_label_classification":
        return np.stack([np.asarray(columns[spec], dtype=bool) for spec in specs], axis=-1).astype(np.float32)
    values = np.asarray(columns[specs[0]])
    # One dictionary look-up per distinct value, not per event.
    distinct, inverse = np.unique(values.astype(str), return_inverse=True)
    unknown = [str(value) for value in distinct if value not in config.label2id]
    if unknown:
        where = int(np.flatnonzero(values.astype(str) == unknown[0])[0])
        event = f"event_id {int(event_ids[where])}" if event_ids is not None else f"row {where}"
        raise ValueError(
            f"column {specs[0]!r}: {event} has class {unknown[0]!r}, which the model does not know "
            f"(its classes: {list(config.label2id)})"
        )
    return np.array([config.label2id[value] for value in distinct], dtype=np.int64)[inverse.reshape(-1)]


__all__ = [
    "SEQUENCE_TASKS",
    "parse_label_columns",
    "source_column",
    "source_columns",
    "problem_type_of",
    "check_label_columns",
    "sequence_task_config",
    "regression_targets",
    "class_names",
    "encode_labels",
]
