"""Tests of modeling_polarbert.preparation: Kaggle layout -> `datasets` dataset, exact, resumable, strict."""

import dataclasses

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from modeling_polarbert import preparation
from modeling_polarbert.cli import main as cli_main
from modeling_polarbert.kaggle_layout import aside_path
from modeling_polarbert.preparation import combine_prepared, load_kaggle, parse_batch_selection, prepare_kaggle

from kaggle_files import (  # tests/ is on sys.path under pytest
    BAD_INPUTS,
    KaggleEvent,
    batch_frame,
    edge_case_events,
    meta_frame,
    random_batches,
    rewrite_batch,
    set_pulse,
    two_edge_case_batches,
    write_kaggle_dir,
)


def prepare_quietly(root, out, **kwargs):
    return prepare_kaggle(root, out, progress=False, **kwargs)


def assert_nothing_left(out):
    assert not out.exists(), f"{out} was left behind"
    assert not out.with_name(out.name + ".incomplete").exists(), "the work directory was left behind"


# ---------------------------------------------------------------------------------------------------------------
# Exact conversion
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["pandas", "plain"])
def test_every_event_converts_exactly_for_both_batch_file_variants(tmp_path, layout):
    batches = two_edge_case_batches()
    root = write_kaggle_dir(tmp_path / "kaggle", batches, layout=layout)
    dataset = prepare_quietly(root, tmp_path / "out")

    events = [(batch_id, event) for batch_id, evs in batches.items() for event in evs]
    assert len(dataset) == len(events)
    for row, (batch_id, event) in zip(dataset, events):
        assert row["event_id"] == event.event_id and row["batch_id"] == batch_id
        assert row["n_pulses"] == event.n_pulses
        assert row["sensor_id"] == event.sensor_id  # exact, including ids above 2048
        assert row["time"] == event.time
        assert row["auxiliary"] == event.auxiliary
        # stored charge is exactly float32 of the original (and the 0.025 grid gives the float64 back)
        np.testing.assert_array_equal(np.float32(row["charge"]), np.asarray(event.charge, dtype=np.float32))
        np.testing.assert_array_equal(np.round(np.asarray(row["charge"]) / 0.025) * 0.025,
                                      np.round(np.asarray(event.charge) / 0.025) * 0.025)
        assert row["azimuth"] == event.azimuth and row["zenith"] == event.zenith


def test_schema_is_explicit_with_integer_dom_ids(tmp_path):
    root = write_kaggle_dir(tmp_path / "kaggle", two_edge_case_batches())
    dataset = prepare_quietly(root, tmp_path / "out")
    schema = dataset.features.arrow_schema
    assert schema.field("event_id").type == pa.int64()
    assert schema.field("batch_id").type == pa.int32()
    assert schema.field("sensor_id").type == pa.list_(pa.int16())
    assert schema.field("time").type == pa.list_(pa.int32())
    assert schema.field("charge").type == pa.list_(pa.float32())
    assert schema.field("auxiliary").type == pa.list_(pa.bool_())
    assert schema.field("n_pulses").type == pa.int32()
    assert schema.field("azimuth").type == pa.float64()
    high_ids = dataset[2]["sensor_id"]
    assert high_ids == [2049, 2051, 4097, 5159]  # float16 would give 2048, 2052, 4096, 5160


def test_reexpanding_the_dataset_gives_the_batch_files_rows(tmp_path):
    batches = random_batches(n_batches=2, events_per_batch=25, seed=3)
    root = write_kaggle_dir(tmp_path / "kaggle", batches)
    table = prepare_quietly(root, tmp_path / "out").data.table
    for batch_id in batches:
        original = pd.read_parquet(root / "train" / f"batch_{batch_id}.parquet").reset_index()
        events = table.filter(pa.compute.equal(table.column("batch_id"), batch_id))
        n_pulses = events.column("n_pulses").to_numpy()
        expanded = pd.DataFrame({
            "event_id": np.repeat(events.column("event_id").to_numpy(), n_pulses),
            **{name: events.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=False)
               for name in ("sensor_id", "time", "charge", "auxiliary")},
        })
        np.testing.assert_array_equal(expanded["event_id"], original["event_id"])
        np.testing.assert_array_equal(expanded["sensor_id"], original["sensor_id"])
        np.testing.assert_array_equal(expanded["time"], original["time"])
        np.testing.assert_array_equal(expanded["charge"], original["charge"].astype(np.float32))
        np.testing.assert_array_equal(expanded["auxiliary"], original["auxiliary"])


