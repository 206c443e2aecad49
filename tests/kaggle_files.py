"""Small hand-built directories in the Kaggle "IceCube - Neutrinos in Deep Ice" layout, for tests.

The layout of the competition's data: `{split}_meta.parquet` with one row per event (batch_id, event_id,
first_pulse_index, last_pulse_index inclusive, azimuth/zenith in train) and `{split}/batch_{N}.parquet` with one row
per pulse, written by pandas with `event_id` as the index column. `layout="plain"` writes `event_id` as an
ordinary column instead (what pyarrow or polars would write).

Typical use::

    from kaggle_files import KaggleEvent, write_kaggle_dir, edge_case_events  # tests/ is on sys.path under pytest
    root = write_kaggle_dir(tmp_path / "kaggle", {1: edge_case_events(first_event_id=1)})
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

GEOMETRY_CSV = Path(__file__).resolve().parents[1] / "modeling_polarbert" / "sensor_geometry.csv"
PULSE_COLUMNS = ["sensor_id", "time", "charge", "auxiliary"]


@dataclass
class KaggleEvent:
    """One event: its pulses (in file order, i.e. time order) and its per-event meta values."""

    event_id: int
    sensor_id: list[int]
    time: list[int]
    charge: list[float]
    auxiliary: list[bool]
    azimuth: float | None = None
    zenith: float | None = None
    extra: dict = field(default_factory=dict)  # extra meta columns, e.g. a simulator's energy

    @property
    def n_pulses(self) -> int:
        return len(self.sensor_id)


def random_event(rng: np.random.Generator, event_id: int, n_pulses: int, aux_fraction: float = 0.4) -> KaggleEvent:
    """A random event with time-ordered pulses, charges on the Kaggle 0.025 p.e. grid and a random direction."""
    return KaggleEvent(
        event_id=event_id,
        sensor_id=rng.integers(0, 5160, n_pulses).tolist(),
        time=np.sort(rng.integers(5_000, 30_000, n_pulses)).tolist(),
        charge=(rng.integers(1, 400, n_pulses) * 0.025).tolist(),
        auxiliary=(rng.random(n_pulses) < aux_fraction).tolist(),
        azimuth=float(rng.uniform(0, 2 * np.pi)),
        zenith=float(rng.uniform(0, np.pi)),
    )


def edge_case_events(first_event_id: int = 1, seed: int = 0) -> list[KaggleEvent]:
    """The events where a conversion goes wrong first, with consecutive event ids: a single pulse, only auxiliary
    pulses, DOM ids above 2048 (float16 cannot hold them), every pulse at one time, more than 127 primary pulses,
    a long mixed event, and a few random ones."""
    rng = np.random.default_rng(seed)
    eid = iter(range(first_event_id, first_event_id + 100))
    events = [
        KaggleEvent(next(eid), [17], [10_000], [1.025], [False], 0.5, 1.0),  # a single pulse
        # all auxiliary: nothing may be masked in pretraining
        KaggleEvent(next(eid), [1, 2, 3], [6_000, 6_010, 6_020], [0.025, 0.5, 2.0], [True] * 3, 1.5, 0.2),
        # DOM ids above 2048: float16 (the reference code's bug) cannot hold them exactly
        KaggleEvent(next(eid), [2049, 2051, 4097, 5159], [7_000, 7_001, 7_002, 7_003], [0.975, 1.0, 1.025, 3.0],
                    [False, False, True, False], 3.0, 2.5),
        # every pulse at one time
        KaggleEvent(next(eid), [10, 11, 12, 13, 14], [12_345] * 5, [0.1, 0.2, 0.3, 0.4, 0.5], [False, True] * 2 + [False],
                    6.0, 3.1),
    ]
    # more than 127 primary pulses (plus auxiliary ones), and a long mixed event
    long_primary = random_event(rng, next(eid), 300, aux_fraction=0.2)
    mixed = random_event(rng, next(eid), 160, aux_fraction=0.5)
    return events + [long_primary, mixed] + [random_event(rng, next(eid), int(n)) for n in rng.integers(2, 90, 6)]


def batch_frame(events: list[KaggleEvent]) -> pd.DataFrame:
    """The batch file's rows with Kaggle dtypes: event_id int64, sensor_id int16, time int64, charge float64,
    auxiliary bool."""
    counts = [e.n_pulses for e in events]
    return pd.DataFrame({
        "event_id": np.repeat(np.array([e.event_id for e in events], dtype=np.int64), counts),
        "sensor_id": np.concatenate([np.asarray(e.sensor_id) for e in events]).astype(np.int16),
        "time": np.concatenate([np.asarray(e.time) for e in events]).astype(np.int64),
        "charge": np.concatenate([np.asarray(e.charge) for e in events]).astype(np.float64),
        "auxiliary": np.concatenate([np.asarray(e.auxiliary) for e in events]).astype(bool),
    })


def meta_frame(batches: dict[int, list[KaggleEvent]], with_labels: bool) -> pd.DataFrame:
    """The meta file's rows: pulse ranges are row offsets inside each batch file, last index inclusive."""
    rows = []
    for batch_id, events in batches.items():
        first = 0
        for event in events:
            row = {"batch_id": batch_id, "event_id": event.event_id, "first_pulse_index": first,
                   "last_pulse_index": first + event.n_pulses - 1}
            if with_labels:
                row.update(azimuth=event.azimuth, zenith=event.zenith)
            row.update(event.extra)
            rows.append(row)
            first += event.n_pulses
    frame = pd.DataFrame(rows)
    for name in ("batch_id", "event_id", "first_pulse_index", "last_pulse_index"):
        frame[name] = frame[name].astype(np.int64)
    return frame


