"""Fine-tuning tasks: label column specs, the checks that run before training (with the messages a user sees), what a
task writes into the config, and the labels encoded from the columns."""

import math
from types import SimpleNamespace

import datasets
import numpy as np
import pytest

from modeling_polarbert.labels import (
    check_label_columns,
    class_names,
    encode_labels,
    parse_label_columns,
    problem_type_of,
    sequence_task_config,
    source_columns,
)


def label_dataset(**columns) -> datasets.Dataset:
    """Events 101, 102, ... with the given per-event columns (defaults: a positive energy, a boolean flag, a kind)."""
    n = len(next(iter(columns.values()))) if columns else 5
    base = {
        "event_id": list(range(101, 101 + n)),
        "energy": [10.0, 100.0, 1000.0, 50.0, 5.0][:n],
        "is_track": [True, False, False, True, False][:n],
        "kind": ["nue", "numu", "nutau", "numu", "nue"][:n],
        "flavour": [12, 14, 16, 14, 12][:n],
        "vertex_z": [-300.0, 0.0, 120.0, 400.0, -50.0][:n],
    }
    return datasets.Dataset.from_dict({**base, **columns})


def test_label_specs_parse_and_name_their_source_columns():
    assert parse_label_columns("log10:energy") == ["log10:energy"]
    assert parse_label_columns(" vertex_x, vertex_y ,vertex_z") == ["vertex_x", "vertex_y", "vertex_z"]
    assert source_columns(["log10:energy", "energy", "is_track"]) == ["energy", "is_track"]
    for bad, message in [("", "expected comma-separated"), ("a,,b", "expected comma-separated"),
                         ("ln:energy", "only prefix is 'log10:'"), ("log10:", "only prefix"), ("a,a", "twice")]:
        with pytest.raises(ValueError, match=message):
            parse_label_columns(bad)
    assert problem_type_of("classification", ["is_track"]) == "single_label_classification"
    assert problem_type_of("classification", ["is_track", "other"]) == "multi_label_classification"
    with pytest.raises(ValueError, match="task must be one of"):
        problem_type_of("direction", ["x"])


@pytest.mark.parametrize(
    "columns, specs, problem_type, message",
    [
        ({}, ["log10:enrgy"], "regression", r"train: no column 'enrgy' for the labels .* per-event columns are .*'energy'"),
        ({"energy": [10.0, math.nan, 3.0, 1.0, 2.0]}, ["log10:energy"], "regression",
         r"column 'energy' holds a non-finite value \(nan\) at event_id 102"),
        ({"vertex_z": [0.0, 1.0, math.inf, 1.0, 2.0]}, ["vertex_z"], "regression",
         r"column 'vertex_z' holds a non-finite value \(inf\) at event_id 103"),
        ({"energy": [10.0, 3.0, 0.0, -1.0, 2.0]}, ["log10:energy"], "regression",
         r"column 'energy' must be positive for 'log10:energy'; event_id 103 has 0.0"),
        ({"energy": [10.0, None, 3.0, 1.0, 2.0]}, ["energy"], "regression", r"column 'energy' has no value for event_id 102"),
        ({}, ["kind"], "regression", r"column 'kind' is string: regression needs numbers"),
        ({}, ["energy"], "single_label_classification", r"column 'energy' is double: classification labels must be bool"),
        ({}, ["is_track", "flavour"], "multi_label_classification", r"column 'flavour' is int64: multi-label"),
        ({}, ["log10:flavour"], "single_label_classification", "log10 prefix makes no sense for classification"),
    ],
)
def test_label_checks_name_the_column_and_the_first_bad_event(columns, specs, problem_type, message):
    with pytest.raises(ValueError, match=message):
        check_label_columns(label_dataset(**columns), specs, problem_type, "train")


def test_label_checks_follow_the_dataset_selection():
    dataset = label_dataset(energy=[-1.0, 10.0, 20.0, 30.0, 40.0])
    check_label_columns(dataset.select([1, 2, 3]), ["log10:energy"], "regression", "train")  # event 101 left out
    with pytest.raises(ValueError, match="event_id 101"):
        check_label_columns(dataset.select([4, 0]), ["log10:energy"], "regression", "train")


def test_regression_task_stores_target_statistics_of_the_training_events():
    dataset = label_dataset()
    table = check_label_columns(dataset, ["log10:energy", "vertex_z"], "regression", "train")
    fields = sequence_task_config("regression", ["log10:energy", "vertex_z"], table)
    log_energy = np.log10(dataset["energy"])
    assert fields["problem_type"] == "regression"
    assert fields["id2label"] == {0: "log10:energy", 1: "vertex_z"} and fields["label2id"]["vertex_z"] == 1
    np.testing.assert_allclose(fields["target_mean"], [log_energy.mean(), np.mean(dataset["vertex_z"])])
    np.testing.assert_allclose(fields["target_std"], [log_energy.std(), np.std(dataset["vertex_z"])])
    with pytest.raises(ValueError, match="one value only"):
        sequence_task_config("regression", ["energy"], check_label_columns(
            label_dataset(energy=[2.0] * 5), ["energy"], "regression", "train"))


def test_classes_are_the_column_values_in_natural_order():
    assert class_names(np.array([True, False, True])) == ["False", "True"]
    table = check_label_columns(label_dataset(), ["flavour"], "single_label_classification", "train")
    assert sequence_task_config("classification", ["flavour"], table)["id2label"] == {0: "12", 1: "14", 2: "16"}
    table = label_dataset(flavour=[2, 10, 2, 10, 2]).with_format("arrow")[:]
    assert class_names(table.column("flavour")) == ["2", "10"]  # numbers, not strings, are sorted
    table = check_label_columns(label_dataset(), ["kind"], "single_label_classification", "train")
    fields = sequence_task_config("classification", ["kind"], table)
    assert fields["id2label"] == {0: "nue", 1: "numu", 2: "nutau"} and fields["label2id"]["nutau"] == 2
    with pytest.raises(ValueError, match="one class only"):
        sequence_task_config("classification", ["is_track"], label_dataset(is_track=[True] * 5).with_format("arrow")[:])


def test_labels_encode_as_the_model_expects():
    columns = {"energy": np.array([10.0, 1000.0]), "vertex_z": np.array([1.0, -2.0]), "kind": np.array(["numu", "nue"], object),
               "is_track": np.array([True, False]), "other": np.array([False, False])}
    regression = SimpleNamespace(problem_type="regression", label_columns=["log10:energy", "vertex_z"])
    labels = encode_labels(columns, regression)
    assert labels.dtype == np.float32 and labels.tolist() == [[1.0, 1.0], [3.0, -2.0]]
    single = SimpleNamespace(problem_type="single_label_classification", label_columns=["kind"],
                             label2id={"nue": 0, "numu": 1})
    labels = encode_labels(columns, single)
    assert labels.dtype == np.int64 and labels.tolist() == [1, 0]
    multi = SimpleNamespace(problem_type="multi_label_classification", label_columns=["is_track", "other"])
    assert encode_labels(columns, multi).tolist() == [[1.0, 0.0], [0.0, 0.0]]
    booleans = SimpleNamespace(problem_type="single_label_classification", label_columns=["is_track"],
                               label2id={"False": 0, "True": 1})
    assert encode_labels(columns, booleans).tolist() == [1, 0]
    unknown = SimpleNamespace(problem_type="single_label_classification", label_columns=["kind"], label2id={"nue": 0})
    with pytest.raises(ValueError, match="event_id 7 has class 'numu', which the model does not know"):
        encode_labels(columns, unknown, event_ids=np.array([7, 8]))
