"""Collators: dataset rows (events with all their pulses) -> PolarBERT model batches.

The batch contract (see the model's docstring), B events, L = the batch's longest selected event (rounded up to
`pad_to_multiple_of`); the model prepends its CLS token itself, so none is added here:

| key | dtype, shape | content |
| --- | --- | --- |
| `dom_ids` | int64 (B, L) | sensor ids; `config.pad_token_id` at padding, `config.mask_token_id` where masked |
| `features` | float32 (B, L, F) | (time - time_offset) / time_scale, log10(charge) / charge_scale, auxiliary - auxiliary_offset, and with `config.event_time_reference` (time - t_event) / event_time_scale (F = `config.num_pulse_features`); 0 at padding |
| `attention_mask` | int64 (B, L) | 1 for real pulses |
| `labels` (pretraining) | int64 (B, L) | true sensor id at masked positions, -100 elsewhere |
| `total_charge` (pretraining) | float32 (B,) | log10 of the sum of ALL the event's charges, before down-sampling |
| `labels` (direction) | float32 (B, 3) | unit vectors from (azimuth, zenith), Kaggle convention; omitted without labels |
| `masked_positions` (pretraining) | int64 (K,) | flat indices `row * L + column` of the K masked pulses, ascending |
| `labels` (sequence classification) | float32 (B, num_labels) or int64 (B,) | from `config.label_columns` (see tasks.py): regression targets, multi-label 0/1, or class indices |

With `pack_length=T` the batch has no padding between events (the padding-free path): events, each as [a CLS slot,
its pulses], fill rows of T tokens in batch order, a new row when the next event does not fit. `dom_ids`,
`features`, `attention_mask` (1 at CLS slots too) and `labels` (-100 at CLS slots) become (rows, T), the CLS slots
hold `pad_token_id`, and `cls_positions` int64 (B,) gives each event's CLS slot as a flat index `row * T + column`.

The collators check the data on their CPU arrays, as the feature extractor does, every value as given before any
cast (integer DOM ids in range, bool or 0/1 flags, finite times, positive finite charges; finite angles), so that
the model's own value checks, which cost a GPU step a host synchronisation each, can be off (`check_inputs=False`).

Down-sampling, feature scaling and padding are those of the model's feature extractor
(`feature_extraction_polarbert.py`, the one implementation, shipped with every checkpoint): an event with more than
`max_pulses` pulses keeps its primary pulses first, drawn at random from (seed, batch) for training or from the
event_id in deterministic mode (evaluation and prediction, the same pulses the extractor gives a Hub user). The
collators add what training needs: the random draws, masking, labels and the Arrow fast path.

Masking (pretraining): `round(mask_ratio * n)` of an event's n selected primary pulses, rounded half up and at
least one when n > 0 (a 1-primary event masks its only primary pulse rather than none); auxiliary pulses are never
masked, an event without primary pulses masks nothing.

Two inputs are accepted, with identical results for the same draws:
* a list of row dicts, as `dataset[i]` gives them (lists, numpy arrays or tensors);
* the compact batch that `as_training_dataset(dataset)` gathers straight from the Arrow columns (the fast path
  for `Trainer`; see `PulseBatch`).

Everything is vectorised over the whole batch (numpy on the concatenated pulses: a random key per pulse and one
sort pick the subsets, see `feature_extraction_polarbert.choose_random`), with no Python loop over pulses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .configuration_polarbert import PolarBertConfig
from .feature_extraction_polarbert import (
    MASKING_SALT,
    PULSE_DTYPES,
    PolarBertFeatureExtractor,
    PulseBatch,
    choose_random,
    concatenated_ranges,
    rows_to_pulse_batch,
)
from .kaggle_layout import LABEL_COLUMNS, PULSE_COLUMNS
from .numpy_directions import angles_to_unit_vector
from .tasks import encode_labels, source_columns

IGNORE_INDEX = -100  # the Transformers convention for "no label here"


# ----------------------------------------------------------------------------------------------------------------
# The collators
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _PulseCollator:
    """Shared part of the collators: down-sampling, feature scaling and padding, all done by the model's
    `PolarBertFeatureExtractor` (built from the config), so that training, evaluation, `polarbert predict` and a
    user of the Hub checkpoint select and scale pulses with the same code.

    Args:
        config: the model's `PolarBertConfig` (scales, special ids, `max_pulses`, `mask_ratio`).
        max_pulses: down-sample events to at most this many pulses (default `config.max_pulses`).
        pad_to_multiple_of: round L up to a multiple of this (default `config.pad_to_multiple_of`; 1 or None: no
            rounding).
        keep_all_pulses: no down-sampling at all (evaluation on every pulse of long events).
        pack_length: pack the events into rows of this many tokens (each event takes its pulses + 1 for its CLS
            slot) instead of one padded row per event: the padding-free path, see the module docstring. At least
            `max_pulses + 1`; the model then needs eager, sdpa or flex_attention.
        deterministic: draw selection (and masking) from the event_id, not from the generator, so an event gives
            the same pulses whatever batch it lands in (evaluation and prediction agree, and agree with the
            feature extractor).
        seed: pins the draws. Random mode draws from (seed, the batch's list of event ids, the event's place in
            the batch, the pulse): a shuffled epoch's new batches draw afresh, yet the collator holds no state, so
            DataLoader workers, and a training run resumed from a checkpoint, draw exactly what one uninterrupted
            process draws. Deterministic mode draws from (seed, event_id, pulse) alone.
    """

    config: PolarBertConfig
    max_pulses: int | None = None
    pad_to_multiple_of: int | None = None
    keep_all_pulses: bool = False
    deterministic: bool = False
    seed: int | None = None
    pack_length: int | None = None

    def __post_init__(self):
        if self.max_pulses is None:
            self.max_pulses = self.config.max_pulses
        if self.pad_to_multiple_of is None:
            self.pad_to_multiple_of = self.config.pad_to_multiple_of
        if self.pack_length is not None and not self.keep_all_pulses and self.pack_length < self.max_pulses + 1:
            raise ValueError(f"pack_length={self.pack_length} cannot hold an event of max_pulses={self.max_pulses} "
                             "pulses and its CLS slot")
        self.feature_extractor = PolarBertFeatureExtractor.from_config(
            self.config, max_pulses=self.max_pulses, pad_to_multiple_of=self.pad_to_multiple_of
        )

    def pulse_batch(self, features, extra_columns: Sequence[str] = ()) -> PulseBatch:
        """Rows or a fast-path `PulseBatch`, checked as the feature extractor checks a user's events: what the
        model would otherwise check on the device (see check_inputs), and every value as given, before the cast
        to the prepared dtypes. The fast path's batches were checked by `polarbert prepare` already, but are
        checked again (a few vectorised comparisons): a dataset may have been written by other code."""
        return self.feature_extractor.pulse_batch(features, extra_columns)

    def choose_random(self, batch: PulseBatch, pool: np.ndarray, pool_event: np.ndarray, n_choose: np.ndarray,
                      salt: int) -> np.ndarray:
        """`n_choose[e]` pulses of `pool` per event e, drawn in this collator's mode (see `choose_random`)."""
        return choose_random(batch, pool, pool_event, n_choose, salt, self.deterministic, self.seed)

    def select_pulses(self, batch: PulseBatch) -> tuple[np.ndarray, np.ndarray]:
        """Down-sample: the flat indices of the kept pulses and the (B + 1,) offsets of the events inside them."""
        return self.feature_extractor.select_pulses(
            batch, keep_all_pulses=self.keep_all_pulses, deterministic=self.deterministic, seed=self.seed
        )

    def _encode(self, batch: PulseBatch, kept: np.ndarray, kept_offsets: np.ndarray) -> dict[str, np.ndarray]:
        """dom_ids, features and attention_mask (B, L, ...) of the kept pulses, and each kept pulse's slot
        `row * L + column` in the flattened padded batch (`_slot`); packed (rows, T, ...) with `pack_length`."""
        encoded, slot = self.feature_extractor.encode(batch, kept, kept_offsets)
        if self.pack_length is not None:
            encoded, slot = self._pack(batch, encoded, slot, np.diff(kept_offsets))
        return {**encoded, "_slot": slot}

    def _pack(self, batch: PulseBatch, encoded: dict, slot: np.ndarray, kept_counts: np.ndarray):
        """The padded batch laid out packed: next fit of [CLS slot, pulses] per event into rows of pack_length
        tokens, events in batch order (a length-grouped sampler's order packs tightly). Returns the packed arrays
        with `cls_positions`, and each kept pulse's slot in them. The loop runs over rows, one search each."""
        sizes = kept_counts + 1
        too_long = np.flatnonzero(sizes > self.pack_length)
        if len(too_long):
            raise ValueError(f"event_id {batch['event_id'][too_long[0]]}: its {kept_counts[too_long[0]]} pulses and "
                             f"its CLS slot do not fit in pack_length={self.pack_length}")
        ends = np.cumsum(sizes)
        starts = ends - sizes
        cls_slot = np.empty(len(sizes), dtype=np.int64)
        first, rows = 0, 0
        while first < len(sizes):
            last = int(np.searchsorted(ends, starts[first] + self.pack_length, side="right"))
            cls_slot[first:last] = rows * self.pack_length + starts[first:last] - starts[first]
            first, rows = last, rows + 1
        rows, length = max(rows, 1), self.pack_length
        packed_slot = concatenated_ranges(cls_slot + 1, kept_counts)
        n_features = encoded["features"].shape[-1]
        dom_ids = np.full(rows * length, self.config.pad_token_id, dtype=np.int64)
        dom_ids[packed_slot] = encoded["dom_ids"].reshape(-1)[slot]
        features = np.zeros((rows * length, n_features), dtype=np.float32)
        features[packed_slot] = encoded["features"].reshape(-1, n_features)[slot]
        attention_mask = np.zeros(rows * length, dtype=np.int64)
        attention_mask[packed_slot] = 1
        attention_mask[cls_slot] = 1
        packed = {
            "dom_ids": dom_ids.reshape(rows, length),
            "features": features.reshape(rows, length, n_features),  # (rows, pack_length, num_features)
            "attention_mask": attention_mask.reshape(rows, length),
            "cls_positions": cls_slot,
        }
        return packed, packed_slot


