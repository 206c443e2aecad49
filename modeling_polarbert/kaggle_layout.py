"""The Kaggle "IceCube - Neutrinos in Deep Ice" layout: its file and column names, reading and checking a split,
and writing a submission. Every module that reads or writes the layout (prepare, predict, LineFit, the
simulator's writer) goes through this one, so that bad input gets the same clear error on every path.

A split of a Kaggle-layout directory, as the competition publishes its files:

    {split}_meta.parquet        one row per event: batch_id, event_id, first_pulse_index, last_pulse_index
                                (inclusive rows of the batch file), azimuth and zenith in the train split
    {split}/batch_{N}.parquet   one row per pulse: event_id (pandas writes it as the index), sensor_id, time,
                                charge, auxiliary; the events one after another, time-ordered within an event
    sensor_geometry.csv         the DOM positions (the package ships the same file)
    {split}_truth.parquet       not Kaggle's: the simulator's truth of an unlabelled split (event_id, azimuth,
                                zenith, energy, is_track, vertex_x/y/z), which LineFit scores against

`inspect_kaggle` checks the meta file and every selected batch file's columns and types (footers only);
`read_batch` reads one batch file and checks its values against its meta rows (vectorised, no loop over events).
Bad input is a `ValueError` / `FileNotFoundError` naming the file, the column and the event id; a file that is
not readable parquet (truncated, corrupt) is a `ValueError` naming it.

`written_aside` is the one way the package writes a file: under a temporary name beside it, renamed into place
only once complete, so that an interrupted run never leaves a half-written file under the final name.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .geometry import NUM_DOMS

META_RANGE_COLUMNS = ("batch_id", "event_id", "first_pulse_index", "last_pulse_index")
DIRECTION_COLUMNS = ("azimuth", "zenith")
PULSE_COLUMNS = ("sensor_id", "time", "charge", "auxiliary")
SUBMISSION_COLUMNS = ("event_id", "azimuth", "zenith")
INT32_MAX = np.iinfo(np.int32).max
# Accepted Arrow types of the batch files' columns (Kaggle: int64, int16, int64, float64, bool). Float times are
# accepted if every value is a whole number (a simulator may write them so); float DOM ids never are.
PULSE_TYPE_CHECKS = {
    "event_id": (pa.types.is_integer, "an integer type"),
    "sensor_id": (pa.types.is_integer, "an integer type"),
    "time": (lambda t: pa.types.is_integer(t) or pa.types.is_floating(t), "an integer (or whole-number float) type"),
    "charge": (pa.types.is_floating, "a floating-point type"),
    "auxiliary": (pa.types.is_boolean, "bool"),
}


# ----------------------------------------------------------------------------------------------------------------
# File names, and writing a file aside then renaming it
# ----------------------------------------------------------------------------------------------------------------


def meta_path(kaggle_dir: str | Path, split: str) -> Path:
    return Path(kaggle_dir) / f"{split}_meta.parquet"


def batch_path(kaggle_dir: str | Path, split: str, batch_id: int) -> Path:
    return Path(kaggle_dir) / split / f"batch_{batch_id}.parquet"


def truth_path(kaggle_dir: str | Path, split: str) -> Path:
    """The simulator's truth of a split whose meta file has no labels (Kaggle's test split has none)."""
    return Path(kaggle_dir) / f"{split}_truth.parquet"


def aside_path(path: Path) -> Path:
    """The temporary name `path` is written under: hidden, in the same directory (so the rename is atomic), and
    per process (so parallel writers never share one)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def aside_files(directory: Path) -> list[Path]:
    """What interrupted writers left in `directory`: files still under their temporary names."""
    return sorted(directory.glob(".*.tmp-*")) if directory.is_dir() else []