def write_batch_file(path: Path, frame: pd.DataFrame, layout: str = "pandas") -> None:
    """Write one batch file as Kaggle did (`layout="pandas"`: event_id as the index) or as plain columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout == "pandas":
        frame.set_index("event_id").to_parquet(path)
    elif layout == "plain":
        frame.to_parquet(path, index=False)
    else:
        raise ValueError(f"unknown layout {layout!r}")


def write_kaggle_dir(
    root: str | Path,
    batches: dict[int, list[KaggleEvent]],
    split: str = "train",
    layout: str = "pandas",
    with_labels: bool | None = None,
) -> Path:
    """Write `batches` ({batch_id: events}) as a Kaggle-layout directory; labels default to train only."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with_labels = split == "train" if with_labels is None else with_labels
    shutil.copy(GEOMETRY_CSV, root / "sensor_geometry.csv")
    for batch_id, events in batches.items():
        write_batch_file(root / split / f"batch_{batch_id}.parquet", batch_frame(events), layout)
    meta_frame(batches, with_labels).to_parquet(root / f"{split}_meta.parquet", index=False)
    return root


def random_batches(n_batches: int = 3, events_per_batch: int = 40, seed: int = 0,
                   first_batch_id: int = 1) -> dict[int, list[KaggleEvent]]:
    """Several batches of random events (2..200 pulses) with globally increasing event ids."""
    rng = np.random.default_rng(seed)
    batches, event_id = {}, 1
    for batch_id in range(first_batch_id, first_batch_id + n_batches):
        lengths = rng.integers(2, 200, events_per_batch)
        batches[batch_id] = [random_event(rng, event_id + i, int(n)) for i, n in enumerate(lengths)]
        event_id += events_per_batch
    return batches


def two_edge_case_batches():
    return {1: edge_case_events(first_event_id=1, seed=0), 4: edge_case_events(first_event_id=101, seed=1)}


# Broken copies of `two_edge_case_batches()`: what each reader must refuse with a clear error.


def rewrite_batch(root, batch_id, change, layout="pandas"):
    """Rewrite batch_{batch_id}.parquet of the train split after applying `change(frame)`."""
    path = root / "train" / f"batch_{batch_id}.parquet"
    frame = pd.read_parquet(path).reset_index()
    change(frame)
    write_batch_file(path, frame, layout)