def test_extra_meta_columns_are_kept_with_their_dtypes(tmp_path):
    events = edge_case_events()
    for i, event in enumerate(events):
        event.extra = {"energy": np.float32(10.0 ** (i % 5)), "is_track": bool(i % 2),
                       "vertex_x": float(i) - 3.5, "interaction": np.int16(i)}
    root = tmp_path / "kaggle"
    write_kaggle_dir(root, {1: events})
    meta = meta_frame({1: events}, with_labels=True).astype({"energy": np.float32, "interaction": np.int16})
    meta.to_parquet(root / "train_meta.parquet", index=False)
    dataset = prepare_quietly(root, tmp_path / "out")
    schema = dataset.features.arrow_schema
    assert schema.field("energy").type == pa.float32() and schema.field("is_track").type == pa.bool_()
    assert schema.field("vertex_x").type == pa.float64() and schema.field("interaction").type == pa.int16()
    assert dataset["is_track"] == [bool(i % 2) for i in range(len(events))]
    assert dataset["vertex_x"] == [float(i) - 3.5 for i in range(len(events))]


def test_output_is_an_ordinary_memory_mapped_saved_dataset_with_a_shard_per_batch(tmp_path):
    root = write_kaggle_dir(tmp_path / "kaggle", random_batches(n_batches=3, events_per_batch=8))
    out = tmp_path / "out"
    prepared = prepare_quietly(root, out)
    assert sorted(p.name for p in out.iterdir()) == [
        "data-00000-of-00003.arrow", "data-00001-of-00003.arrow", "data-00002-of-00003.arrow",
        "dataset_info.json", "state.json"]
    loaded = datasets.load_from_disk(str(out))
    assert loaded.split == "train" and len(loaded.cache_files) == 3  # memory-mapped, not read into RAM
    assert loaded.features == prepared.features and loaded.data.table.equals(load_kaggle(root).data.table)
    # the usual `datasets` operations work on it, and it saves and loads back unchanged
    splits = loaded.train_test_split(test_size=0.25, seed=0)
    assert len(splits["train"]) == 18 and len(splits["test"]) == 6
    loaded.save_to_disk(str(tmp_path / "again"))
    assert datasets.load_from_disk(str(tmp_path / "again")).data.table.equals(loaded.data.table)


def test_test_split_has_no_label_columns(tmp_path):
    root = write_kaggle_dir(tmp_path / "kaggle", {661: edge_case_events()}, split="test")
    dataset = prepare_quietly(root, tmp_path / "out", split="test")
    assert "azimuth" not in dataset.column_names and "zenith" not in dataset.column_names
    assert dataset["event_id"] == [e.event_id for e in edge_case_events()]


def test_load_kaggle_in_memory_equals_prepare(tmp_path):
    root = write_kaggle_dir(tmp_path / "kaggle", two_edge_case_batches())
    prepared = prepare_quietly(root, tmp_path / "out")
    loaded = load_kaggle(root)
    assert loaded.features == prepared.features
    assert loaded.data.table.equals(prepared.data.table)


def test_parallel_conversion_equals_sequential(tmp_path):
    root = write_kaggle_dir(tmp_path / "kaggle", random_batches(n_batches=4, events_per_batch=10))
    sequential = prepare_quietly(root, tmp_path / "seq", num_proc=1)
    parallel = prepare_quietly(root, tmp_path / "par", num_proc=2)
    assert parallel.data.table.equals(sequential.data.table)