@dataclass
class PolarBertPretrainingCollator(_PulseCollator):
    """Rows -> a `PolarBertForMaskedDOM` batch: down-sampled events with `mask_ratio` of the selected primary
    pulses' DOM ids replaced by the mask id; `labels` and `total_charge` as in the module docstring.

    Args (besides those of the shared base, see `_PulseCollator`):
        mask_ratio: fraction of selected primary pulses to mask (default `config.mask_ratio`).
    """

    mask_ratio: float | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.mask_ratio is None:
            self.mask_ratio = self.config.mask_ratio

    def __call__(self, features) -> dict[str, torch.Tensor]:
        batch = self.pulse_batch(features)
        kept, kept_offsets = self.select_pulses(batch)
        encoded = self._encode(batch, kept, kept_offsets)
        slot = encoded.pop("_slot")[self.mask_positions(batch, kept, kept_offsets)]
        dom_ids = encoded["dom_ids"].reshape(-1)  # a view: writing it writes encoded["dom_ids"]
        labels = np.full(dom_ids.shape, IGNORE_INDEX, dtype=np.int64)
        labels[slot] = dom_ids[slot]
        dom_ids[slot] = self.config.mask_token_id
        return {
            **{name: torch.from_numpy(array) for name, array in encoded.items()},
            "labels": torch.from_numpy(labels.reshape(encoded["dom_ids"].shape)),
            "total_charge": torch.from_numpy(self.total_charge(batch)),
            "masked_positions": torch.from_numpy(slot),  # ascending, as `slot` and the masked pulses are
        }

    def masked_counts(self, n_primary: np.ndarray) -> np.ndarray:
        """Masked pulses per event: round(mask_ratio * n_primary) half up, at least 1 where n_primary > 0."""
        if self.mask_ratio <= 0:
            return np.zeros_like(n_primary)
        rounded = np.floor(self.mask_ratio * n_primary + 0.5).astype(np.int64)
        return np.where(n_primary > 0, np.maximum(rounded, 1), 0)

    def mask_positions(self, batch: PulseBatch, kept: np.ndarray, kept_offsets: np.ndarray) -> np.ndarray:
        """Indices into `kept` of the pulses to mask: a random `masked_counts` of each event's primary pulses."""
        kept_counts = np.diff(kept_offsets)
        event_of_kept = np.repeat(np.arange(len(kept_counts)), kept_counts)
        primary = np.flatnonzero(~np.asarray(batch["auxiliary"], dtype=bool)[kept])  # grouped by event
        n_primary = np.bincount(event_of_kept[primary], minlength=len(kept_counts))
        chosen = self.choose_random(batch, kept[primary], event_of_kept[primary], self.masked_counts(n_primary),
                                    MASKING_SALT)
        return np.searchsorted(kept, chosen)  # `kept` is sorted: flat pulse index -> position in `kept`

    @staticmethod
    def total_charge(batch: PulseBatch) -> np.ndarray:
        """(B,) float32 log10 of the summed charge of every pulse of each event (before down-sampling)."""
        counts = np.diff(batch["pulse_offsets"])
        event = np.repeat(np.arange(len(counts)), counts)
        summed = np.bincount(event, weights=batch["charge"].astype(np.float64), minlength=len(counts))
        if not (summed > 0).all() or not np.isfinite(summed).all():
            bad = np.flatnonzero(~(summed > 0) | ~np.isfinite(summed))[0]
            raise ValueError(f"event_id {batch['event_id'][bad]} has a total charge of {summed[bad]} (must be > 0)")
        return np.log10(summed).astype(np.float32)


