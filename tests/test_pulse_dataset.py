"""Tests of modeling_polarbert.pulse_dataset: the Arrow fast path gathers exactly the events asked for, in the
stored dtypes, for training and inference alike; and the total charge of an event. That the collators give the
same batches from it as from rows is tested in tests/test_collators.py."""

import pickle

import numpy as np
import pytest

from modeling_polarbert.feature_extraction_polarbert import rows_to_pulse_batch
from modeling_polarbert.pulse_dataset import as_pulse_dataset, log10_total_charge


def test_fast_path_gathers_exactly_the_requested_events(saved_dataset):
    fast = as_pulse_dataset(saved_dataset)
    indices = [190, 3, 3, 61, 0, len(saved_dataset) - 1]
    batch = fast.gather(indices)
    expected = rows_to_pulse_batch([saved_dataset[i] for i in indices])
    assert set(batch) == set(expected)
    for key in expected:
        assert batch[key].dtype == expected[key].dtype and np.array_equal(batch[key], expected[key]), key
    with pytest.raises(IndexError):
        fast.gather([0, len(saved_dataset)])
    row = fast[61]
    assert row["event_id"] == saved_dataset[61]["event_id"]
    assert row["sensor_id"].tolist() == saved_dataset[61]["sensor_id"]


def test_fast_path_survives_pickling_for_dataloader_workers(saved_dataset):
    fast = as_pulse_dataset(saved_dataset.shuffle(seed=1))
    fast.gather([0, 1])  # build some views first
    copy = pickle.loads(pickle.dumps(fast))
    for key, value in fast.gather([5, 9, 2]).items():
        assert np.array_equal(copy.gather([5, 9, 2])[key], value)


def test_the_dataloader_hook_getitems_is_gather(saved_dataset):
    fast = as_pulse_dataset(saved_dataset)
    for key, value in fast.gather([7, 2]).items():
        assert np.array_equal(fast.__getitems__([7, 2])[key], value), key


def test_azimuth_and_zenith_come_whenever_the_dataset_has_them(saved_dataset):
    fast = as_pulse_dataset(saved_dataset)
    assert fast.direction_columns == ("azimuth", "zenith")
    batch = fast.gather([4, 1])
    np.testing.assert_array_equal(batch["zenith"], [saved_dataset[4]["zenith"], saved_dataset[1]["zenith"]])
    unlabelled = as_pulse_dataset(saved_dataset.remove_columns(["azimuth", "zenith"]))
    assert unlabelled.direction_columns == () and "azimuth" not in unlabelled.gather([0])


def test_total_charge_is_log10_of_the_sum_of_every_pulse_and_names_an_event_without_charge():
    batch = {"event_id": np.array([5, 6]), "pulse_offsets": np.array([0, 2, 5]),
             "charge": np.array([1.0, 9.0, 0.5, 0.25, 0.25], np.float32)}
    np.testing.assert_allclose(log10_total_charge(batch), [1.0, 0.0], atol=1e-7)
    assert log10_total_charge(batch).dtype == np.float32
    batch["charge"] = np.array([1.0, 9.0, 0.0, 0.0, 0.0], np.float32)
    with pytest.raises(ValueError, match="event_id 6 has a total charge of 0.0"):
        log10_total_charge(batch)