def test_batch_selection_parses_ranges_and_converts_only_those(tmp_path):
    assert parse_batch_selection("1-3,7") == [1, 2, 3, 7]
    assert parse_batch_selection(" 655, 1-2 ,2") == [1, 2, 655]
    for bad in ["", "1-", "a", "5-3", "1;2"]:
        with pytest.raises(ValueError, match="batch selection"):
            parse_batch_selection(bad)
    root = write_kaggle_dir(tmp_path / "kaggle", random_batches(n_batches=3, events_per_batch=5))
    dataset = prepare_quietly(root, tmp_path / "out", batches=[1, 3])
    assert sorted(set(dataset["batch_id"])) == [1, 3]


# ---------------------------------------------------------------------------------------------------------------
# Interruption and resume
# ---------------------------------------------------------------------------------------------------------------


def test_resume_after_interruption_converts_only_missing_batches_and_gives_the_same_dataset(tmp_path, monkeypatch):
    root = write_kaggle_dir(tmp_path / "kaggle", random_batches(n_batches=3, events_per_batch=12))
    reference = prepare_quietly(root, tmp_path / "reference")
    out = tmp_path / "out"
    original_convert = preparation.convert_batch
    converted = []

    def interrupted_at_batch_2(source, batch_id):
        if batch_id == 2:
            raise KeyboardInterrupt
        converted.append(batch_id)
        return original_convert(source, batch_id)

    monkeypatch.setattr(preparation, "convert_batch", interrupted_at_batch_2)
    with pytest.raises(KeyboardInterrupt):
        prepare_quietly(root, out)
    work = out.with_name("out.incomplete")
    assert not out.exists() and (work / "batches" / "batch_1.arrow").exists()
    # what a kill in the middle of writing would leave: a partial batch file and a half-saved dataset
    aside_path(work / "batches" / "batch_3.arrow").write_bytes(b"partial")
    (work / "dataset").mkdir()

    converted.clear()
    monkeypatch.setattr(preparation, "convert_batch", lambda s, b: converted.append(b) or original_convert(s, b))
    resumed = prepare_quietly(root, out)
    assert converted == [2, 3]
    assert resumed.data.table.equals(reference.data.table)
    assert not work.exists()


def test_a_work_dir_from_other_input_is_discarded(tmp_path):
    root = write_kaggle_dir(tmp_path / "kaggle", random_batches(n_batches=1, events_per_batch=6))
    work = tmp_path / "out.incomplete"
    (work / "batches").mkdir(parents=True)
    (work / "prepare.json").write_text('{"kaggle_dir": "/elsewhere"}')
    (work / "batches" / "batch_1.arrow").write_bytes(b"not this input's batch")
    dataset = prepare_quietly(root, tmp_path / "out")
    assert dataset.data.table.equals(load_kaggle(root).data.table)


# ---------------------------------------------------------------------------------------------------------------
# Bad input: a clear error naming file, column and event; nothing left behind
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_names_file_and_event_and_leaves_nothing(tmp_path, name):
    breakage, error, pieces = BAD_INPUTS[name]
    root = write_kaggle_dir(tmp_path / "kaggle", two_edge_case_batches())
    breakage(root)
    out = tmp_path / "out"
    with pytest.raises(error) as caught:
        prepare_quietly(root, out)
    for piece in pieces:
        assert piece in str(caught.value), f"{piece!r} not in {caught.value}"
    assert_nothing_left(out)


def test_bad_input_after_good_batches_removes_their_work_too(tmp_path):
    batches = random_batches(n_batches=3, events_per_batch=5)
    root = write_kaggle_dir(tmp_path / "kaggle", batches)
    bad_event = batches[3][2].event_id
    rewrite_batch(root, 3, set_pulse("sensor_id", 9999, bad_event))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=f"event_id {bad_event}"):
        prepare_quietly(root, out, num_proc=2)
    assert_nothing_left(out)