@contextmanager
def written_aside(path: str | Path) -> Iterator[Path]:
    """`with written_aside(path) as partial:` write `partial`; it becomes `path` when the block completes and
    is removed when it raises (or is interrupted)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = aside_path(path)
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------------------------
# Parquet reading with the file's name in every error
# ----------------------------------------------------------------------------------------------------------------


def read_parquet_schema(path: Path) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except (pa.ArrowException, OSError) as error:
        raise ValueError(f"{path}: not a readable parquet file (truncated or corrupt?): {error}") from None


def read_parquet_table(path: Path, **kwargs) -> pa.Table:
    try:
        return pq.read_table(path, **kwargs)
    except (pa.ArrowException, OSError) as error:
        raise ValueError(f"{path}: not a readable parquet file (truncated or corrupt?): {error}") from None


# ----------------------------------------------------------------------------------------------------------------
# What a split holds: checked from the file footers before anything is read
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KaggleSplit:
    """One split of a Kaggle-layout directory, checked and ready to read batch by batch."""

    kaggle_dir: Path
    split: str
    batch_ids: tuple[int, ...]
    meta_schema: pa.Schema
    direction_columns: tuple[str, ...]  # DIRECTION_COLUMNS when the meta file has them, else ()
    extra_columns: tuple[str, ...]  # every other meta column (a simulator's truth, say)
    require_labels: bool
    num_doms: int = NUM_DOMS

    @property
    def meta_path(self) -> Path:
        return meta_path(self.kaggle_dir, self.split)

    def batch_path(self, batch_id: int) -> Path:
        return batch_path(self.kaggle_dir, self.split, batch_id)


def inspect_kaggle(
    kaggle_dir: str | Path,
    split: str = "train",
    batches: list[int] | None = None,
    *,
    num_doms: int = NUM_DOMS,
    require_labels: bool | None = None,
) -> KaggleSplit:
    """Check the meta file and every selected batch file's columns and types (footers only, no pulse data).

    `require_labels` defaults to `split == "train"`: a train split without azimuth/zenith is an error; other
    splits carry the labels when their meta file has them.
    """
    kaggle_dir = Path(kaggle_dir)
    path = meta_path(kaggle_dir, split)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (is {kaggle_dir} a Kaggle-layout directory with a {split} split?)")
    require_labels = split == "train" if require_labels is None else require_labels
    meta_schema = read_parquet_schema(path)
    meta_names = [name for name in meta_schema.names if not name.startswith("__index_level_")]

    for name in META_RANGE_COLUMNS:
        _check_column_type(path, meta_schema, name, pa.types.is_integer, "an integer type")
    present_labels = [name for name in DIRECTION_COLUMNS if name in meta_names]
    if require_labels and len(present_labels) < len(DIRECTION_COLUMNS):
        missing = [name for name in DIRECTION_COLUMNS if name not in meta_names]
        raise ValueError(f"{path}: split {split!r} needs labels, but column {missing[0]!r} is missing")
    for name in present_labels:
        _check_column_type(path, meta_schema, name, pa.types.is_floating, "a floating-point type")
    direction_columns = tuple(present_labels) if len(present_labels) == len(DIRECTION_COLUMNS) else ()
    extra_columns = tuple(n for n in meta_names if n not in META_RANGE_COLUMNS and n not in DIRECTION_COLUMNS)

    batch_ids = _select_batches(path, batches)
    for batch_id in batch_ids:
        _check_batch_file(batch_path(kaggle_dir, split, batch_id), path, batch_id)
    return KaggleSplit(kaggle_dir, split, tuple(batch_ids), meta_schema, direction_columns, extra_columns,
                       require_labels, num_doms)


def _check_column_type(path: Path, schema: pa.Schema, name: str, is_ok, expected: str) -> None:
    if name not in schema.names:
        raise ValueError(f"{path}: column {name!r} is missing")
    dtype = schema.field(name).type
    if not is_ok(dtype):
        raise ValueError(f"{path}: column {name!r} has type {dtype}, expected {expected}")


def _select_batches(path: Path, batches: list[int] | None) -> list[int]:
    """The batch ids to read: all batches of the meta file, or the requested ones (each must be there)."""
    batch_column = read_parquet_table(path, columns=["batch_id"]).column("batch_id")
    if batch_column.null_count:
        raise ValueError(f"{path}: column 'batch_id' has missing values")
    in_meta = set(np.unique(batch_column.to_numpy()).tolist())
    if batches is None:
        if not in_meta:
            raise ValueError(f"{path}: the meta file holds no events")
        return sorted(in_meta)
    missing = sorted(set(batches) - in_meta)
    if missing:
        raise ValueError(f"{path}: no events of batch {missing[0]} (batches requested: {len(batches)})")
    return sorted(set(batches))


def _check_batch_file(path: Path, meta: Path, batch_id: int) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (batch {batch_id} is listed in {meta})")
    schema = read_parquet_schema(path)  # a pandas-written file lists its event_id index as an ordinary column
    for name, (is_ok, expected) in PULSE_TYPE_CHECKS.items():
        _check_column_type(path, schema, name, is_ok, expected)


# ----------------------------------------------------------------------------------------------------------------
# One batch file, checked against its meta rows
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KaggleBatch:
    """One batch file's events, checked: flat pulse columns (with their file's types) and event offsets."""

    batch_id: int
    path: Path
    event_ids: np.ndarray  # (N,) int64, in pulse order
    offsets: np.ndarray  # (N + 1,) int64: event k's pulses are rows offsets[k] .. offsets[k + 1] - 1
    pulses: dict[str, pa.Array]  # PULSE_COLUMNS, values checked (DOM ids in range, times whole, charges > 0)
    labels: dict[str, pa.Array]  # the split's direction_columns as float64 (nulls kept where labels are optional)
    meta: pa.Table  # the batch's meta rows in pulse order (range, label and extra columns)


def read_batch(source: KaggleSplit, batch_id: int) -> KaggleBatch:
    """Read one batch file and its meta rows; check that the meta's pulse ranges tile the file, that every pulse
    row carries its event's id, and every value."""
    path = source.batch_path(batch_id)
    meta = _read_meta_of_batch(source, batch_id)
    event_ids = meta.column("event_id").to_numpy()
    table = read_parquet_table(path, columns=["event_id", *PULSE_COLUMNS])
    columns = {name: table.column(name).combine_chunks() for name in table.column_names}
    offsets = _pulse_offsets(source, batch_id, meta, columns["event_id"], event_ids)
    where = _EventLocator(path, offsets, event_ids)

    for name, values in columns.items():
        if values.null_count:
            raise ValueError(f"{path}: column {name!r} has a missing value (null or NaN) at "
                             f"{where.row(_first_null(values))}")
    _check_sensor_ids(columns["sensor_id"], source.num_doms, where)
    _check_times(columns["time"], where)
    _check_charges(columns["charge"], where)
    pulses = {name: columns[name] for name in PULSE_COLUMNS}
    return KaggleBatch(batch_id, path, event_ids, offsets, pulses, _checked_labels(source, meta, event_ids), meta)