def set_pulse(column, value, event_id, dtype=None):
    def change(frame):
        if dtype is not None:
            frame[column] = frame[column].astype(dtype)
        frame.loc[frame.index[frame["event_id"] == event_id][1:2], column] = value
    return change


def rewrite_meta(root, change):
    meta = pd.read_parquet(root / "train_meta.parquet")
    meta = change(meta)
    meta.to_parquet(root / "train_meta.parquet", index=False)


BAD_INPUTS = {
    # name: (breakage, error type, pieces the message must contain)
    "missing meta file": (lambda r: (r / "train_meta.parquet").unlink(), FileNotFoundError, ["train_meta.parquet"]),
    "missing batch file": (lambda r: (r / "train" / "batch_4.parquet").unlink(), FileNotFoundError,
                           ["batch_4.parquet"]),
    "missing column": (lambda r: rewrite_batch(r, 4, lambda f: f.pop("charge")), ValueError,
                       ["batch_4.parquet", "'charge'", "missing"]),
    "float16 sensor ids": (lambda r: rewrite_batch(r, 4, set_pulse("sensor_id", 5, 105, np.float16)), ValueError,
                           ["batch_4.parquet", "'sensor_id'", "halffloat"]),
    "int auxiliary": (lambda r: rewrite_batch(r, 1, set_pulse("auxiliary", 1, 3, np.int8)), ValueError,
                      ["batch_1.parquet", "'auxiliary'", "int8"]),
    "sensor id 5160": (lambda r: rewrite_batch(r, 4, set_pulse("sensor_id", 5160, 105)), ValueError,
                       ["batch_4.parquet", "'sensor_id'", "event_id 105", "5160"]),
    "negative sensor id": (lambda r: rewrite_batch(r, 1, set_pulse("sensor_id", -1, 6)), ValueError,
                           ["batch_1.parquet", "event_id 6", "-1"]),
    "NaN time": (lambda r: rewrite_batch(r, 4, set_pulse("time", np.nan, 106, np.float64)), ValueError,
                 ["batch_4.parquet", "'time'", "event_id 106", "NaN"]),
    "negative time": (lambda r: rewrite_batch(r, 1, set_pulse("time", -5, 5)), ValueError,
                      ["batch_1.parquet", "'time'", "event_id 5", "negative"]),
    "time beyond int32": (lambda r: rewrite_batch(r, 1, set_pulse("time", 2**31, 5)), ValueError,
                          ["batch_1.parquet", "event_id 5", "int32"]),
    "fractional time": (lambda r: rewrite_batch(r, 1, set_pulse("time", 12.5, 5, np.float64)), ValueError,
                        ["batch_1.parquet", "event_id 5", "whole"]),
    "zero charge": (lambda r: rewrite_batch(r, 4, set_pulse("charge", 0.0, 107)), ValueError,
                    ["batch_4.parquet", "'charge'", "event_id 107"]),
    "meta range off by one": (
        lambda r: rewrite_meta(r, lambda m: m.assign(last_pulse_index=np.where(
            m.event_id == 103, m.last_pulse_index + 1, m.last_pulse_index))),
        ValueError, ["train_meta.parquet", "batch_4.parquet", "event_id 10"]),
    "meta covers fewer rows": (
        lambda r: rewrite_meta(r, lambda m: m[m.event_id != 112]), ValueError,
        ["train_meta.parquet", "batch_4.parquet", "event_id 111"]),
    "pulse rows of another event": (lambda r: rewrite_batch(r, 1, set_pulse("event_id", 999, 5)), ValueError,
                                    ["batch_1.parquet", "event_id 5", "999"]),
    "train labels missing": (lambda r: rewrite_meta(r, lambda m: m.drop(columns="zenith")), ValueError,
                             ["train_meta.parquet", "'zenith'", "missing"]),
    "NaN label": (lambda r: rewrite_meta(r, lambda m: m.assign(azimuth=np.where(m.event_id == 104, np.nan,
                                                                                  m.azimuth))),
                  ValueError, ["train_meta.parquet", "'azimuth'", "event_id 104"]),
}
