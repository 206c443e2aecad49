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
| `labels` (sequence classification) | float32 (B, num_labels) or int64 (B,) | from `config.label_columns` (see tasks.py): regression targets, multi-label 0/1, or class indices |

Down-sampling (paper, section 3): an event with more than `max_pulses` pulses keeps its primary (auxiliary =
False) pulses first: a random subset of them if there are more than `max_pulses`, else all of them plus random
auxiliary pulses. The kept pulses stay in their original order (the Kaggle files are time-ordered).

Masking (pretraining): `round(mask_ratio * n)` of an event's n selected primary pulses, rounded half up and at
least one when n > 0 (a 1-primary event masks its only primary pulse rather than none); auxiliary pulses are never
masked, an event without primary pulses masks nothing.

Two inputs are accepted, with identical results for the same draws:
* a list of row dicts, as `dataset[i]` gives them (lists, numpy arrays or tensors);
* the compact batch that `as_training_dataset(dataset)` gathers straight from the Arrow columns (the fast path
  for `Trainer`; see `PulseBatch`).

Everything is vectorised over the whole batch (numpy on the concatenated pulses: a random key per pulse and one
sort pick the subsets, see `choose_random`), with no Python loop over events or pulses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .configuration_polarbert import PolarBertConfig
from .kaggle_layout import LABEL_COLUMNS, PULSE_COLUMNS
from .numpy_directions import angles_to_unit_vector
from .tasks import encode_labels, source_columns

IGNORE_INDEX = -100  # the Transformers convention for "no label here"
PULSE_DTYPES = {"sensor_id": np.int16, "time": np.int32, "charge": np.float32, "auxiliary": np.bool_}
# Salts keep the deterministic (event_id-keyed) draws of selection and masking independent of each other.
SELECTION_SALT, MASKING_SALT = 0x5E1EC7, 0x3A5C


# ----------------------------------------------------------------------------------------------------------------
# The compact batch: flat pulse arrays + offsets
# ----------------------------------------------------------------------------------------------------------------
#
# A `PulseBatch` is a plain dict:
#   "event_id":      int64 (B,)
#   "pulse_offsets": int64 (B + 1,)   event i's pulses are [pulse_offsets[i], pulse_offsets[i + 1]) of:
#   "sensor_id":     int16 (N,)
#   "time":          int32 (N,)
#   "charge":        float32 (N,)
#   "auxiliary":     bool (N,)
#   "azimuth", "zenith": float64 (B,)   only when the dataset has labels
#   other per-event columns (B,)        only those asked for (`extra_columns`), e.g. "energy", "is_track"
PulseBatch = dict


def rows_to_pulse_batch(rows: Sequence[Mapping], extra_columns: Sequence[str] = ()) -> PulseBatch:
    """Concatenate row dicts (as `dataset[i]` returns them) into a `PulseBatch`, with the per-event
    `extra_columns` that every row has."""
    if rows and isinstance(rows[0], str):
        raise TypeError(
            "the collator got a list of str: the batch dict of `as_training_dataset` was iterated by another "
            "wrapper (Trainer wraps the collator when `remove_unused_columns=True`; set it to False)")
    counts = np.fromiter((len(row["sensor_id"]) for row in rows), dtype=np.int64, count=len(rows))
    batch = {
        "event_id": np.array([row.get("event_id", -1) for row in rows], dtype=np.int64),
        "pulse_offsets": np.concatenate([[0], np.cumsum(counts)]),
    }
    for name in PULSE_COLUMNS:
        parts = [np.asarray(row[name], dtype=PULSE_DTYPES[name]) for row in rows]
        batch[name] = np.concatenate(parts) if parts else np.zeros(0, PULSE_DTYPES[name])
    if rows and all(label in rows[0] for label in LABEL_COLUMNS):
        for label in LABEL_COLUMNS:
            batch[label] = np.array([row[label] for row in rows], dtype=np.float64)
    for name in extra_columns:
        if rows and all(name in row for row in rows):
            batch[name] = np.array([row[name] for row in rows])
    return batch