def iter_batches(source: KaggleSplit) -> Iterator[KaggleBatch]:
    """`read_batch` of every selected batch, in batch-id order."""
    for batch_id in source.batch_ids:
        yield read_batch(source, batch_id)


def _read_meta_of_batch(source: KaggleSplit, batch_id: int) -> pa.Table:
    """The meta rows of one batch, in pulse order. The filter lets pyarrow skip the row groups of other batches
    (the full train meta has 130 M rows), so each worker reads only its own slice."""
    names = [*META_RANGE_COLUMNS, *source.direction_columns, *source.extra_columns]
    meta = read_parquet_table(source.meta_path, columns=names, filters=[("batch_id", "=", batch_id)])
    if meta.num_rows == 0:
        raise ValueError(f"{source.meta_path}: no events of batch {batch_id}")
    for name in META_RANGE_COLUMNS:
        column = meta.column(name)
        if column.null_count:
            row = _first_null(column.combine_chunks())
            raise ValueError(f"{source.meta_path}: column {name!r} has a missing value (meta row {row} of batch "
                             f"{batch_id})")
    return meta.sort_by("first_pulse_index")


def _pulse_offsets(source, batch_id, meta, pulse_event_ids: pa.Array, event_ids: np.ndarray) -> np.ndarray:
    """Check that the meta's inclusive pulse ranges tile the batch file in order and that every pulse row carries
    its event's id; return the (n_events + 1,) row offsets of the events."""
    path, meta_file = source.batch_path(batch_id), source.meta_path
    first = meta.column("first_pulse_index").to_numpy()
    last = meta.column("last_pulse_index").to_numpy()
    counts = last - first + 1
    offsets = np.concatenate([[0], np.cumsum(counts)])
    n_rows = len(pulse_event_ids)

    def mismatch(i: int, why: str) -> ValueError:
        return ValueError(f"{meta_file}: event_id {event_ids[i]} (batch {batch_id}): pulse range "
                          f"{first[i]}..{last[i]} does not match {path}: {why}")

    if (bad := np.flatnonzero(counts < 1)).size:
        raise mismatch(bad[0], "the range is empty")
    if (bad := np.flatnonzero(first != offsets[:-1])).size:
        raise mismatch(bad[0], f"expected it to start at row {offsets[bad[0]]}, right after the previous event")
    if offsets[-1] != n_rows:
        raise mismatch(len(first) - 1, f"the ranges cover {offsets[-1]} rows but the file has {n_rows}")
    if n_rows > INT32_MAX:
        raise ValueError(f"{path}: {n_rows} pulses is more than one batch file may hold (2**31 - 1)")
    expected = np.repeat(event_ids, counts)
    if (bad := np.flatnonzero(pulse_event_ids.to_numpy() != expected)).size:
        row = bad[0]
        event = np.searchsorted(offsets, row, side="right") - 1
        raise mismatch(event, f"row {row} has event_id {pulse_event_ids[row].as_py()}")
    return offsets


