"""Tests of modeling_polarbert.simulation: the Kaggle layout it writes, the HLC rule, reproducibility, statistics."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modeling_polarbert import simulation
from modeling_polarbert.geometry import SENSOR_GEOMETRY_PATH
from modeling_polarbert.simulation import hlc_auxiliary, simulate_events, simulate_kaggle_dir

N_EVENTS = 600
SEED = 7


@pytest.fixture(scope="module")
def kaggle_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    simulate_kaggle_dir(out, n_events=N_EVENTS, seed=SEED, batch_size=250, progress=False)
    return out


@pytest.fixture(scope="module")
def statistics_sample():
    """A few thousand events for the distribution checks (documented in docs/simulator.md)."""
    return simulate_events(3000, seed=11)


def _read_all_pulses(directory, split="train"):
    meta = pd.read_parquet(directory / f"{split}_meta.parquet")
    frames = [pd.read_parquet(directory / split / f"batch_{b}.parquet") for b in meta["batch_id"].unique()]
    return pd.concat(frames), meta


# ---------------------------------------------------------------------------------------------------------------
# Layout and schema
# ---------------------------------------------------------------------------------------------------------------


def test_writes_kaggle_file_set_and_geometry_copy(kaggle_dir):
    assert (kaggle_dir / "sensor_geometry.csv").read_bytes() == SENSOR_GEOMETRY_PATH.read_bytes()
    assert sorted(p.name for p in (kaggle_dir / "train").iterdir()) == [f"batch_{b}.parquet" for b in (1, 2, 3)]
    assert not list(kaggle_dir.rglob(".*tmp*")), "temporary files left behind"


def test_batch_file_schema_equals_kaggle(kaggle_dir):
    schema = pq.read_schema(kaggle_dir / "train" / "batch_1.parquet")
    expected = {"sensor_id": pa.int16(), "time": pa.int64(), "charge": pa.float64(), "auxiliary": pa.bool_(),
                "event_id": pa.int64()}
    assert {field.name: field.type for field in schema} == expected
    frame = pd.read_parquet(kaggle_dir / "train" / "batch_1.parquet")
    assert frame.index.name == "event_id" and frame.index.dtype == np.int64
    assert list(frame.columns) == ["sensor_id", "time", "charge", "auxiliary"]


def test_meta_schema_and_truth_columns(kaggle_dir):
    meta = pd.read_parquet(kaggle_dir / "train_meta.parquet")
    assert list(meta.columns) == [
        "batch_id", "event_id", "first_pulse_index", "last_pulse_index", "azimuth", "zenith",
        "energy", "is_track", "vertex_x", "vertex_y", "vertex_z",
    ]
    for column in ("batch_id", "event_id", "first_pulse_index", "last_pulse_index"):
        assert meta[column].dtype == np.int64, column
    assert meta["is_track"].dtype == bool
    assert len(meta) == N_EVENTS
    assert meta["azimuth"].between(0, 2 * np.pi).all() and meta["zenith"].between(0, np.pi).all()
    assert meta["energy"].between(1e2, 1e8).all()


def test_meta_offsets_point_at_each_events_rows(kaggle_dir):
    meta = pd.read_parquet(kaggle_dir / "train_meta.parquet")
    for batch_id, rows in meta.groupby("batch_id"):
        pulses = pd.read_parquet(kaggle_dir / "train" / f"batch_{batch_id}.parquet")
        first, last = rows["first_pulse_index"].to_numpy(), rows["last_pulse_index"].to_numpy()
        assert first[0] == 0 and last[-1] == len(pulses) - 1
        np.testing.assert_array_equal(first[1:], last[:-1] + 1)  # contiguous, in meta order
        counts = pulses.groupby(level="event_id", sort=False).size()
        np.testing.assert_array_equal(counts.index.to_numpy(), rows["event_id"].to_numpy())
        np.testing.assert_array_equal(counts.to_numpy(), last - first + 1)
    assert len(meta) == 600 and meta.groupby("batch_id").size().tolist() == [250, 250, 100]


def test_pulses_time_sorted_within_event_with_quantised_charge(kaggle_dir):
    pulses, _ = _read_all_pulses(kaggle_dir)
    event = pulses.index.to_numpy()
    time = pulses["time"].to_numpy()
    same_event = event[1:] == event[:-1]
    assert np.all(time[1:][same_event] >= time[:-1][same_event])
    steps = pulses["charge"].to_numpy() / 0.025
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-9)
    assert pulses["charge"].min() >= 0.025
    assert pulses["sensor_id"].between(0, 5159).all()
    assert 3_000 < np.percentile(time, 1) and np.percentile(time, 99) < 40_000  # Kaggle-like absolute times


def test_test_split_hides_labels_and_writes_truth(tmp_path):
    meta = simulate_kaggle_dir(tmp_path, n_events=50, seed=1, split="test", progress=False)
    test_meta = pd.read_parquet(tmp_path / "test_meta.parquet")
    assert list(test_meta.columns) == ["batch_id", "event_id", "first_pulse_index", "last_pulse_index"]
    truth = pd.read_parquet(tmp_path / "test_truth.parquet")
    assert list(truth.columns) == ["event_id", "azimuth", "zenith", "energy", "is_track", "vertex_x", "vertex_y", "vertex_z"]
    np.testing.assert_array_equal(truth["event_id"], test_meta["event_id"])
    assert (tmp_path / "test" / "batch_1.parquet").exists()
    assert (meta["event_id"] >= simulation.TEST_EVENT_ID_OFFSET).all()  # never collides with train ids


def test_prepare_reads_the_simulator_output_losslessly(kaggle_dir, tmp_path):
    from modeling_polarbert.preparation import prepare_kaggle

    dataset = prepare_kaggle(kaggle_dir, tmp_path / "prepared", progress=False)
    pulses, meta = _read_all_pulses(kaggle_dir)
    assert dataset["event_id"] == meta["event_id"].tolist()
    assert dataset["n_pulses"] == (meta["last_pulse_index"] - meta["first_pulse_index"] + 1).tolist()
    assert {"energy", "is_track", "vertex_x", "vertex_y", "vertex_z"} <= set(dataset.column_names)
    assert np.array_equal(np.concatenate(dataset["sensor_id"]), pulses["sensor_id"].to_numpy())
    assert np.array_equal(np.concatenate(dataset["time"]), pulses["time"].to_numpy())
    assert np.array_equal(np.concatenate(dataset["charge"]), pulses["charge"].to_numpy().astype(np.float32))
    assert np.array_equal(np.concatenate(dataset["auxiliary"]), pulses["auxiliary"].to_numpy())


def test_refuses_to_overwrite_an_existing_split(kaggle_dir):
    with pytest.raises(ValueError, match="already holds a train split"):
        simulate_kaggle_dir(kaggle_dir, n_events=10, seed=0, progress=False)


@pytest.mark.parametrize("kwargs", [dict(n_events=0), dict(n_events=5, split="valid"), dict(n_events=5, batch_size=0)])
def test_bad_arguments_raise_value_error(tmp_path, kwargs):
    with pytest.raises(ValueError):
        simulate_kaggle_dir(tmp_path / "x", progress=False, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Reproducibility, trigger, event ids
# ---------------------------------------------------------------------------------------------------------------


def test_same_seed_gives_same_events_whatever_the_batch_size(kaggle_dir, tmp_path):
    simulate_kaggle_dir(tmp_path, n_events=N_EVENTS, seed=SEED, batch_size=N_EVENTS, progress=False)
    pulses_a, meta_a = _read_all_pulses(kaggle_dir)
    pulses_b, meta_b = _read_all_pulses(tmp_path)
    pd.testing.assert_frame_equal(pulses_a, pulses_b)
    columns = ["event_id", "azimuth", "zenith", "energy", "is_track", "vertex_x", "vertex_y", "vertex_z"]
    pd.testing.assert_frame_equal(meta_a[columns], meta_b[columns])


def test_in_memory_events_equal_the_files_and_other_seeds_differ(kaggle_dir):
    pulses, meta = simulate_events(N_EVENTS, seed=SEED)
    file_pulses, file_meta = _read_all_pulses(kaggle_dir)
    pd.testing.assert_frame_equal(pulses, file_pulses)
    np.testing.assert_array_equal(meta["event_id"], file_meta["event_id"])
    other, _ = simulate_events(50, seed=SEED + 1)
    assert not pulses.iloc[: len(other)].equals(other)


def test_event_id_offset_shifts_the_ids_and_nothing_else(kaggle_dir, tmp_path):
    simulate_kaggle_dir(tmp_path, n_events=N_EVENTS, seed=SEED, batch_size=250, progress=False,
                        event_id_offset=5_000_000)
    pulses_a, meta_a = _read_all_pulses(kaggle_dir)
    pulses_b, meta_b = _read_all_pulses(tmp_path)
    np.testing.assert_array_equal(meta_b["event_id"], meta_a["event_id"] + 5_000_000)
    np.testing.assert_array_equal(pulses_b.index, pulses_a.index + 5_000_000)
    pd.testing.assert_frame_equal(pulses_b.reset_index(drop=True), pulses_a.reset_index(drop=True))
    pd.testing.assert_frame_equal(meta_b.drop(columns="event_id"), meta_a.drop(columns="event_id"))
    with pytest.raises(ValueError, match="event_id_offset"):
        simulate_kaggle_dir(tmp_path / "bad", n_events=5, event_id_offset=-1, progress=False)


def test_num_proc_does_not_change_the_events():
    single = simulate_events(400, seed=3, num_proc=1)
    parallel = simulate_events(400, seed=3, num_proc=2)
    pd.testing.assert_frame_equal(single[0], parallel[0])
    pd.testing.assert_frame_equal(single[1], parallel[1])


def test_failed_triggers_leave_gaps_in_event_ids_and_written_events_pass(kaggle_dir):
    pulses, meta = _read_all_pulses(kaggle_dir)
    event_id = meta["event_id"].to_numpy()
    assert np.all(np.diff(event_id) > 0)
    assert np.any(np.diff(event_id) > 1), "no candidate failed the trigger?"
    assert event_id[-1] >= N_EVENTS  # candidates were consumed beyond the written count
    hlc_pulses = (~pulses["auxiliary"]).groupby(level="event_id", sort=False).sum()
    assert hlc_pulses.min() >= simulation.DEFAULT_CONFIG.trigger_min_hlc_pulses


def test_written_auxiliary_flags_follow_the_hlc_rule(kaggle_dir):
    pulses, _ = _read_all_pulses(kaggle_dir)
    recomputed = hlc_auxiliary(pulses["sensor_id"], pulses["time"], pulses.index.to_numpy())
    np.testing.assert_array_equal(recomputed, pulses["auxiliary"].to_numpy())


# ---------------------------------------------------------------------------------------------------------------
# The HLC rule on hand-placed pulses
# ---------------------------------------------------------------------------------------------------------------


def _sensor(string, dom):
    """sensor_id of 1-based string, 0-based DOM position (0 = top)."""
    return (string - 1) * 60 + dom


def test_hlc_neighbours_one_and_two_positions_apart_within_one_microsecond():
    sensor = [_sensor(1, 10), _sensor(1, 12), _sensor(1, 30), _sensor(1, 31)]
    time = [1000, 1900, 5000, 6001]  # first pair: 2 DOMs apart, 900 ns; second: adjacent but 1001 ns apart
    aux = hlc_auxiliary(sensor, time, np.zeros(4))
    np.testing.assert_array_equal(aux, [False, False, True, True])


def test_hlc_window_is_inclusive_and_three_positions_is_too_far():
    sensor = [_sensor(2, 5), _sensor(2, 6), _sensor(2, 20), _sensor(2, 23)]
    time = [0, 1000, 0, 10]
    np.testing.assert_array_equal(hlc_auxiliary(sensor, time, np.zeros(4)), [False, False, True, True])


def test_hlc_ignores_same_dom_other_strings_string_ends_and_other_events():
    sensor = [
        _sensor(3, 7), _sensor(3, 7),  # same DOM twice: not a coincidence
        _sensor(3, 59), _sensor(4, 0),  # bottom of string 3 and top of string 4: adjacent ids, different strings
        _sensor(5, 40), _sensor(5, 41),  # neighbours, but in different events
    ]
    time = [100, 200, 100, 150, 100, 100]
    event = [0, 0, 0, 0, 0, 1]
    np.testing.assert_array_equal(hlc_auxiliary(sensor, time, event), [True] * 6)


def test_hlc_flags_do_not_depend_on_pulse_order():
    rng = np.random.default_rng(0)
    sensor = rng.integers(0, 5160, 2000)
    time = rng.integers(0, 20_000, 2000)
    event = rng.integers(0, 3, 2000)
    aux = hlc_auxiliary(sensor, time, event)
    perm = rng.permutation(2000)
    np.testing.assert_array_equal(hlc_auxiliary(sensor[perm], time[perm], event[perm]), aux[perm])
    # brute force on a subset
    for i in range(0, 2000, 97):
        same = (event == event[i]) & (sensor // 60 == sensor[i] // 60)
        step = np.abs(sensor - sensor[i])
        partner = same & (step >= 1) & (step <= 2) & (np.abs(time - time[i]) <= 1000)
        assert aux[i] == (not partner.any())


# ---------------------------------------------------------------------------------------------------------------
# Physics statistics (ranges documented in docs/simulator.md)
# ---------------------------------------------------------------------------------------------------------------


def test_pulse_count_median_and_long_tail_near_kaggle(statistics_sample):
    _, meta = statistics_sample
    counts = meta["last_pulse_index"] - meta["first_pulse_index"] + 1
    assert 50 <= counts.median() <= 90  # Kaggle: about 62
    assert counts.max() > 1000  # a long tail to thousands of pulses
    assert 0.005 < (counts > 768).mean() < 0.06  # Kaggle: about 1.4 %


def test_auxiliary_fraction_and_track_share(statistics_sample):
    pulses, meta = statistics_sample
    assert 0.18 <= pulses["auxiliary"].mean() <= 0.40
    per_event = pulses["auxiliary"].groupby(level="event_id").mean()
    assert 0.40 <= per_event.median() <= 0.75  # most pulses of a typical (dim) event are noise
    assert 0.25 <= meta["is_track"].mean() <= 0.42  # about 1/3 tracks


def test_directions_are_isotropic(statistics_sample):
    _, meta = statistics_sample
    cos_zenith = np.cos(meta["zenith"])
    assert abs(cos_zenith.mean()) < 0.06 and abs(np.mean(np.cos(meta["azimuth"]))) < 0.06
