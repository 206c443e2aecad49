"""The Kaggle "IceCube - Neutrinos in Deep Ice" layout -> an Arrow-backed Hugging Face `datasets` dataset.

One row per event, every pulse kept with its exact value (down-sampling is the collator's job, so that every
epoch draws afresh). The schema (`output_schema`):

| column | type | note |
| --- | --- | --- |
| event_id | int64 | |
| batch_id | int32 | N of `batch_N.parquet` |
| sensor_id | list<int16> | DOM ids 0..5159 stay integers (the reference code's float16 lost ids above 2048) |
| time | list<int32> | ns; Kaggle times are integers of about 5,000-30,000 (checked to fit int32) |
| charge | list<float32> | p.e.; lossless for Kaggle charges, see below |
| auxiliary | list<bool> | |
| n_pulses | int32 | the length column for length-grouped batching |
| azimuth, zenith | float64 | where the meta file has them (required for the train split) |
| ... | as in the meta | every other meta column (a simulator's truth, say), with its own type |

Charges: Kaggle charges are multiples of 0.025 p.e. float32 keeps 24 significant bits, so distinct multiples of
0.025 stay distinct below about 200,000 p.e. (far above any pulse) and `round(charge32 / 0.025) * 0.025`
gives back the float64 value; the stored value is exactly `float32(original)`.

The pulses of an event keep their file order (the Kaggle files are time-ordered within an event).

All work is columnar (pyarrow/numpy on whole batch files): the list columns are built from the meta's pulse
ranges as offsets (`pa.ListArray.from_arrays`), never by a Python loop over events or pulses.

`prepare_kaggle` writes a dataset that `datasets.load_from_disk` reads (the `save_to_disk` layout). Each batch
file is converted (in parallel with `num_proc`) into its own Arrow file in `OUT_DIR.incomplete/`, written under a
temporary name and renamed when complete. Once all are there they become the dataset's shards (hard links, no
copy; one shard per batch file, memory-mapped when loaded, so nothing is held in RAM) in
`OUT_DIR.incomplete/dataset`, which is renamed to OUT_DIR in one step. An interrupted run leaves no OUT_DIR, and
running it again converts only the batches still missing. Bad input (`ValueError` / `FileNotFoundError`
naming the file, the column and the event id) removes everything the run wrote: there is nothing to resume
until the input is fixed.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

NUM_DOMS = 5160
INT32_MAX = np.iinfo(np.int32).max
META_RANGE_COLUMNS = ("batch_id", "event_id", "first_pulse_index", "last_pulse_index")
LABEL_COLUMNS = ("azimuth", "zenith")
PULSE_COLUMNS = ("sensor_id", "time", "charge", "auxiliary")
# Accepted Arrow types of the batch files' columns (Kaggle: int64, int16, int64, float64, bool). Float times are
# accepted if every value is a whole number (a simulator may write them so); float DOM ids never are.
PULSE_TYPE_CHECKS = {
    "event_id": (pa.types.is_integer, "an integer type"),
    "sensor_id": (pa.types.is_integer, "an integer type"),
    "time": (lambda t: pa.types.is_integer(t) or pa.types.is_floating(t), "an integer (or whole-number float) type"),
    "charge": (pa.types.is_floating, "a floating-point type"),
    "auxiliary": (pa.types.is_boolean, "bool"),
}
BASE_FIELDS = [
    pa.field("event_id", pa.int64()),
    pa.field("batch_id", pa.int32()),
    pa.field("sensor_id", pa.list_(pa.int16())),
    pa.field("time", pa.list_(pa.int32())),
    pa.field("charge", pa.list_(pa.float32())),
    pa.field("auxiliary", pa.list_(pa.bool_())),
    pa.field("n_pulses", pa.int32()),
]
WORK_FORMAT_VERSION = 1


# ----------------------------------------------------------------------------------------------------------------
# Batch selection ("1-50,655")
# ----------------------------------------------------------------------------------------------------------------


def parse_batch_selection(text: str) -> list[int]:
    """Parse a batch selection such as `"1-50,655"` into sorted, unique batch ids (ranges are inclusive)."""
    selected = set()
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not match:
            raise ValueError(f"bad batch selection {text!r}: {part!r} is not N or N-M (e.g. 1-50,655)")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if high < low:
            raise ValueError(f"bad batch selection {text!r}: range {part!r} runs backwards")
        selected.update(range(low, high + 1))
    return sorted(selected)


# ----------------------------------------------------------------------------------------------------------------
# What a split holds: checked from the file footers before anything is converted
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KaggleSplit:
    """One split of a Kaggle-layout directory, checked and ready to convert batch by batch."""

    kaggle_dir: Path
    split: str
    batch_ids: tuple[int, ...]
    schema: pa.Schema  # the output rows' schema, with the `datasets` Features in its metadata
    label_columns: tuple[str, ...]
    extra_columns: tuple[str, ...]
    require_labels: bool
    num_doms: int = NUM_DOMS

    @property
    def meta_path(self) -> Path:
        return self.kaggle_dir / f"{self.split}_meta.parquet"

    def batch_path(self, batch_id: int) -> Path:
        return self.kaggle_dir / self.split / f"batch_{batch_id}.parquet"

    @property
    def features(self) -> datasets.Features:
        return datasets.Features.from_arrow_schema(self.schema)


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
    meta_path = kaggle_dir / f"{split}_meta.parquet"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: meta file not found (is {kaggle_dir} a Kaggle-layout directory?)")
    require_labels = split == "train" if require_labels is None else require_labels
    meta_schema = pq.read_schema(meta_path)
    meta_names = [name for name in meta_schema.names if not name.startswith("__index_level_")]

    for name in META_RANGE_COLUMNS:
        _check_column_type(meta_path, meta_schema, name, pa.types.is_integer, "an integer type")
    present_labels = [name for name in LABEL_COLUMNS if name in meta_names]
    if require_labels and len(present_labels) < len(LABEL_COLUMNS):
        missing = [name for name in LABEL_COLUMNS if name not in meta_names]
        raise ValueError(f"{meta_path}: split {split!r} needs labels, but column {missing[0]!r} is missing")
    for name in present_labels:
        _check_column_type(meta_path, meta_schema, name, pa.types.is_floating, "a floating-point type")
    label_columns = tuple(present_labels) if len(present_labels) == len(LABEL_COLUMNS) else ()
    extra_columns = tuple(n for n in meta_names if n not in META_RANGE_COLUMNS and n not in LABEL_COLUMNS)
    clashes = [n for n in extra_columns if n in {f.name for f in BASE_FIELDS}]
    if clashes:
        raise ValueError(f"{meta_path}: meta column {clashes[0]!r} clashes with an output column of the same name")

    batch_ids = _select_batches(meta_path, batches)
    for batch_id in batch_ids:
        _check_batch_file(kaggle_dir / split / f"batch_{batch_id}.parquet", meta_path, batch_id)

    fields = BASE_FIELDS + [pa.field(n, pa.float64()) for n in label_columns]
    fields += [meta_schema.field(n).remove_metadata() for n in extra_columns]
    # The `datasets` Features travel in the schema metadata, so `Dataset.from_file` reads them back exactly.
    schema = datasets.Features.from_arrow_schema(pa.schema(fields)).arrow_schema
    return KaggleSplit(kaggle_dir, split, tuple(batch_ids), schema, label_columns, extra_columns,
                       require_labels, num_doms)


def _check_column_type(path: Path, schema: pa.Schema, name: str, is_ok, expected: str) -> None:
    if name not in schema.names:
        raise ValueError(f"{path}: column {name!r} is missing")
    dtype = schema.field(name).type
    if not is_ok(dtype):
        raise ValueError(f"{path}: column {name!r} has type {dtype}, expected {expected}")


def _select_batches(meta_path: Path, batches: list[int] | None) -> list[int]:
    """The batch ids to convert: all batches of the meta file, or the requested ones (each must be there)."""
    batch_column = pq.read_table(meta_path, columns=["batch_id"]).column("batch_id")
    if batch_column.null_count:
        raise ValueError(f"{meta_path}: column 'batch_id' has missing values")
    in_meta = set(np.unique(batch_column.to_numpy()).tolist())
    if batches is None:
        if not in_meta:
            raise ValueError(f"{meta_path}: the meta file holds no events")
        return sorted(in_meta)
    missing = sorted(set(batches) - in_meta)
    if missing:
        raise ValueError(f"{meta_path}: no events of batch {missing[0]} (batches requested: {len(batches)})")
    return sorted(set(batches))


def _check_batch_file(path: Path, meta_path: Path, batch_id: int) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: batch file not found (batch {batch_id} is listed in {meta_path})")
    schema = pq.read_schema(path)  # a pandas-written file lists its event_id index as an ordinary column
    for name, (is_ok, expected) in PULSE_TYPE_CHECKS.items():
        _check_column_type(path, schema, name, is_ok, expected)


# ----------------------------------------------------------------------------------------------------------------
# One batch file -> one Arrow table of events (validated, vectorised)
# ----------------------------------------------------------------------------------------------------------------


def convert_batch(source: KaggleSplit, batch_id: int) -> pa.Table:
    """Convert one batch file and its meta rows into a table of events with `source.schema`."""
    path = source.batch_path(batch_id)
    meta = _read_meta_of_batch(source, batch_id)
    event_ids = meta.column("event_id").to_numpy()
    pulses = pq.read_table(path, columns=["event_id", *PULSE_COLUMNS])
    columns = {name: pulses.column(name).combine_chunks() for name in pulses.column_names}
    offsets = _pulse_offsets(source, batch_id, meta, columns["event_id"], event_ids)
    where = _EventLocator(path, offsets, event_ids)

    for name, values in columns.items():
        if values.null_count:
            raise ValueError(f"{path}: column {name!r} has a missing value (null or NaN) at "
                             f"{where.row(_first_null(values))}")
    sensor_id = _checked_sensor_ids(columns["sensor_id"], source.num_doms, where)
    time = _checked_times(columns["time"], where)
    charge = _checked_charges(columns["charge"], where)
    labels = _checked_labels(source, meta, event_ids)

    list_offsets = pa.array(offsets.astype(np.int32))
    arrays = {
        "event_id": pa.array(event_ids, pa.int64()),
        "batch_id": pa.array(np.full(len(event_ids), batch_id, dtype=np.int32)),
        "sensor_id": pa.ListArray.from_arrays(list_offsets, sensor_id),
        "time": pa.ListArray.from_arrays(list_offsets, time),
        "charge": pa.ListArray.from_arrays(list_offsets, charge),
        "auxiliary": pa.ListArray.from_arrays(list_offsets, columns["auxiliary"]),
        "n_pulses": pa.array(np.diff(offsets).astype(np.int32)),
        **labels,
        **{name: meta.column(name).combine_chunks() for name in source.extra_columns},
    }
    return pa.Table.from_arrays([arrays[name] for name in source.schema.names], schema=source.schema)


def _read_meta_of_batch(source: KaggleSplit, batch_id: int) -> pa.Table:
    """The meta rows of one batch, in pulse order. The filter lets pyarrow skip the row groups of other batches
    (the full train meta has 130 M rows), so each worker reads only its own slice."""
    names = [*META_RANGE_COLUMNS, *source.label_columns, *source.extra_columns]
    meta = pq.read_table(source.meta_path, columns=names, filters=[("batch_id", "=", batch_id)])
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
    path, meta_path = source.batch_path(batch_id), source.meta_path
    first = meta.column("first_pulse_index").to_numpy()
    last = meta.column("last_pulse_index").to_numpy()
    counts = last - first + 1
    offsets = np.concatenate([[0], np.cumsum(counts)])
    n_rows = len(pulse_event_ids)

    def mismatch(i: int, why: str) -> ValueError:
        return ValueError(f"{meta_path}: event_id {event_ids[i]} (batch {batch_id}): pulse range "
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


def _checked_sensor_ids(values: pa.Array, num_doms: int, where: _EventLocator) -> pa.Array:
    sensor_id = values.to_numpy()
    if sensor_id.min() < 0 or sensor_id.max() >= num_doms:
        row = int(np.flatnonzero((sensor_id < 0) | (sensor_id >= num_doms))[0])
        raise ValueError(f"{where.path}: column 'sensor_id' has {sensor_id[row]} at {where.row(row)}, outside the "
                         f"DOM ids 0..{num_doms - 1}")
    return values.cast(pa.int16())


def _checked_times(values: pa.Array, where: _EventLocator) -> pa.Array:
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
    return values.cast(pa.int32())


def _checked_charges(values: pa.Array, where: _EventLocator) -> pa.Array:
    charge = values.to_numpy()
    # log10(charge) feeds the model, so a charge must be a finite positive number (Kaggle's smallest is 0.025).
    if not (charge > 0).all() or np.isinf(charge).any():
        row = int(np.flatnonzero(~(charge > 0) | np.isinf(charge))[0])
        raise ValueError(f"{where.path}: column 'charge' has {charge[row]} at {where.row(row)}: charges must be "
                         f"finite and positive")
    return values.cast(pa.float32(), safe=False)  # lossless for Kaggle charges: see the module docstring


def _checked_labels(source: KaggleSplit, meta: pa.Table, event_ids: np.ndarray) -> dict[str, pa.Array]:
    labels = {}
    for name in source.label_columns:
        values = meta.column(name).combine_chunks().cast(pa.float64())
        array = values.to_numpy(zero_copy_only=False)  # nulls become NaN
        if source.require_labels and (bad := np.flatnonzero(~np.isfinite(array))).size:
            raise ValueError(f"{source.meta_path}: column {name!r} has no valid label ({array[bad[0]]}) for "
                             f"event_id {event_ids[bad[0]]}")
        labels[name] = values
    return labels


# ----------------------------------------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------------------------------------


def load_kaggle(
    kaggle_dir: str | Path,
    split: str = "train",
    batches: list[int] | None = None,
    *,
    num_doms: int = NUM_DOMS,
    require_labels: bool | None = None,
) -> datasets.Dataset:
    """Convert a Kaggle-layout split into an in-memory `datasets.Dataset` without writing anything (for small
    selections: simulated sets, a few batches). Same rows and schema as `prepare_kaggle`."""
    source = inspect_kaggle(kaggle_dir, split, batches, num_doms=num_doms, require_labels=require_labels)
    table = pa.concat_tables([convert_batch(source, batch_id) for batch_id in source.batch_ids])
    return datasets.Dataset(table, info=_dataset_info(source))


def prepare_kaggle(
    kaggle_dir: str | Path,
    out_dir: str | Path,
    split: str = "train",
    batches: list[int] | None = None,
    num_proc: int = 1,
    *,
    num_doms: int = NUM_DOMS,
    require_labels: bool | None = None,
    progress: bool = True,
) -> datasets.Dataset:
    """Convert a Kaggle-layout split into a dataset saved with `save_to_disk` in `out_dir`; return it loaded
    back (memory-mapped) with `datasets.load_from_disk`.

    Args:
        kaggle_dir: folder with `{split}_meta.parquet` and `{split}/batch_N.parquet`.
        out_dir: where the dataset goes; must not exist yet (it appears only once complete).
        split: `"train"` (labels required) or `"test"`.
        batches: batch ids to convert (see `parse_batch_selection`); all batches of the meta file by default.
        num_proc: batch files converted in parallel (one process each).
        num_doms: DOM ids must lie in `0..num_doms-1`.
        require_labels: defaults to `split == "train"`.
        progress: show a progress bar over batches.
    """
    if num_proc < 1:
        raise ValueError(f"num_proc must be at least 1, got {num_proc}")
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise ValueError(f"{out_dir}: output directory already exists; remove it or choose another")
    source = inspect_kaggle(kaggle_dir, split, batches, num_doms=num_doms, require_labels=require_labels)
    work_dir = out_dir.parent / f"{out_dir.name}.incomplete"
    try:
        batches_dir = _start_or_resume(work_dir, source)
        _convert_missing_batches(source, batches_dir, num_proc, progress)
        _assemble(source, batches_dir, work_dir / "dataset", out_dir)
    except (ValueError, FileNotFoundError):
        # Bad input: nothing is worth resuming until it is fixed, so leave nothing behind.
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    except BaseException:
        # Interrupted or crashed: keep the completed batches so that a re-run converts only the rest.
        _remove_partial_files(work_dir)
        raise
    shutil.rmtree(work_dir, ignore_errors=True)
    return datasets.load_from_disk(str(out_dir))


# ----------------------------------------------------------------------------------------------------------------
# prepare_kaggle's steps: work directory, parallel conversion, assembly
# ----------------------------------------------------------------------------------------------------------------


def _start_or_resume(work_dir: Path, source: KaggleSplit) -> Path:
    """Create the work directory, or reuse the one an interrupted run left if it converted the same input
    into the same schema; a stale one (other input, other schema) is discarded."""
    stamp = {
        "format": WORK_FORMAT_VERSION,
        "kaggle_dir": str(source.kaggle_dir.resolve()),
        "split": source.split,
        "num_doms": source.num_doms,
        "schema": source.schema.to_string(show_schema_metadata=False),
    }
    stamp_path = work_dir / "prepare.json"
    if work_dir.exists():
        try:
            reusable = json.loads(stamp_path.read_text()) == stamp
        except (OSError, ValueError):
            reusable = False
        if not reusable:
            shutil.rmtree(work_dir)
    _remove_partial_files(work_dir)
    batches_dir = work_dir / "batches"
    batches_dir.mkdir(parents=True, exist_ok=True)
    stamp_path.write_text(json.dumps(stamp, indent=1))
    return batches_dir


def _remove_partial_files(work_dir: Path) -> None:
    """Remove what an interrupted run was still writing: temporary batch files and a half-saved dataset."""
    for partial in (work_dir / "batches").glob("*.tmp*"):
        partial.unlink(missing_ok=True)
    shutil.rmtree(work_dir / "dataset", ignore_errors=True)


def _batch_arrow_path(batches_dir: Path, batch_id: int) -> Path:
    return batches_dir / f"batch_{batch_id}.arrow"


def _convert_and_write(job: tuple[KaggleSplit, int, Path]) -> int:
    """Convert one batch and write it as an Arrow stream file, renamed into place only once complete."""
    source, batch_id, batches_dir = job
    table = convert_batch(source, batch_id)
    final_path = _batch_arrow_path(batches_dir, batch_id)
    partial_path = final_path.with_name(f"{final_path.name}.tmp{os.getpid()}")
    with pa.OSFile(str(partial_path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(partial_path, final_path)
    return batch_id


def _convert_missing_batches(source: KaggleSplit, batches_dir: Path, num_proc: int, progress: bool) -> None:
    todo = [b for b in source.batch_ids if not _batch_arrow_path(batches_dir, b).exists()]
    jobs = [(source, batch_id, batches_dir) for batch_id in todo]
    with tqdm(total=len(source.batch_ids), initial=len(source.batch_ids) - len(todo), unit="batch",
              desc=f"prepare {source.split}", disable=not progress) as bar:
        if num_proc == 1 or len(jobs) <= 1:
            for job in jobs:
                _convert_and_write(job)
                bar.update()
            return
        # fork on Linux (as `datasets.map(num_proc=...)` does; Arrow re-creates its thread pools in the child),
        # spawn elsewhere.
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        with context.Pool(min(num_proc, len(jobs))) as pool:
            for _ in pool.imap_unordered(_convert_and_write, jobs):
                bar.update()


def _assemble(source: KaggleSplit, batches_dir: Path, saving_dir: Path, out_dir: Path) -> None:
    """Lay the per-batch Arrow files out as a `save_to_disk` dataset and rename it into place.

    The batch files already are what `save_to_disk` would write (Arrow streams whose schema metadata holds the
    Features), so they are hard-linked as the shards instead of copied: no second copy of a 200 GB dataset, on
    disk or in time. The two JSON files are those `save_to_disk` writes and `load_from_disk` reads (a format
    `datasets` keeps loadable across versions, since saved datasets outlive them)."""
    saving_dir.mkdir(parents=True)
    n_shards = len(source.batch_ids)
    shard_names = [f"data-{index:05d}-of-{n_shards:05d}.arrow" for index in range(n_shards)]
    for batch_id, shard_name in zip(source.batch_ids, shard_names):
        _link_or_copy(_batch_arrow_path(batches_dir, batch_id), saving_dir / shard_name)
    _dataset_info(source).write_to_directory(str(saving_dir))
    fingerprint_of = json.dumps([source.schema.to_string(), source.split, list(source.batch_ids)])
    state = {
        "_data_files": [{"filename": name} for name in shard_names],
        "_fingerprint": hashlib.sha256(fingerprint_of.encode()).hexdigest()[:16],
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": source.split,
    }
    (saving_dir / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(saving_dir, out_dir)  # one rename: OUT_DIR is either absent or complete


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        shutil.copyfile(source, target)


def _dataset_info(source: KaggleSplit) -> datasets.DatasetInfo:
    return datasets.DatasetInfo(
        description=f"IceCube events in the Kaggle layout, split {source.split!r}, converted by polarbert prepare",
        features=source.features,
    )


__all__ = ["parse_batch_selection", "inspect_kaggle", "convert_batch", "load_kaggle", "prepare_kaggle",
           "KaggleSplit"]