class _EventLocator:
    """Turns a pulse row of a batch file into 'event_id E (row R of FILE)' for error messages."""

    def __init__(self, path: Path, offsets: np.ndarray, event_ids: np.ndarray):
        self.path, self.offsets, self.event_ids = path, offsets, event_ids

    def row(self, row: int) -> str:
        event = np.searchsorted(self.offsets, row, side="right") - 1
        return f"event_id {self.event_ids[event]} (row {row})"


def _first_null(values: pa.Array) -> int:
    return int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])


def _check_sensor_ids(values: pa.Array, num_doms: int, where: _EventLocator) -> None:
    sensor_id = values.to_numpy()
    if sensor_id.min() < 0 or sensor_id.max() >= num_doms:
        row = int(np.flatnonzero((sensor_id < 0) | (sensor_id >= num_doms))[0])
        raise ValueError(f"{where.path}: column 'sensor_id' has {sensor_id[row]} at {where.row(row)}, outside the "
                         f"DOM ids 0..{num_doms - 1}")


def _check_times(values: pa.Array, where: _EventLocator) -> None:
    time = values.to_numpy()

    def fail(bad: np.ndarray, why: str) -> ValueError:
        row = int(np.flatnonzero(bad)[0])
        return ValueError(f"{where.path}: column 'time' has {time[row]} at {where.row(row)}: {why}")

    if pa.types.is_floating(values.type):
        if np.isnan(time).any():
            raise fail(np.isnan(time), "times must not be NaN")
        if (time != np.floor(time)).any():
            raise fail(time != np.floor(time), "times are whole nanoseconds in the Kaggle layout")
    if time.min() < 0:
        raise fail(time < 0, "times must not be negative")
    if time.max() > INT32_MAX:
        raise fail(time > INT32_MAX, "times are stored as int32 and this one does not fit")


