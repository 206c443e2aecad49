"""Tests of modeling_polarbert.kaggle_layout: one reading of the layout, the same clear errors on every path,
submissions and files that appear only once complete."""

import numpy as np
import pandas as pd
import pytest

from modeling_polarbert.cli import main as cli_main
from modeling_polarbert.kaggle_layout import (
    aside_files,
    inspect_kaggle,
    iter_batches,
    submission_writer,
    written_aside,
)
from modeling_polarbert.linefit import linefit_kaggle_dir

from kaggle_files import BAD_INPUTS, two_edge_case_batches, write_kaggle_dir  # tests/ is on sys.path under pytest

LABEL_CASES = {"train labels missing", "NaN label"}  # LineFit scores labels where there are some; prepare needs them


def read_everything(root, **kwargs):
    return list(iter_batches(inspect_kaggle(root, **kwargs)))


def test_batches_come_out_checked_with_offsets_event_ids_and_labels(tmp_path):
    batches = two_edge_case_batches()
    root = write_kaggle_dir(tmp_path / "kaggle", batches)
    read = read_everything(root)
    assert [batch.batch_id for batch in read] == [1, 4]
    for batch, events in zip(read, batches.values()):
        assert batch.event_ids.tolist() == [event.event_id for event in events]
        assert np.diff(batch.offsets).tolist() == [event.n_pulses for event in events]
        assert batch.pulses["sensor_id"].to_pylist() == [s for event in events for s in event.sensor_id]
        assert batch.labels["azimuth"].to_pylist() == [event.azimuth for event in events]


@pytest.mark.parametrize("name", sorted(set(BAD_INPUTS) - LABEL_CASES))
def test_linefit_refuses_bad_input_with_the_error_prepare_gives(tmp_path, name):
    breakage, error, pieces = BAD_INPUTS[name]
    root = write_kaggle_dir(tmp_path / "kaggle", two_edge_case_batches())
    breakage(root)
    with pytest.raises(error) as from_layout:
        read_everything(root)
    with pytest.raises(error) as from_linefit:
        linefit_kaggle_dir(root, verbose=False)
    assert str(from_linefit.value) == str(from_layout.value)
    for piece in pieces:
        assert piece in str(from_linefit.value)


@pytest.mark.parametrize("victim", ["train/batch_4.parquet", "train_meta.parquet"])
def test_a_truncated_parquet_file_is_an_error_naming_it_with_nothing_left(tmp_path, capsys, victim):
    root = write_kaggle_dir(tmp_path / "kaggle", two_edge_case_batches())
    path = root / victim
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    out = tmp_path / "out"
    assert cli_main(["prepare", str(root), str(out)]) == 2
    assert str(path) in capsys.readouterr().err
    assert not out.exists() and not out.with_name("out.incomplete").exists()
    assert cli_main(["linefit", str(root), "--out", str(tmp_path / "linefit.csv")]) == 2
    assert str(path) in capsys.readouterr().err
    assert not list(tmp_path.glob("*linefit.csv*"))


def test_a_submission_appears_only_once_complete(tmp_path):
    out = tmp_path / "submission.csv"
    with pytest.raises(RuntimeError):
        with submission_writer(out) as write:
            write([1, 2], [0.5, 1.5], [0.25, 3.0])
            raise RuntimeError("interrupted")
    assert not out.exists() and not aside_files(tmp_path)
    with submission_writer(out) as write:
        write(np.array([1, 2]), np.array([0.5, 1.5]), np.array([0.25, 3.0]))
        write([7], [6.0], [0.125])
        assert not out.exists()  # still aside
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["event_id", "azimuth", "zenith"]
    assert frame["event_id"].tolist() == [1, 2, 7] and frame["zenith"].tolist() == [0.25, 3.0, 0.125]


def test_written_aside_keeps_an_existing_file_until_the_new_one_is_complete(tmp_path):
    path = tmp_path / "file.txt"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with written_aside(path) as partial:
            partial.write_text("half")
            raise KeyboardInterrupt
    assert path.read_text() == "old" and not aside_files(tmp_path)
    with written_aside(path) as partial:
        partial.write_text("new")
    assert path.read_text() == "new" and not aside_files(tmp_path)