@dataclass
class PolarBertDirectionCollator(_PulseCollator):
    """Rows -> a `PolarBertForDirection` batch: down-sampled events (nothing masked) and, when the rows carry
    azimuth and zenith, unit-vector `labels` (Kaggle convention: the direction the neutrino came from). Without
    them (a test split) `labels` is left out, for prediction. Arguments: see `_PulseCollator`."""

    def __call__(self, features) -> dict[str, torch.Tensor]:
        batch = self.pulse_batch(features)
        kept, kept_offsets = self.select_pulses(batch)
        encoded = self._encode(batch, kept, kept_offsets)
        del encoded["_slot"]
        output = {name: torch.from_numpy(array) for name, array in encoded.items()}
        if all(label in batch for label in LABEL_COLUMNS):
            finite = np.isfinite(batch["azimuth"]) & np.isfinite(batch["zenith"])
            if not finite.all():
                raise ValueError(f"event_id {batch['event_id'][np.flatnonzero(~finite)[0]]} has a non-finite azimuth "
                                 "or zenith")
            directions = angles_to_unit_vector(batch["azimuth"], batch["zenith"]).astype(np.float32)
            output["labels"] = torch.from_numpy(directions)  # (batch, 3)
        return output


@dataclass
class PolarBertSequenceClassificationCollator(_PulseCollator):
    """Rows -> a `PolarBertForSequenceClassification` batch: down-sampled events (nothing masked) and, when the
    rows carry the columns of `config.label_columns`, their `labels` (see `tasks.encode_labels`): float32
    (B, num_labels) regression targets in physical units (`log10:` applied; the model standardises them) or
    multi-label 0/1, int64 (B,) class indices for single-label classification. Without those columns `labels` is
    left out, for prediction. The fast path must gather the columns: `as_training_dataset(dataset,
    extra_columns=source_columns(config.label_columns))`. Arguments: see `_PulseCollator`."""

    def __post_init__(self):
        super().__post_init__()
        if not self.config.label_columns or self.config.problem_type is None:
            raise ValueError("the config has no label_columns/problem_type: set them with tasks.sequence_task_config")
        self.columns = source_columns(self.config.label_columns)

    def __call__(self, features) -> dict[str, torch.Tensor]:
        batch = self.pulse_batch(features, self.columns)
        kept, kept_offsets = self.select_pulses(batch)
        encoded = self._encode(batch, kept, kept_offsets)
        del encoded["_slot"]
        output = {name: torch.from_numpy(array) for name, array in encoded.items()}
        if all(name in batch for name in self.columns):
            labels = encode_labels({name: batch[name] for name in self.columns}, self.config, batch["event_id"])
            output["labels"] = torch.from_numpy(labels)
        return output