def as_pulse_batch(features, extra_columns: Sequence[str] = ()) -> PulseBatch:
    """Accept either input form of the collators."""
    if isinstance(features, Mapping):
        if "pulse_offsets" not in features:
            raise TypeError("a dict given to the collator must be a PulseBatch (with 'pulse_offsets'); "
                            "give a list of rows otherwise")
        return features
    return rows_to_pulse_batch(list(features), extra_columns)


# ----------------------------------------------------------------------------------------------------------------
# Vectorised helpers on concatenated pulses
# ----------------------------------------------------------------------------------------------------------------


def concatenated_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """[starts[0], ..., starts[0] + lengths[0]), [starts[1], ...) ... as one int64 array, without a loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    # Each position is its range's start plus its rank inside the range.
    range_starts = np.cumsum(lengths) - lengths
    rank = np.arange(total, dtype=np.int64) - np.repeat(range_starts, lengths)
    return np.repeat(np.asarray(starts, dtype=np.int64), lengths) + rank


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a fast, well-mixed 64-bit hash (uint64 arithmetic wraps, as intended)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def event_keyed_draws(event_ids: np.ndarray, pulse_index: np.ndarray, salt: int) -> np.ndarray:
    """Pseudo-random uint64 keys that depend only on (event_id, pulse index within the event, salt): the
    deterministic mode's draws, identical whatever batch an event lands in."""
    with np.errstate(over="ignore"):
        event_key = _mix64(event_ids.astype(np.uint64) ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF))
        return _mix64(event_key + pulse_index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))


def batch_key(event_ids: np.ndarray, salt: int) -> int:
    """A 64-bit key of a batch's ordered list of events: the random mode's draws depend on it, so a new batch
    (another epoch's shuffle) draws afresh while the same batch always draws the same."""
    with np.errstate(over="ignore"):
        positions = np.arange(len(event_ids), dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        mixed = np.bitwise_xor.reduce(_mix64(event_ids.astype(np.uint64) + positions), initial=np.uint64(0))
        return int(_mix64(np.asarray(mixed ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF))))