def test_requested_batch_missing_from_meta_is_an_error(tmp_path):
    root = write_kaggle_dir(tmp_path / "kaggle", two_edge_case_batches())
    with pytest.raises(ValueError, match="no events of batch 2"):
        prepare_quietly(root, tmp_path / "out", batches=[1, 2])
    assert_nothing_left(tmp_path / "out")


def test_existing_output_is_refused_and_kept(tmp_path):
    root = write_kaggle_dir(tmp_path / "kaggle", two_edge_case_batches())
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists"):
        prepare_quietly(root, out)
    assert (out / "keep.txt").read_text() == "mine"


def test_cli_prepare_exits_2_with_the_message_on_bad_input(tmp_path, capsys):
    root = write_kaggle_dir(tmp_path / "kaggle", two_edge_case_batches())
    rewrite_batch(root, 1, set_pulse("sensor_id", 7000, 5))
    assert cli_main(["prepare", str(root), str(tmp_path / "out"), "--batches", "1"]) == 2
    assert "event_id 5" in capsys.readouterr().err
    assert_nothing_left(tmp_path / "out")
    rewrite_batch(root, 1, set_pulse("sensor_id", 7, 5))
    assert cli_main(["prepare", str(root), str(tmp_path / "out"), "--batches", "1,4"]) == 0


def test_a_single_event_with_one_pulse_converts(tmp_path):
    event = KaggleEvent(42, [5159], [0], [0.025], [True], 0.0, 0.0)
    root = write_kaggle_dir(tmp_path / "kaggle", {7: [event]})
    assert batch_frame([event]).shape == (1, 5)
    row = prepare_quietly(root, tmp_path / "out")[0]
    assert (row["event_id"], row["sensor_id"], row["time"], row["n_pulses"]) == (42, [5159], [0], 1)


# ---------------------------------------------------------------------------------------------------------------
# Combining prepared sets (simulated in parallel processes)
# ---------------------------------------------------------------------------------------------------------------


def _prepared_pair(tmp_path, second_first_id=101):
    folders = []
    for name, batches in [("a", {1: edge_case_events(first_event_id=1, seed=0)}),
                          ("b", random_batches(n_batches=2, events_per_batch=5, seed=3))]:
        if name == "b":  # shift the ids of the second set
            batches = {batch_id: [dataclasses.replace(event, event_id=event.event_id + second_first_id)
                                  for event in events] for batch_id, events in batches.items()}
        prepare_quietly(write_kaggle_dir(tmp_path / f"kaggle_{name}", batches), tmp_path / f"prepared_{name}")
        folders.append(tmp_path / f"prepared_{name}")
    return folders


def test_combined_sets_hold_every_event_in_order_by_hard_links(tmp_path):
    folders = _prepared_pair(tmp_path)
    combined = combine_prepared(folders, tmp_path / "combined")
    parts = [datasets.load_from_disk(str(folder)) for folder in folders]
    assert combined.features == parts[0].features
    assert combined.to_list() == parts[0].to_list() + parts[1].to_list()
    shards = sorted((tmp_path / "combined").glob("data-*.arrow"))
    assert len(shards) == 3  # 1 + 2 batch files, linked, not copied
    originals = sorted(folders[0].glob("data-*.arrow")) + sorted(folders[1].glob("data-*.arrow"))
    assert [shard.stat().st_ino for shard in shards] == [original.stat().st_ino for original in originals]
    assert datasets.load_from_disk(str(tmp_path / "combined")).data.table.equals(combined.data.table)


def test_combining_sets_whose_event_ids_repeat_is_refused_and_leaves_nothing(tmp_path):
    folders = _prepared_pair(tmp_path, second_first_id=0)  # ids 1.. in both
    with pytest.raises(ValueError, match="occurs more than once.*event_id_offset"):
        combine_prepared(folders, tmp_path / "combined")
    assert_nothing_left(tmp_path / "combined")
    (tmp_path / "exists").mkdir()
    with pytest.raises(ValueError, match="already exists"):
        combine_prepared(_prepared_pair(tmp_path / "other"), tmp_path / "exists")
