"""The fast path from a prepared dataset to the collators, for training AND inference: `as_pulse_dataset(dataset)`
wraps a prepared `datasets.Dataset` as a torch `Dataset` that gathers a whole batch of events at once straight from
the Arrow columns (list offsets + flat values, zero-copy from the memory map) and returns a `PulseBatch` (see
feature_extraction_polarbert.py), which every collator accepts. `Trainer` reads it through `__getitems__`,
prediction and evaluation through a `DataLoader` or `gather`; LineFit and the charge baseline read every pulse of
the events through `gather` too.

`log10_total_charge(batch)` is the one computation of an event's total charge (all its pulses, before
down-sampling): the pretraining target and the regression baseline's input.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .feature_extraction_polarbert import PULSE_DTYPES, PulseBatch, concatenated_ranges
from .kaggle_layout import DIRECTION_COLUMNS, PULSE_COLUMNS


def log10_total_charge(batch: PulseBatch) -> np.ndarray:
    """(B,) float32 log10 of the summed charge of every pulse of each event (before down-sampling); a ValueError
    names the first event whose total is not positive and finite."""
    counts = np.diff(batch["pulse_offsets"])
    event = np.repeat(np.arange(len(counts)), counts)
    summed = np.bincount(event, weights=batch["charge"].astype(np.float64), minlength=len(counts))
    if not (summed > 0).all() or not np.isfinite(summed).all():
        bad = np.flatnonzero(~(summed > 0) | ~np.isfinite(summed))[0]
        raise ValueError(f"event_id {batch['event_id'][bad]} has a total charge of {summed[bad]} (must be > 0)")
    return np.log10(summed).astype(np.float32)


class _RecordBatchView:
    """Zero-copy numpy views of one Arrow record batch: per-event columns, and each pulse column flattened
    (values of this record batch only; booleans stay bit-packed and are read bit by bit)."""

    def __init__(self, record_batch, scalar_columns: tuple[str, ...]):
        self.scalars = {name: record_batch.column(name).to_numpy(zero_copy_only=False)
                        for name in ("event_id", *scalar_columns)}
        self.values, offsets = {}, None
        for name in PULSE_COLUMNS:
            lists = record_batch.column(name)
            if lists.null_count:
                raise ValueError(f"column {name!r} has missing events; the fast path needs complete pulse lists")
            column_offsets = lists.offsets.to_numpy()
            column_offsets = column_offsets - column_offsets[0]
            if offsets is None:
                offsets = column_offsets
            elif not np.array_equal(offsets, column_offsets):
                raise ValueError(f"column {name!r} has list lengths unlike 'sensor_id'")
            flat = lists.flatten()  # zero-copy slice of the values when there are no nulls
            if name == "auxiliary":
                self.auxiliary_bytes = np.frombuffer(flat.buffers()[1], dtype=np.uint8)
                self.auxiliary_bit_offset = flat.offset
            else:
                self.values[name] = flat.to_numpy()
        self.offsets = offsets  # (rows + 1,) int32: the event's pulses in this record batch's flat values


class PolarBertPulseDataset(torch.utils.data.Dataset):
    """A torch `Dataset` over a prepared `datasets.Dataset` whose `gather(indices)` gathers a whole batch from
    the Arrow columns at once (list offsets + flat values, zero-copy from the memory map) and returns a
    `PulseBatch` for the collators. The torch `DataLoader` (and so `Trainer`) calls `__getitems__`, the same
    gather, when a dataset has it; many times faster than formatting rows one by one.

    `lengths` (numpy, pulses per event) is for a length-grouped sampler: Trainer's `group_by_length` reads lengths
    only from a `datasets.Dataset`, so pass these to the sampler yourself.

    `extra_columns` names further per-event columns to gather (the labels of a sequence-level task, e.g.
    "energy", "is_track"); azimuth and zenith come whenever the dataset has them.

    Memory: besides the memory-mapped data it holds 8 bytes per event (where each event's pulses start and how
    many there are), about 1 GB for the 130 M Kaggle events.
    """

    def __init__(self, dataset, extra_columns: Sequence[str] = ()):
        self.dataset = dataset
        self.extra_columns = tuple(extra_columns)
        self._build_views()

    def _build_views(self):
        table = self.dataset.data.table
        present = all(name in table.column_names for name in DIRECTION_COLUMNS)
        self.direction_columns = DIRECTION_COLUMNS if present else ()
        missing = [name for name in self.extra_columns if name not in table.column_names]
        if missing:
            raise ValueError(f"the dataset has no column {missing[0]!r}")
        extras = tuple(n for n in dict.fromkeys(self.extra_columns) if n not in ("event_id", *self.direction_columns))
        self._scalar_columns = (*self.direction_columns, *extras)
        table = table.select(["event_id", *PULSE_COLUMNS, *self._scalar_columns])
        # to_batches gives every column the same chunk boundaries (zero-copy)
        record_batches = [b for b in table.to_batches() if b.num_rows]
        self._views = [_RecordBatchView(b, self._scalar_columns) for b in record_batches]
        # Output dtypes of the per-event columns (object for strings), as their numpy views give them.
        self._scalar_dtypes = {name: self._views[0].scalars[name].dtype if self._views else np.float64
                               for name in self._scalar_columns}
        # The pulse columns are gathered in their stored dtypes, not cast: the collators check every value as
        # stored, then cast (a dataset that `polarbert prepare` did not write may hold int64 DOM ids, which an
        # int16 gather would wrap around). A prepared dataset stores PULSE_DTYPES already: nothing changes there.
        self._pulse_dtypes = {name: self._views[0].values[name].dtype if self._views else PULSE_DTYPES[name]
                              for name in PULSE_COLUMNS if name != "auxiliary"}
        sizes = np.array([b.num_rows for b in record_batches], dtype=np.int64)
        self._batch_starts = np.concatenate([[0], np.cumsum(sizes)])
        # Per stored row: where its pulses start in its record batch's values, and how many there are.
        offsets = [view.offsets for view in self._views]
        self._pulse_start = np.concatenate([o[:-1] for o in offsets]) if offsets else np.zeros(0, np.int32)
        self._pulse_count = np.concatenate([np.diff(o) for o in offsets]) if offsets else np.zeros(0, np.int32)
        # A shuffled/selected `datasets.Dataset` reads its rows through an indices mapping (`_indices`, stable
        # since datasets 1.x); the public alternative, flatten_indices(), would copy the whole dataset.
        indices = getattr(self.dataset, "_indices", None)
        self._row_of_index = None if indices is None else indices.column(0).to_numpy().astype(np.int64)

    def __getstate__(self):
        # Hand DataLoader workers the dataset (pickled by file path when memory-mapped), not the Arrow views.
        return {"dataset": self.dataset, "extra_columns": self.extra_columns}

    def __setstate__(self, state):
        self.dataset = state["dataset"]
        self.extra_columns = state.get("extra_columns", ())
        self._build_views()

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def lengths(self) -> np.ndarray:
        """Pulses per event (int64), in dataset order."""
        lengths = self._pulse_count.astype(np.int64)
        return lengths if self._row_of_index is None else lengths[self._row_of_index]

    def __getitem__(self, index: int) -> dict:
        """One event as a row dict of numpy arrays (what the collators accept in a list)."""
        batch = self.gather([index])
        values = {name: batch[name][0] for name in ("event_id", *self._scalar_columns)}
        # numpy scalars become Python ones; an object (string) column holds Python values already.
        row = {name: value.item() if isinstance(value, np.generic) else value for name, value in values.items()}
        row.update({name: batch[name] for name in PULSE_COLUMNS})
        return row

    def __getitems__(self, indices) -> PulseBatch:
        """What `DataLoader` calls for a batch: `gather(indices)`."""
        return self.gather(indices)

    def gather(self, indices) -> PulseBatch:
        """A whole batch in one gather: events in the order of `indices`.

        All index arithmetic is vectorised over the batch; the only loop runs over the record batches the
        events fall in, and does one fancy-indexing step per column there."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(indices) and (indices.min() < -len(self) or indices.max() >= len(self)):
            raise IndexError(f"index out of range for a dataset of {len(self)} events")
        indices = indices % max(len(self), 1)
        rows = indices if self._row_of_index is None else self._row_of_index[indices]
        record_batch = np.searchsorted(self._batch_starts, rows, side="right") - 1
        counts = self._pulse_count[rows].astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        # Visit the events record batch by record batch: `by_batch` orders the events, `pulse_slot` the output
        # positions of their pulses, and `source` the pulses' positions in their record batch's values.
        by_batch = np.argsort(record_batch, kind="stable")
        pulse_slot = concatenated_ranges(offsets[:-1][by_batch], counts[by_batch])
        source = concatenated_ranges(self._pulse_start[rows][by_batch], counts[by_batch])
        event_groups = np.flatnonzero(np.diff(record_batch[by_batch])) + 1
        event_bounds = np.concatenate([[0], event_groups, [len(rows)]])
        pulse_bounds = np.concatenate([[0], np.cumsum(counts[by_batch])])[event_bounds]

        batch = {"event_id": np.empty(len(rows), np.int64), "pulse_offsets": offsets}
        batch.update({name: np.empty(offsets[-1], dtype) for name, dtype in self._pulse_dtypes.items()})
        batch.update({name: np.empty(len(rows), self._scalar_dtypes[name]) for name in self._scalar_columns})
        auxiliary_byte, auxiliary_bit = np.empty(offsets[-1], np.uint8), np.empty(offsets[-1], np.int64)
        for group in range(len(event_bounds) - 1):
            events = by_batch[event_bounds[group]:event_bounds[group + 1]]
            if not len(events):
                continue
            view_index = record_batch[events[0]]
            view = self._views[view_index]
            local_rows = rows[events] - self._batch_starts[view_index]
            for name, values in view.scalars.items():
                batch[name][events] = values[local_rows]
            start, stop = pulse_bounds[group], pulse_bounds[group + 1]
            slots, positions = pulse_slot[start:stop], source[start:stop]
            for name, values in view.values.items():
                batch[name][slots] = values[positions]
            bit = positions + view.auxiliary_bit_offset
            auxiliary_byte[slots] = view.auxiliary_bytes[bit >> 3]
            auxiliary_bit[slots] = bit & 7
        batch["auxiliary"] = ((auxiliary_byte >> auxiliary_bit.astype(np.uint8)) & 1).astype(bool)
        return batch


def as_pulse_dataset(dataset, extra_columns: Sequence[str] = ()) -> PolarBertPulseDataset:
    """Wrap a prepared `datasets.Dataset` for fast batched reading, in training and inference alike; give the
    result to `Trainer` (with `remove_unused_columns=False`) or to a `DataLoader` together with one of the
    collators, or `gather` events from it. `extra_columns`: the per-event columns a sequence-level task's labels
    come from."""
    return PolarBertPulseDataset(dataset, extra_columns)


__all__ = ["PolarBertPulseDataset", "as_pulse_dataset", "log10_total_charge"]
