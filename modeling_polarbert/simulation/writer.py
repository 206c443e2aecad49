"""Writing simulated events in the Kaggle layout: batch files, the meta file and the truth of a test split, each
written aside and renamed when complete (`kaggle_layout.written_aside`)."""

from __future__ import annotations

import os
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..geometry import SENSOR_GEOMETRY_PATH
from ..kaggle_layout import (
    META_RANGE_COLUMNS,
    PULSE_COLUMNS,
    aside_path,
    batch_path,
    meta_path,
    truth_path,
    written_aside,
)
from .config import DEFAULT_CONFIG, TRUTH_COLUMNS, SimulatorConfig
from .events import check_simulation_args, concatenate_chunks, iter_simulated_chunks, meta_frame, take_events


@lru_cache(maxsize=1)
def batch_schema() -> pa.Schema:
    """The arrow schema of a Kaggle batch file, pandas metadata included (event_id is the pandas index)."""
    empty = pd.DataFrame(
        {"sensor_id": np.zeros(0, np.int16), "time": np.zeros(0, np.int64), "charge": np.zeros(0, np.float64),
         "auxiliary": np.zeros(0, bool)},
        index=pd.Index(np.zeros(0, np.int64), name="event_id"),
    )
    return pa.Schema.from_pandas(empty, preserve_index=True)


class _BatchWriter:
    """Streams events into {split}/batch_{b}.parquet files of `batch_size` events, each written atomically."""

    ROW_GROUP_ROWS = 1 << 20

    def __init__(self, out_dir: Path, split: str, batch_size: int):
        self.out_dir, self.split, self.batch_size = out_dir, split, batch_size
        self.batch_id, self.events_in_batch, self.rows_in_batch = 1, 0, 0
        self.buffer, self.writer, self.meta = [], None, []

    def add(self, data: dict):
        while len(data["event_id"]):
            room = self.batch_size - self.events_in_batch
            head = take_events(data, room)
            n_head, rows_head = len(head["event_id"]), int(head["num_pulses"].sum())
            meta = meta_frame(head, first_row=self.rows_in_batch)
            meta.insert(0, "batch_id", np.int64(self.batch_id))
            self.meta.append(meta)
            self.buffer.append(head)
            self.events_in_batch += n_head
            self.rows_in_batch += rows_head
            if sum(len(b["time"]) for b in self.buffer) >= self.ROW_GROUP_ROWS:
                self._flush()
            if self.events_in_batch == self.batch_size:
                self._close_batch()
            data = {k: (v[rows_head:] if k in PULSE_COLUMNS else v[n_head:]) for k, v in data.items()}

    def _flush(self):
        if not self.buffer:
            return
        data = concatenate_chunks(self.buffer)
        self.buffer = []
        event_id = np.repeat(data["event_id"], data["num_pulses"]).astype(np.int64)
        columns = [pa.array(data[name]) for name in PULSE_COLUMNS] + [pa.array(event_id)]
        table = pa.Table.from_arrays(columns, schema=batch_schema())
        if self.writer is None:
            # Written aside across several row groups, so the name is kept here and renamed in _close_batch.
            self.writer = pq.ParquetWriter(aside_path(self._path()), batch_schema())
        self.writer.write_table(table)

    def _path(self) -> Path:
        return batch_path(self.out_dir, self.split, self.batch_id)

    def _close_batch(self):
        self._flush()
        if self.writer is not None:
            self.writer.close()
            os.replace(aside_path(self._path()), self._path())
        self.writer = None
        self.batch_id += 1
        self.events_in_batch = self.rows_in_batch = 0

    def finish(self) -> pd.DataFrame:
        if self.events_in_batch:
            self._close_batch()
        return pd.concat(self.meta, ignore_index=True)

    def abort(self):
        if self.writer is not None:
            self.writer.close()
            aside_path(self._path()).unlink(missing_ok=True)


def _write_parquet_atomically(frame: pd.DataFrame, path: Path):
    with written_aside(path) as partial:
        frame.to_parquet(partial, index=False)


def _check_output_dir(out_dir: Path, split: str):
    existing = sorted((out_dir / split).glob("batch_*.parquet")) if (out_dir / split).is_dir() else []
    if meta_path(out_dir, split).exists() or existing:
        raise ValueError(
            f"{out_dir} already holds a {split} split ({split}_meta.parquet or {split}/batch_*.parquet); "
            "write to a new directory or delete those files first"
        )


def simulate_kaggle_dir(out_dir, n_events: int, seed: int = 0, batch_size: int = 200_000, split: str = "train",
                        num_proc: int = 1, config: SimulatorConfig = DEFAULT_CONFIG, progress: bool = True,
                        event_id_offset: int = 0) -> pd.DataFrame:
    """Write `n_events` simulated events to `out_dir` in the Kaggle layout; return the meta table written.

    `event_id_offset` is added to every event id, so that directories simulated separately (other seeds, in
    parallel processes) can be combined into one set with unique ids (`preparation.combine_prepared`).

    Files: sensor_geometry.csv (the shipped copy), {split}/batch_{b}.parquet (b = 1, 2, ...; `batch_size` events
    each, pandas-written, event_id index), {split}_meta.parquet. For split="train" the meta file carries
    azimuth, zenith and the truth columns (energy, is_track, vertex_x/y/z); for split="test" it has only
    batch_id, event_id, first/last_pulse_index (as Kaggle's), and the truth goes to test_truth.parquet.
    Every file is written under a temporary name and renamed when complete.
    """
    check_simulation_args(n_events, seed, split, num_proc)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if int(event_id_offset) < 0:
        raise ValueError(f"event_id_offset must be a non-negative integer, got {event_id_offset}")
    out_dir = Path(out_dir)
    _check_output_dir(out_dir, split)
    (out_dir / split).mkdir(parents=True, exist_ok=True)
    geometry_path = out_dir / "sensor_geometry.csv"
    with written_aside(geometry_path) as partial:
        shutil.copyfile(SENSOR_GEOMETRY_PATH, partial)

    writer = _BatchWriter(out_dir, split, int(batch_size))
    try:
        for result in iter_simulated_chunks(int(n_events), seed, split, num_proc, config, progress):
            result["event_id"] = result["event_id"] + np.int64(event_id_offset)
            writer.add(result)
        meta = writer.finish()
    except BaseException:
        writer.abort()
        raise
    if split == "train":
        _write_parquet_atomically(meta, meta_path(out_dir, split))
    else:
        _write_parquet_atomically(meta[list(META_RANGE_COLUMNS)], meta_path(out_dir, split))
        _write_parquet_atomically(meta[["event_id", *TRUTH_COLUMNS]], truth_path(out_dir, split))
    return meta