def _check_charges(values: pa.Array, where: _EventLocator) -> None:
    charge = values.to_numpy()
    # log10(charge) feeds the model, so a charge must be a finite positive number (Kaggle's smallest is 0.025).
    if not (charge > 0).all() or np.isinf(charge).any():
        row = int(np.flatnonzero(~(charge > 0) | np.isinf(charge))[0])
        raise ValueError(f"{where.path}: column 'charge' has {charge[row]} at {where.row(row)}: charges must be "
                         f"finite and positive")


def _checked_labels(source: KaggleSplit, meta: pa.Table, event_ids: np.ndarray) -> dict[str, pa.Array]:
    labels = {}
    for name in source.direction_columns:
        values = meta.column(name).combine_chunks().cast(pa.float64())
        array = values.to_numpy(zero_copy_only=False)  # nulls become NaN
        if source.require_labels and (bad := np.flatnonzero(~np.isfinite(array))).size:
            raise ValueError(f"{source.meta_path}: column {name!r} has no valid label ({array[bad[0]]}) for "
                             f"event_id {event_ids[bad[0]]}")
        labels[name] = values
    return labels


# ----------------------------------------------------------------------------------------------------------------
# The simulator's truth of an unlabelled split
# ----------------------------------------------------------------------------------------------------------------


def read_truth(source: KaggleSplit, columns: tuple[str, ...] = (*DIRECTION_COLUMNS, "is_track")) -> dict | None:
    """`{split}_truth.parquet` as {column: (n,) array} sorted by event_id (those of `columns` it holds, plus
    event_id), or None when there is no truth file."""
    path = truth_path(source.kaggle_dir, source.split)
    if not path.is_file():
        return None
    names = read_parquet_schema(path).names
    for name in ("event_id", *DIRECTION_COLUMNS):
        if name not in names:
            raise ValueError(f"{path}: column {name!r} is missing")
    table = read_parquet_table(path, columns=["event_id", *[c for c in columns if c in names]]).sort_by("event_id")
    truth = {name: table.column(name).to_numpy() for name in table.column_names}
    if (duplicate := np.flatnonzero(np.diff(truth["event_id"]) == 0)).size:
        raise ValueError(f"{path}: event_id {truth['event_id'][duplicate[0]]} appears twice")
    return truth


def truth_of_events(truth: dict, event_ids: np.ndarray, source: KaggleSplit) -> dict:
    """The rows of `read_truth`'s result for `event_ids`, in their order; every event must have one."""
    where = np.clip(np.searchsorted(truth["event_id"], event_ids), 0, len(truth["event_id"]) - 1)
    if (missing := np.flatnonzero(truth["event_id"][where] != event_ids)).size:
        raise ValueError(f"{truth_path(source.kaggle_dir, source.split)}: no label for event_id "
                         f"{event_ids[missing[0]]} of {source.meta_path.name}")
    return {name: values[where] for name, values in truth.items() if name != "event_id"}


# ----------------------------------------------------------------------------------------------------------------
# Submissions
# ----------------------------------------------------------------------------------------------------------------


@contextmanager
def submission_writer(path: str | Path):
    """`with submission_writer(path) as write:` call `write(event_ids, azimuth, zenith)` once per batch; the CSV
    (header event_id,azimuth,zenith, as the competition reads it) appears only once complete."""
    with written_aside(path) as partial, open(partial, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SUBMISSION_COLUMNS)

        def write(event_ids, azimuth, zenith) -> None:
            writer.writerows(zip(np.asarray(event_ids).tolist(), np.asarray(azimuth).tolist(),
                                 np.asarray(zenith).tolist()))

        yield write


__all__ = [
    "META_RANGE_COLUMNS", "DIRECTION_COLUMNS", "PULSE_COLUMNS", "SUBMISSION_COLUMNS", "KaggleSplit", "KaggleBatch",
    "inspect_kaggle", "read_batch", "iter_batches", "read_truth", "truth_of_events", "submission_writer",
    "written_aside", "aside_path", "meta_path", "batch_path", "truth_path",
]