def _rank_within_groups(group_counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., n_g - 1 for each consecutive group of sizes `group_counts`."""
    return concatenated_ranges(np.zeros(len(group_counts), dtype=np.int64), group_counts)


# ----------------------------------------------------------------------------------------------------------------
# The collators
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _PulseCollator:
    """Shared part of the collators: down-sampling, feature scaling and padding.

    Args:
        config: the model's `PolarBertConfig` (scales, special ids, `max_pulses`, `mask_ratio`).
        max_pulses: down-sample events to at most this many pulses (default `config.max_pulses`).
        pad_to_multiple_of: round L up to a multiple of this (default `config.pad_to_multiple_of`; 1 or None: no
            rounding).
        keep_all_pulses: no down-sampling at all (evaluation on every pulse of long events).
        deterministic: draw selection (and masking) from the event_id, not from the generator, so an event gives
            the same pulses whatever batch it lands in (evaluation and prediction agree).
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

    def __post_init__(self):
        if self.max_pulses is None:
            self.max_pulses = self.config.max_pulses
        if self.pad_to_multiple_of is None:
            self.pad_to_multiple_of = self.config.pad_to_multiple_of

    def _draws(self, batch: PulseBatch, pulses: np.ndarray, event_of_pulse: np.ndarray, salt: int) -> np.ndarray:
        """One uniform [0, 1) draw per pulse in `pulses` (flat indices; `event_of_pulse` their event)."""
        pulse_index = pulses - batch["pulse_offsets"][event_of_pulse]
        salt = salt + (self.seed or 0)
        if self.deterministic:
            owner = batch["event_id"][event_of_pulse]
        else:  # the place in the batch, not the event id: an event given twice draws twice
            owner = event_of_pulse
            salt = batch_key(np.asarray(batch["event_id"]), salt)
        keys = event_keyed_draws(owner, pulse_index, salt)
        return (keys >> np.uint64(11)) * 2.0**-53  # the top 53 bits as a float64 in [0, 1)

    def choose_random(self, batch: PulseBatch, pool: np.ndarray, pool_event: np.ndarray, n_choose: np.ndarray,
                      salt: int) -> np.ndarray:
        """For each event e, `n_choose[e]` pulses of `pool` picked uniformly at random without replacement.

        `pool` holds flat pulse indices grouped by event in ascending order, `pool_event` their events; returns
        the chosen pulse indices, sorted. Each pool pulse draws a uniform key and an event keeps its `n_choose`
        smallest keys. Only keys below a per-event threshold are sorted, set so that about
        n_choose + 6 sqrt(n_choose) + 10 keys fall below it (an event left with fewer than n_choose sorts them
        all). The smallest keys always lie below the threshold, so the result is exactly that of a full sort,
        for a fraction of its cost on the long tail of events with thousands of pulses.
        """
        n_events = len(n_choose)
        keys = self._draws(batch, pool, pool_event, salt)
        pool_size = np.bincount(pool_event, minlength=n_events)
        threshold = (n_choose + 6 * np.sqrt(n_choose) + 10) / np.maximum(pool_size, 1)
        candidate = keys < threshold[pool_event]
        n_candidates = np.bincount(pool_event[candidate], minlength=n_events)
        short = n_candidates < n_choose
        if short.any():
            candidate |= short[pool_event]
            n_candidates = np.bincount(pool_event[candidate], minlength=n_events)
        candidates = np.flatnonzero(candidate)
        # event index + key in [0, 1): one sort orders by event, then by key
        order = np.argsort(pool_event[candidates] + keys[candidates], kind="stable")
        chosen = _rank_within_groups(n_candidates) < np.repeat(n_choose, n_candidates)
        return np.sort(pool[candidates[order][chosen]])

    def select_pulses(self, batch: PulseBatch) -> tuple[np.ndarray, np.ndarray]:
        """Down-sample: the flat indices of the kept pulses (grouped by event, in original order) and the
        (B + 1,) offsets of the events inside them."""
        offsets = np.asarray(batch["pulse_offsets"], dtype=np.int64)
        counts = np.diff(offsets)
        if len(counts) and counts.min() < 1:
            event = int(np.flatnonzero(counts < 1)[0])
            raise ValueError(f"event_id {batch['event_id'][event]} has no pulses")
        too_long = np.zeros(len(counts), bool) if self.keep_all_pulses else counts > self.max_pulses
        if not too_long.any():
            return np.arange(offsets[-1], dtype=np.int64), offsets
        event = np.repeat(np.arange(len(counts)), counts)
        auxiliary = np.asarray(batch["auxiliary"], dtype=bool)
        n_primary = counts - np.bincount(event[auxiliary], minlength=len(counts))
        # A long event with more primaries than max_pulses draws max_pulses of them; any other long event keeps
        # every primary and draws the rest from its auxiliary pulses. Short events keep everything.
        draw_primaries = too_long & (n_primary >= self.max_pulses)
        draw_auxiliary = too_long & ~draw_primaries
        pool = np.flatnonzero(np.where(auxiliary, draw_auxiliary[event], draw_primaries[event]))
        n_choose = np.select([draw_primaries, draw_auxiliary], [self.max_pulses, self.max_pulses - n_primary], 0)
        keep = ~too_long[event] | (draw_auxiliary[event] & ~auxiliary)
        keep[self.choose_random(batch, pool, event[pool], n_choose, SELECTION_SALT)] = True
        kept_counts = np.where(too_long, self.max_pulses, counts)
        return np.flatnonzero(keep), np.concatenate([[0], np.cumsum(kept_counts)])

    def _padded_length(self, kept_counts: np.ndarray) -> int:
        length = int(kept_counts.max()) if len(kept_counts) else 1
        multiple = self.pad_to_multiple_of or 1
        return -(-length // multiple) * multiple

    def event_times(self, time: np.ndarray, charge: np.ndarray, auxiliary: np.ndarray, event_of_kept: np.ndarray,
                    kept_offsets: np.ndarray) -> np.ndarray:
        """(B,) float64 reference time of each event, from its selected pulses (`config.event_time_reference`).

        The charge-weighted mean runs over the primary (HLC) pulses, or over all pulses of an event without any:
        noise pulses (most of the auxiliary ones) spread over the whole 10 us readout window and would drag it."""
        if self.config.event_time_reference == "first_pulse":
            return time[kept_offsets[:-1]].astype(np.float64)  # the kept pulses stay in time order
        n_events = len(kept_offsets) - 1
        weight = charge.astype(np.float64)
        has_primary = np.bincount(event_of_kept[~auxiliary], minlength=n_events) > 0
        weight = np.where(has_primary[event_of_kept] & auxiliary, 0.0, weight)
        weighted = np.bincount(event_of_kept, weights=weight * time, minlength=n_events)
        return weighted / np.bincount(event_of_kept, weights=weight, minlength=n_events)

    def _encode(self, batch: PulseBatch, kept: np.ndarray, kept_offsets: np.ndarray) -> dict[str, np.ndarray]:
        """dom_ids, features and attention_mask (B, L, ...) of the kept pulses, and each kept pulse's slot
        `row * L + column` in the flattened padded batch."""
        config = self.config
        kept_counts = np.diff(kept_offsets)
        n_events, length = len(kept_counts), self._padded_length(kept_counts)
        slot = concatenated_ranges(np.arange(n_events) * length, kept_counts)

        dom_ids = np.full(n_events * length, config.pad_token_id, dtype=np.int64)
        dom_ids[slot] = batch["sensor_id"][kept]
        n_features = config.num_pulse_features
        time, charge = batch["time"][kept], batch["charge"][kept]
        pulse_features = np.empty((len(kept), n_features), dtype=np.float32)
        pulse_features[:, 0] = (time - config.time_offset) / config.time_scale
        pulse_features[:, 1] = np.log10(charge) / config.charge_scale
        pulse_features[:, 2] = batch["auxiliary"][kept] - config.auxiliary_offset
        if config.event_time_reference is not None:
            event_of_kept = np.repeat(np.arange(n_events), kept_counts)
            event_time = self.event_times(time, charge, batch["auxiliary"][kept], event_of_kept, kept_offsets)
            pulse_features[:, 3] = (time - event_time[event_of_kept]) / config.event_time_scale
        features = np.zeros((n_events * length, n_features), dtype=np.float32)
        features[slot] = pulse_features
        attention_mask = np.zeros(n_events * length, dtype=np.int64)
        attention_mask[slot] = 1
        return {
            "dom_ids": dom_ids.reshape(n_events, length),
            "features": features.reshape(n_events, length, n_features),  # (batch, seq_len, num_pulse_features)
            "attention_mask": attention_mask.reshape(n_events, length),
            "_slot": slot,
        }


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
        batch = as_pulse_batch(features)
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
        return np.log10(summed).astype(np.float32)


@dataclass
class PolarBertDirectionCollator(_PulseCollator):
    """Rows -> a `PolarBertForDirection` batch: down-sampled events (nothing masked) and, when the rows carry
    azimuth and zenith, unit-vector `labels` (Kaggle convention: the direction the neutrino came from). Without
    them (a test split) `labels` is left out, for prediction. Arguments: see `_PulseCollator`."""

    def __call__(self, features) -> dict[str, torch.Tensor]:
        batch = as_pulse_batch(features)
        kept, kept_offsets = self.select_pulses(batch)
        encoded = self._encode(batch, kept, kept_offsets)
        del encoded["_slot"]
        output = {name: torch.from_numpy(array) for name, array in encoded.items()}
        if all(label in batch for label in LABEL_COLUMNS):
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
        batch = as_pulse_batch(features, self.columns)
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
        batch.update({name: np.empty(offsets[-1], PULSE_DTYPES[name]) for name in PULSE_COLUMNS})
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
