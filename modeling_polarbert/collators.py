"""Collators: dataset rows (events with all their pulses) -> PolarBERT model batches.

The batch contract (see the model's docstring), B events, L = the batch's longest selected event (rounded up to
`pad_to_multiple_of`); the model prepends its CLS token itself, so none is added here:

| key | dtype, shape | content |
| --- | --- | --- |
| `dom_ids` | int64 (B, L) | sensor ids; `config.pad_token_id` at padding, `config.mask_token_id` where masked |
| `features` | float32 (B, L, F) | (time - time_offset) / time_scale, log10(charge) / charge_scale, auxiliary - auxiliary_offset, and with the extractor's `event_time_reference` (time - t_event) / event_time_scale (F = `config.num_pulse_features`); 0 at padding |
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
collators add what training needs: the random draws, masking and labels.

Masking (pretraining): `round(mask_ratio * n)` of an event's n selected primary pulses, rounded half up and at
least one when n > 0 (a 1-primary event masks its only primary pulse rather than none); auxiliary pulses are never
masked, an event without primary pulses masks nothing.

Two inputs are accepted, with identical results for the same draws:
* a list of row dicts, as `dataset[i]` gives them (lists, numpy arrays or tensors);
* the compact batch that `as_pulse_dataset(dataset)` (pulse_dataset.py) gathers straight from the Arrow columns
  (the fast path for `Trainer`, evaluation and prediction; see `PulseBatch`).

Everything is vectorised over the whole batch (numpy on the concatenated pulses: a random key per pulse and one
sort pick the subsets, see `feature_extraction_polarbert.choose_random`), with no Python loop over pulses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .configuration_polarbert import SHARED_SETTINGS, PolarBertConfig
from .feature_extraction_polarbert import (
    MASKING_SALT,
    PolarBertFeatureExtractor,
    PulseBatch,
    choose_random,
    concatenated_ranges,
    rows_to_pulse_batch,
)
from .kaggle_layout import DIRECTION_COLUMNS
from .numpy_directions import angles_to_unit_vector
from .pulse_dataset import log10_total_charge
from .labels import encode_labels, source_columns

IGNORE_INDEX = -100  # the Transformers convention for "no label here"


# ----------------------------------------------------------------------------------------------------------------
# The collators
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _PulseCollator:
    """Shared part of the collators: down-sampling, feature scaling and padding, all done by the model's
    `PolarBertFeatureExtractor` (the owner of those settings), so that training, evaluation, `polarbert predict` and a
    user of the Hub checkpoint select and scale pulses with the same code.

    Args:
        config: the model's `PolarBertConfig` (special ids, `mask_ratio`, the task's labels).
        max_pulses: down-sample events to at most this many pulses (default: the extractor's).
        pad_to_multiple_of: round L up to a multiple of this (default: the extractor's; 1 or None: no rounding).
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
        feature_extractor: the model's `PolarBertFeatureExtractor` (the one saved with it); default
            `PolarBertFeatureExtractor.for_model(config)`. It must agree with the config on what the model reads.
    """

    config: PolarBertConfig
    max_pulses: int | None = None
    pad_to_multiple_of: int | None = None
    keep_all_pulses: bool = False
    deterministic: bool = False
    seed: int | None = None
    pack_length: int | None = None
    feature_extractor: PolarBertFeatureExtractor | None = None

    def __post_init__(self):
        extractor = self.feature_extractor or PolarBertFeatureExtractor.for_model(self.config)
        differ = [f"{name}: feature extractor {getattr(extractor, name)!r}, model config {getattr(self.config, name)!r}"
                  for name in SHARED_SETTINGS if getattr(extractor, name) != getattr(self.config, name)]
        if differ:
            raise ValueError("the feature extractor does not match the model's config (" + "; ".join(differ) + ")")
        given = {name: getattr(self, name) for name in ("max_pulses", "pad_to_multiple_of") if getattr(self, name)}
        self.feature_extractor = extractor.with_settings(**given)
        self.max_pulses = self.feature_extractor.max_pulses
        self.pad_to_multiple_of = self.feature_extractor.pad_to_multiple_of
        if self.pack_length is not None and not self.keep_all_pulses and self.pack_length < self.max_pulses + 1:
            raise ValueError(f"pack_length={self.pack_length} cannot hold an event of max_pulses={self.max_pulses} "
                             "pulses and its CLS slot")

    def pulse_batch(self, events, extra_columns: Sequence[str] = ()) -> PulseBatch:
        """Rows or a fast-path `PulseBatch`, checked as the feature extractor checks a user's events: what the
        model would otherwise check on the device (see check_inputs), and every value as given, before the cast
        to the prepared dtypes. The fast path's batches were checked by `polarbert prepare` already, but are
        checked again (a few vectorised comparisons): a dataset may have been written by other code."""
        return self.feature_extractor.pulse_batch(events, extra_columns)

    def select_pulses(self, batch: PulseBatch) -> tuple[np.ndarray, np.ndarray]:
        """Down-sample: the flat indices of the kept pulses and the (B + 1,) offsets of the events inside them."""
        return self.feature_extractor.select_pulses(
            batch, keep_all_pulses=self.keep_all_pulses, deterministic=self.deterministic, seed=self.seed
        )

    def encode(self, batch: PulseBatch, kept: np.ndarray, kept_offsets: np.ndarray) -> tuple[dict, np.ndarray]:
        """dom_ids, features and attention_mask (B, L, ...) of the kept pulses, and each kept pulse's slot
        `row * L + column` in the flattened padded batch (what masking needs); packed (rows, T, ...) with
        `pack_length`."""
        encoded, slot = self.feature_extractor.encode(batch, kept, kept_offsets)
        if self.pack_length is not None:
            encoded, slot = self._pack(batch, encoded, slot, np.diff(kept_offsets))
        return encoded, slot

    def model_inputs(self, batch: PulseBatch) -> dict[str, torch.Tensor]:
        """The inputs of a batch with nothing masked: down-sampled, encoded, as tensors."""
        kept, kept_offsets = self.select_pulses(batch)
        encoded, _ = self.encode(batch, kept, kept_offsets)
        return {name: torch.from_numpy(array) for name, array in encoded.items()}

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

    def __call__(self, events) -> dict[str, torch.Tensor]:
        batch = self.pulse_batch(events)
        kept, kept_offsets = self.select_pulses(batch)
        encoded, slot = self.encode(batch, kept, kept_offsets)
        slot = slot[self.mask_positions(batch, kept, kept_offsets)]
        dom_ids = encoded["dom_ids"].reshape(-1)  # a view: writing it writes encoded["dom_ids"]
        labels = np.full(dom_ids.shape, IGNORE_INDEX, dtype=np.int64)
        labels[slot] = dom_ids[slot]
        dom_ids[slot] = self.config.mask_token_id
        return {
            **{name: torch.from_numpy(array) for name, array in encoded.items()},
            "labels": torch.from_numpy(labels.reshape(encoded["dom_ids"].shape)),
            "total_charge": torch.from_numpy(log10_total_charge(batch)),
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
        chosen = choose_random(batch, kept[primary], event_of_kept[primary], self.masked_counts(n_primary),
                               MASKING_SALT, self.deterministic, self.seed)
        return np.searchsorted(kept, chosen)  # `kept` is sorted: flat pulse index -> position in `kept`


@dataclass
class PolarBertDirectionCollator(_PulseCollator):
    """Rows -> a `PolarBertForDirection` batch: down-sampled events (nothing masked) and, when the rows carry
    azimuth and zenith, unit-vector `labels` (Kaggle convention: the direction the neutrino came from). Without
    them (a test split) `labels` is left out, for prediction. Arguments: see `_PulseCollator`."""

    def __call__(self, events) -> dict[str, torch.Tensor]:
        batch = self.pulse_batch(events)
        output = self.model_inputs(batch)
        if all(name in batch for name in DIRECTION_COLUMNS):
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
    left out, for prediction. The fast path must gather the columns: `as_pulse_dataset(dataset,
    extra_columns=source_columns(config.label_columns))`. Arguments: see `_PulseCollator`."""

    def __post_init__(self):
        super().__post_init__()
        if not self.config.label_columns or self.config.problem_type is None:
            raise ValueError("the config has no label_columns/problem_type: set them with tasks.sequence_task_config")
        self.columns = source_columns(self.config.label_columns)

    def __call__(self, events) -> dict[str, torch.Tensor]:
        batch = self.pulse_batch(events, self.columns)
        output = self.model_inputs(batch)
        if all(name in batch for name in self.columns):
            labels = encode_labels({name: batch[name] for name in self.columns}, self.config, batch["event_id"])
            output["labels"] = torch.from_numpy(labels)
        return output