# ----------------------------------------------------------------------------------------------------------------
# The fast path: gather whole batches straight from the Arrow columns
# ----------------------------------------------------------------------------------------------------------------


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


class PolarBertTrainingDataset(torch.utils.data.Dataset):
    """A torch `Dataset` over a prepared `datasets.Dataset` whose `__getitems__(indices)` gathers a whole batch
    from the Arrow columns at once (list offsets + flat values, zero-copy from the memory map) and returns a
    `PulseBatch` for the collators. The torch `DataLoader` (and so `Trainer`) calls `__getitems__` when a dataset
    has it; many times faster than formatting rows one by one.

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
        self.label_columns = tuple(LABEL_COLUMNS) if all(n in table.column_names for n in LABEL_COLUMNS) else ()
        missing = [name for name in self.extra_columns if name not in table.column_names]
        if missing:
            raise ValueError(f"the dataset has no column {missing[0]!r}")
        extras = tuple(n for n in dict.fromkeys(self.extra_columns) if n not in ("event_id", *self.label_columns))
        self._scalar_columns = (*self.label_columns, *extras)
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
        batch = self.__getitems__([index])
        values = {name: batch[name][0] for name in ("event_id", *self._scalar_columns)}
        # numpy scalars become Python ones; an object (string) column holds Python values already.
        row = {name: value.item() if isinstance(value, np.generic) else value for name, value in values.items()}
        row.update({name: batch[name] for name in PULSE_COLUMNS})
        return row

    def __getitems__(self, indices) -> PulseBatch:
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


def as_training_dataset(dataset, extra_columns: Sequence[str] = ()) -> PolarBertTrainingDataset:
    """Wrap a prepared `datasets.Dataset` for fast batched reading; give the result to `Trainer` (with
    `remove_unused_columns=False`) or to a `DataLoader` together with one of the collators. `extra_columns`: the
    per-event columns a sequence-level task's labels come from."""
    return PolarBertTrainingDataset(dataset, extra_columns)


__all__ = [
    "PolarBertPretrainingCollator",
    "PolarBertDirectionCollator",
    "PolarBertSequenceClassificationCollator",
    "PolarBertTrainingDataset",
    "as_training_dataset",
    "rows_to_pulse_batch",
    "concatenated_ranges",
]
