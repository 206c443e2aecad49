"""PolarBERT's feature extractor: IceCube events (lists of pulses) -> the model's inputs.

    extractor = AutoFeatureExtractor.from_pretrained(folder_or_hub_id, trust_remote_code=True)
    inputs = extractor(events, return_tensors="pt")       # dom_ids, features, attention_mask
    direction = model(**inputs).direction

This file is the ONE implementation of pulse selection (down-sampling), feature scaling and padding, and the one
owner of their settings (the model config keeps only what the model reads of them, `model_settings`): the package's
collators call it for training, evaluation and `polarbert predict`, and it ships to the Hub beside the weights
(`preprocessor_config.json` + this file, found through its `auto_map` entry), so it imports only numpy and
transformers.

The batch it returns is the model's batch contract (`modeling_polarbert.py`): int64 `dom_ids` (B, L) with
`pad_token_id` at padding, float32 `features` (B, L, F) scaled as the class docstring says and 0 at padding, int64
`attention_mask` (B, L); L = the longest selected event, rounded up to `pad_to_multiple_of`, and no CLS token (the
model prepends it).

Down-sampling (paper, section 3): an event with more than `max_pulses` pulses keeps its primary (auxiliary =
False) pulses first: a random subset of them if there are more than `max_pulses`, else all of them plus random
auxiliary pulses. The kept pulses stay in their original order (the Kaggle files are time-ordered). The extractor
draws deterministically from each event's `event_id`, exactly as `polarbert predict` and evaluation do, so an
event gets the same pulses (and the same direction) whichever batch it is in; `keep_all_pulses=True` keeps every
pulse. The collators also draw at random for training (from a seed and the batch), through the same code.

Everything is vectorised over the whole batch (numpy on the concatenated pulses: a random key per pulse and one
sort pick the subsets, see `choose_random`), with no Python loop over pulses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from transformers.feature_extraction_utils import BatchFeature, FeatureExtractionMixin

PULSE_COLUMNS = ("sensor_id", "time", "charge", "auxiliary")
# The prepared dataset's dtypes (Kaggle files: int16 sensor ids, int64 ns times, float64 charges, bool flags).
PULSE_DTYPES = {"sensor_id": np.int16, "time": np.int32, "charge": np.float32, "auxiliary": np.bool_}
LABEL_COLUMNS = ("azimuth", "zenith")
EVENT_TIME_REFERENCES = (None, "first_pulse", "charge_weighted_mean")
MISSING_EVENT_ID = -1  # what a row without an event_id gets; deterministic down-sampling refuses to draw from it
# Salts keep the deterministic (event_id-keyed) draws of selection and masking independent of each other.
SELECTION_SALT, MASKING_SALT = 0x5E1EC7, 0x3A5C


# ----------------------------------------------------------------------------------------------------------------
# The compact batch: flat pulse arrays + offsets
# ----------------------------------------------------------------------------------------------------------------
#
# A `PulseBatch` is a plain dict:
#   "event_id":      int64 (B,)       MISSING_EVENT_ID where a row had none
#   "pulse_offsets": int64 (B + 1,)   event i's pulses are [pulse_offsets[i], pulse_offsets[i + 1]) of:
#   "sensor_id":     int16 (N,)
#   "time":          int32 (N,)       float64 when the rows give non-integer times
#   "charge":        float32 (N,)
#   "auxiliary":     bool (N,)
#   "azimuth", "zenith": float64 (B,)   only when the rows have labels
#   other per-event columns (B,)        only those asked for (`extra_columns`), e.g. "energy", "is_track"
PulseBatch = dict


# What a pulse column may hold before its cast to PULSE_DTYPES, as numpy dtype kinds (b bool, i and u integers, f
# floats). As strict as `polarbert prepare` is with the batch files (integer DOM ids, flags that are flags), but
# fractional times, integer charges and 0/1 flags are taken as the numbers they are.
ACCEPTED_KINDS = {"sensor_id": "iu", "time": "iuf", "charge": "iuf", "auxiliary": "biu"}
WHAT_A_COLUMN_HOLDS = {"sensor_id": "integers (DOM ids)", "time": "numbers (ns)", "charge": "numbers (p.e.)",
                       "auxiliary": "bools or 0/1"}
# Sensor ids are stored as int16: without a model's num_doms, a DOM id must at least fit there.
INT16_LIMIT = int(np.iinfo(np.int16).max) + 1
INT32 = np.iinfo(np.int32)


def _refusal(batch: PulseBatch, name: str, pulse: int, value, what: str) -> ValueError:
    """The error for the flat pulse `pulse` of column `name`: its event (index and event_id), its place in the
    event, and `value`, the value as the caller gave it (before any cast)."""
    offsets = np.asarray(batch["pulse_offsets"])
    event = int(np.searchsorted(offsets, pulse, side="right") - 1)
    return ValueError(f"event {event} (event_id {batch['event_id'][event]}): {name} {value} of pulse "
                      f"{pulse - offsets[event]} is {what}")


def _wrong_kind(values: np.ndarray, name: str) -> int | None:
    """The index of the value to name when `values` has a dtype that column `name` may not hold (its first
    fractional value, else its first), or None when the dtype is accepted."""
    if len(values) == 0 or values.dtype.kind in ACCEPTED_KINDS[name]:
        return None
    if values.dtype.kind == "f":
        fractional = np.flatnonzero(values != np.floor(values))
        return int(fractional[0]) if len(fractional) else 0
    return 0


def _kind_refusal(batch: PulseBatch, name: str, values: np.ndarray, index: int, first_pulse: int) -> ValueError:
    return _refusal(batch, name, first_pulse + index, values[index],
                    f"of dtype {values.dtype}, but {name} must hold {WHAT_A_COLUMN_HOLDS[name]}")


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _checked_event_ids(values) -> np.ndarray:
    """The events' ids as int64, refused unless every one is an integer that int64 holds (they key the draws).
    Ids that are not already an integer array are checked one by one as given: a loop over events, not pulses."""
    if not (isinstance(values, np.ndarray) and values.dtype.kind in "iu"):
        values = list(values)
        wrong = next((event for event, value in enumerate(values) if not _is_integer(value)), None)
        if wrong is not None:
            raise ValueError(f"event {wrong}: event_id {values[wrong]} is not an integer")
    ids = np.asarray(values)
    if ids.dtype != np.int64:  # uint64, or Python ints beyond it: each must fit in int64
        limits = np.iinfo(np.int64)
        wrong = next((event for event, value in enumerate(ids.tolist()) if not limits.min <= value <= limits.max), None)
        if wrong is not None:
            raise ValueError(f"event {wrong}: event_id {values[wrong]} does not fit in int64")
    return ids.astype(np.int64)


def _positive_finite_in_float32(charge: np.ndarray) -> np.ndarray:
    """Whether each charge stays a positive finite number as the float32 the features are computed from (a
    charge of 1e-50 would become 0 there, and 1e300 infinity)."""
    with np.errstate(over="ignore"):
        as_float32 = charge.astype(np.float32, copy=False)
    return (as_float32 > 0) & np.isfinite(as_float32)


def _bad_values(name: str, values: np.ndarray, limit: int) -> tuple[np.ndarray, str] | None:
    """A mask of the values of column `name` that the model would misread, and what is wrong with them; None when
    the dtype rules them out (a bool flag is a flag, an integer time is finite)."""
    if name == "sensor_id":
        return (values < 0) | (values >= limit), f"outside [0, {limit})"
    if name == "auxiliary":
        return None if values.dtype == bool else ((values != 0) & (values != 1), "neither a bool nor 0 or 1")
    if name == "time":
        return None if values.dtype.kind in "iu" else (~np.isfinite(values), "not finite")
    return ~_positive_finite_in_float32(values), "not a positive finite charge (as float32)"


def check_pulse_values(batch: PulseBatch, num_doms: int | None = None) -> None:
    """Refuse, before any cast, the pulse values the model would silently misread: sensor ids outside
    [0, num_doms) (int16's range without num_doms), flags other than bool or 0/1, non-finite times, charges that
    are not positive finite float32 numbers. The ValueError names the column, the value as given, the event (index
    and event_id) and the pulse. The dtypes must have been checked first (see `_wrong_kind`)."""
    limit = INT16_LIMIT if num_doms is None else num_doms
    for name in PULSE_COLUMNS:
        values = np.asarray(batch[name])
        found = _bad_values(name, values, limit)
        if found is not None and found[0].any():
            pulse = int(np.argmax(found[0]))
            raise _refusal(batch, name, pulse, values[pulse], found[1])


def _time_array(time: np.ndarray) -> np.ndarray:
    """int32 for integer times that fit (the prepared dtype), float64 otherwise: fractional ns stay exact, and so
    does an integer time beyond int32, which a cast to int32 would wrap around."""
    if time.dtype == np.int32:
        return time
    if time.dtype.kind in "iu" and (len(time) == 0 or (time.min() >= INT32.min and time.max() <= INT32.max)):
        return time.astype(np.int32)
    return time.astype(np.float64, copy=False)


def checked_pulse_batch(batch: PulseBatch, num_doms: int | None = None) -> PulseBatch:
    """A copy of `batch` whose pulse columns are checked (dtypes, then `check_pulse_values`) and only then cast to
    PULSE_DTYPES, which after the checks changes no value."""
    batch = dict(batch)
    batch["event_id"] = _checked_event_ids(batch["event_id"])
    offsets = np.asarray(batch["pulse_offsets"], dtype=np.int64)
    if len(offsets) != len(batch["event_id"]) + 1 or offsets[0] != 0 or (np.diff(offsets) < 0).any():
        raise ValueError(f"'pulse_offsets' must rise from 0 in {len(batch['event_id']) + 1} steps, one more than "
                         f"the events, got {offsets[:8].tolist()}...")
    for name in PULSE_COLUMNS:
        values = np.asarray(batch[name])
        if values.ndim != 1 or len(values) != offsets[-1]:
            raise ValueError(f"{name!r} holds {values.shape} values, but 'pulse_offsets' ends at {offsets[-1]}")
        index = _wrong_kind(values, name)
        if index is not None:
            raise _kind_refusal(batch, name, values, index, 0)
        batch[name] = values
    check_pulse_values(batch, num_doms)
    for name in ("sensor_id", "charge", "auxiliary"):
        batch[name] = batch[name].astype(PULSE_DTYPES[name], copy=False)
    batch["time"] = _time_array(batch["time"])
    return batch


def _check_rows(rows: Sequence[Mapping]) -> None:
    if rows and isinstance(rows[0], str):
        raise TypeError(
            "got a list of str: the batch dict of `as_pulse_dataset` was iterated by another wrapper (Trainer "
            "wraps the collator when `remove_unused_columns=True`; set it to False)")
    for index, row in enumerate(rows):
        missing = [name for name in PULSE_COLUMNS if name not in row]
        if missing:
            raise ValueError(f"event {index} (event_id {row.get('event_id', 'missing')}) has no {missing}")


def _pulse_offsets(parts: dict[str, list[np.ndarray]], event_ids: list) -> np.ndarray:
    """(B + 1,) offsets of the events' pulses, after checking that each event gives every column as one list of
    pulse values, all of the same length. A loop over events, not pulses."""
    counts = np.zeros(len(event_ids), dtype=np.int64)
    for index, event_parts in enumerate(zip(*(parts[name] for name in PULSE_COLUMNS))):
        for name, part in zip(PULSE_COLUMNS, event_parts):
            if part.ndim != 1:
                raise ValueError(f"event {index} (event_id {event_ids[index]}): {name!r} is not a list of pulse "
                                 f"values (shape {part.shape})")
            if name != "sensor_id" and len(part) != len(event_parts[0]):
                raise ValueError(f"event {index} (event_id {event_ids[index]}): {name!r} holds {len(part)} values "
                                 f"but 'sensor_id' {len(event_parts[0])}")
        counts[index] = len(event_parts[0])
    return np.concatenate([[0], np.cumsum(counts)])


def rows_to_pulse_batch(rows: Sequence[Mapping], extra_columns: Sequence[str] = (),
                        num_doms: int | None = None) -> PulseBatch:
    """Concatenate events (mappings with `sensor_id`, `time`, `charge`, `auxiliary` array-likes and an optional
    `event_id`, as `dataset[i]` returns them) into a `PulseBatch`, with the per-event `extra_columns` (a task's
    labels) that every event has. Every value is checked as given, before the cast to PULSE_DTYPES (see
    `checked_pulse_batch`; sensor ids against `num_doms` when given)."""
    _check_rows(rows)
    event_ids = [row.get("event_id", MISSING_EVENT_ID) for row in rows]
    parts = {name: [np.asarray(row[name]) for row in rows] for name in PULSE_COLUMNS}
    offsets = _pulse_offsets(parts, event_ids)
    batch = {"event_id": event_ids, "pulse_offsets": offsets}
    for name in PULSE_COLUMNS:
        # An event whose values have a refused dtype is named before concatenation merges the dtypes.
        for event, part in enumerate(parts[name]):
            index = _wrong_kind(part, name)
            if index is not None:
                raise _kind_refusal(batch, name, part, index, offsets[event])
        given = [part for part in parts[name] if len(part)]
        batch[name] = np.concatenate(given) if given else np.zeros(0, PULSE_DTYPES[name])
    batch = checked_pulse_batch(batch, num_doms)
    if rows and all(label in rows[0] for label in LABEL_COLUMNS):
        for label in LABEL_COLUMNS:
            batch[label] = np.array([row[label] for row in rows], dtype=np.float64)
    for name in extra_columns:
        if rows and all(name in row for row in rows):
            batch[name] = np.array([row[name] for row in rows])
    return batch


def as_pulse_batch(events, extra_columns: Sequence[str] = (), num_doms: int | None = None) -> PulseBatch:
    """Accept a `PulseBatch` (a mapping with 'pulse_offsets') or a list of events; either way checked and cast
    (see `checked_pulse_batch`)."""
    if isinstance(events, Mapping):
        if "pulse_offsets" not in events:
            raise TypeError("a dict of pulses must be a PulseBatch (with 'pulse_offsets'); give a list of events "
                            "otherwise")
        return checked_pulse_batch(events, num_doms)
    return rows_to_pulse_batch(list(events), extra_columns, num_doms)


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


def uniform_draws(batch: PulseBatch, pulses: np.ndarray, event_of_pulse: np.ndarray, salt: int,
                  deterministic: bool, seed: int | None = None) -> np.ndarray:
    """One uniform [0, 1) draw per pulse in `pulses` (flat indices; `event_of_pulse` their event).

    Deterministic: from (seed, event_id, pulse index in the event) alone. Random: from (seed, the batch's list of
    event ids, the event's place in the batch, the pulse), so a shuffled epoch's new batches draw afresh while the
    same batch always draws the same (no state: DataLoader workers and resumed runs draw what one process draws).
    """
    pulse_index = pulses - np.asarray(batch["pulse_offsets"])[event_of_pulse]
    salt = salt + (seed or 0)
    if deterministic:
        owner = np.asarray(batch["event_id"])[event_of_pulse]
    else:  # the place in the batch, not the event id: an event given twice draws twice
        owner = event_of_pulse
        salt = batch_key(np.asarray(batch["event_id"]), salt)
    keys = event_keyed_draws(owner, pulse_index, salt)
    return (keys >> np.uint64(11)) * 2.0**-53  # the top 53 bits as a float64 in [0, 1)


def choose_smallest_keys(keys: np.ndarray, pool: np.ndarray, pool_event: np.ndarray, n_choose: np.ndarray) -> np.ndarray:
    """For each event e, the `n_choose[e]` pulses of `pool` with the smallest `keys` (uniform in [0, 1)), sorted.

    `pool` holds flat pulse indices grouped by event in ascending order, `pool_event` their events. Only keys below
    a per-event threshold are sorted, set so that about n_choose + 6 sqrt(n_choose) + 10 keys fall below it (an
    event left with fewer than n_choose sorts them all). The smallest keys always lie below the threshold, so the
    result is exactly that of a full sort, for a fraction of its cost on the long tail of events with thousands
    of pulses.
    """
    n_events = len(n_choose)
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
    rank_in_event = concatenated_ranges(np.zeros(n_events, dtype=np.int64), n_candidates)  # 0, 1, ... per event
    chosen = rank_in_event < np.repeat(n_choose, n_candidates)
    return np.sort(pool[candidates[order][chosen]])


def choose_random(batch: PulseBatch, pool: np.ndarray, pool_event: np.ndarray, n_choose: np.ndarray, salt: int,
                  deterministic: bool, seed: int | None = None) -> np.ndarray:
    """For each event e, `n_choose[e]` pulses of `pool` picked uniformly at random without replacement (each pool
    pulse draws a uniform key, see `uniform_draws`, and an event keeps its smallest keys)."""
    keys = uniform_draws(batch, pool, pool_event, salt, deterministic, seed)
    return choose_smallest_keys(keys, pool, pool_event, n_choose)


# ----------------------------------------------------------------------------------------------------------------
# The feature extractor
# ----------------------------------------------------------------------------------------------------------------


class PolarBertFeatureExtractor(FeatureExtractionMixin):
    r"""
    Turns IceCube events into PolarBERT inputs (`dom_ids`, `features`, `attention_mask`): deterministic
    down-sampling to `max_pulses` (the pulses `polarbert predict` chooses), feature scaling and padding.

    It owns these settings. A model config records what the model reads of them (`model_settings()`), and the
    model's `from_pretrained` refuses a folder whose preprocessor_config.json disagrees with config.json on those.
    Training saves it beside every checkpoint; `for_model(config)` builds one for a config without a saved one.

    Args:
        num_doms (`int`, *optional*, defaults to 5160):
            Number of DOMs; sensor ids must lie in `[0, num_doms)`.
        pad_token_id (`int`, *optional*):
            The DOM id at padding positions; defaults to `num_doms` (the model's `config.pad_token_id`).
        max_pulses (`int`, *optional*, defaults to 127):
            Events with more pulses are down-sampled to this many (primary pulses first).
        time_offset (`float`, *optional*, defaults to 1e4), time_scale (`float`, *optional*, defaults to 3e4):
            Pulse time (ns) maps to `(time - time_offset) / time_scale`.
        charge_scale (`float`, *optional*, defaults to 3.0):
            Pulse charge (p.e.) maps to `log10(charge) / charge_scale`.
        auxiliary_offset (`float`, *optional*, defaults to 0.5):
            The auxiliary flag maps to `auxiliary - auxiliary_offset`.
        event_time_reference (`str`, *optional*), event_time_scale (`float`, *optional*, defaults to 1000.0):
            A fourth feature, `(time - t_event) / event_time_scale`, with `t_event` the time of the event's first
            selected pulse (`"first_pulse"`) or the charge-weighted mean time of its selected primary pulses
            (`"charge_weighted_mean"`; all of them when it has none). `None`: three features (the paper).
        pad_to_multiple_of (`int`, *optional*):
            Round the padded length up to a multiple of this (8 suits tensor cores; a coarse multiple, 32, also keeps
            the number of distinct batch shapes small, which `torch.compile` likes).
    """

    model_input_names = ["dom_ids", "features", "attention_mask"]
    # What a model config records of these settings (its SHARED_SETTINGS, compared at the model's door). A new input
    # option goes into `__init__`, `_scaled_features` and, adding a column, `num_pulse_features`: nowhere else.
    model_setting_names = ("num_doms", "pad_token_id", "num_pulse_features", "charge_scale", "auxiliary_offset")

    def __init__(
        self,
        num_doms: int = 5160,
        pad_token_id: int | None = None,
        max_pulses: int = 127,
        time_offset: float = 1e4,
        time_scale: float = 3e4,
        charge_scale: float = 3.0,
        auxiliary_offset: float = 0.5,
        event_time_reference: str | None = None,
        event_time_scale: float = 1000.0,
        pad_to_multiple_of: int | None = None,
        num_pulse_features: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_doms > INT16_LIMIT:
            raise ValueError(f"num_doms={num_doms}: sensor ids are stored as int16, which holds at most {INT16_LIMIT}")
        self.num_doms = num_doms
        self.pad_token_id = num_doms if pad_token_id is None else pad_token_id
        self.max_pulses = max_pulses
        self.time_offset = time_offset
        self.time_scale = time_scale
        self.charge_scale = charge_scale
        self.auxiliary_offset = auxiliary_offset
        if event_time_reference not in EVENT_TIME_REFERENCES:
            raise ValueError(f"event_time_reference must be one of {EVENT_TIME_REFERENCES}, got {event_time_reference!r}")
        self.event_time_reference = event_time_reference
        self.event_time_scale = event_time_scale
        self.pad_to_multiple_of = pad_to_multiple_of
        if num_pulse_features is not None and num_pulse_features != self.num_pulse_features:
            raise ValueError(f"num_pulse_features={num_pulse_features}, but these settings give "
                             f"{self.num_pulse_features} feature columns (event_time_reference={event_time_reference!r})")

    # ---- what the model reads of these settings ---------------------------------------------------------------

    @property
    def num_pulse_features(self) -> int:
        """Columns of `features`: time, charge, auxiliary flag, and the time within the event when it is on."""
        return 3 if self.event_time_reference is None else 4

    def model_settings(self) -> dict:
        """What a model config records of this extractor: `PolarBertConfig(**extractor.model_settings(), ...)`."""
        return {name: getattr(self, name) for name in self.model_setting_names}

    def to_dict(self) -> dict:  # num_pulse_features saved too, for the model's door to read
        return {**super().to_dict(), "num_pulse_features": self.num_pulse_features}

    @classmethod
    def for_model(cls, config, **settings) -> "PolarBertFeatureExtractor":
        """An extractor for a model config: what the model reads (`model_setting_names`) from the config, the rest from
        `settings` or the defaults. A model reading a fourth column needs its `event_time_reference` given."""
        given = [name for name in settings if name in cls.model_setting_names]
        if given:
            raise ValueError(f"{given}: the model config's to set (model_settings), not for_model's")
        extractor = cls(**settings, **{name: getattr(config, name) for name in cls.model_setting_names
                                       if name != "num_pulse_features"})
        if extractor.num_pulse_features != config.num_pulse_features:
            raise ValueError(f"num_pulse_features: the model reads {config.num_pulse_features}, the extractor writes "
                             f"{extractor.num_pulse_features} (event_time_reference={extractor.event_time_reference!r}); "
                             "load the one saved with the model (from_pretrained), or give its event_time_reference")
        return extractor

    def with_settings(self, **changes) -> "PolarBertFeatureExtractor":
        """A copy with the given settings changed."""
        settings = {key: value for key, value in self.to_dict().items()
                    if key not in ("feature_extractor_type", "num_pulse_features")}
        return type(self)(**{**settings, **changes})

    # ---- the one implementation of selection, scaling and padding ---------------------------------------------

    def select_pulses(self, batch: PulseBatch, keep_all_pulses: bool = False, deterministic: bool = True,
                      seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Down-sample: the flat indices of the kept pulses (grouped by event, in original order) and the (B + 1,)
        offsets of the events inside them. `deterministic` draws from the event_id (evaluation, prediction), else
        from the seed and the batch (training); see `uniform_draws`."""
        offsets = np.asarray(batch["pulse_offsets"], dtype=np.int64)
        counts = np.diff(offsets)
        if len(counts) and counts.min() < 1:
            event = int(np.flatnonzero(counts < 1)[0])
            raise ValueError(f"event_id {batch['event_id'][event]} has no pulses")
        too_long = np.zeros(len(counts), bool) if keep_all_pulses else counts > self.max_pulses
        if not too_long.any():
            return np.arange(offsets[-1], dtype=np.int64), offsets
        if deterministic:
            self._check_event_ids(np.asarray(batch["event_id"]), counts, too_long)
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
        keep[choose_random(batch, pool, event[pool], n_choose, SELECTION_SALT, deterministic, seed)] = True
        kept_counts = np.where(too_long, self.max_pulses, counts)
        return np.flatnonzero(keep), np.concatenate([[0], np.cumsum(kept_counts)])

    def _check_event_ids(self, event_ids: np.ndarray, counts: np.ndarray, too_long: np.ndarray) -> None:
        missing = too_long & (event_ids < 0)
        if missing.any():
            index = int(np.flatnonzero(missing)[0])
            raise ValueError(
                f"event {index} has {counts[index]} pulses, more than max_pulses={self.max_pulses}, and no "
                f"non-negative 'event_id': the down-sampling of `polarbert predict` draws each event's pulses from "
                f"its event_id; give every event its 'event_id' (as in the Kaggle files), or keep_all_pulses=True")

    def _scaled_features(self, batch: PulseBatch, kept: np.ndarray, kept_offsets: np.ndarray) -> list[np.ndarray]:
        """The model's feature columns of the kept pulses, in order: the paper's scaling, used by every Kaggle
        solution (time -> (t - 1e4) / 3e4, charge -> log10(q) / 3, auxiliary -> aux - 0.5), then the time within
        the event when `event_time_reference` is set."""
        time, charge, auxiliary = batch["time"][kept], batch["charge"][kept], batch["auxiliary"][kept]
        columns = [
            (time - self.time_offset) / self.time_scale,
            np.log10(charge) / self.charge_scale,
            auxiliary - self.auxiliary_offset,
        ]
        if self.event_time_reference is not None:
            event_of_kept = np.repeat(np.arange(len(kept_offsets) - 1), np.diff(kept_offsets))
            event_time = self.event_times(time, charge, auxiliary, event_of_kept, kept_offsets)
            columns.append((time - event_time[event_of_kept]) / self.event_time_scale)
        return columns

    def event_times(self, time: np.ndarray, charge: np.ndarray, auxiliary: np.ndarray, event_of_kept: np.ndarray,
                    kept_offsets: np.ndarray) -> np.ndarray:
        """(B,) float64 reference time of each event, from its selected pulses (`event_time_reference`).

        The charge-weighted mean runs over the primary (HLC) pulses, or over all pulses of an event without any:
        noise pulses (most of the auxiliary ones) spread over the whole 10 us readout window and would drag it."""
        if self.event_time_reference == "first_pulse":
            return time[kept_offsets[:-1]].astype(np.float64)  # the kept pulses stay in time order
        n_events = len(kept_offsets) - 1
        weight = charge.astype(np.float64)
        has_primary = np.bincount(event_of_kept[~auxiliary], minlength=n_events) > 0
        weight = np.where(has_primary[event_of_kept] & auxiliary, 0.0, weight)
        weighted = np.bincount(event_of_kept, weights=weight * time, minlength=n_events)
        return weighted / np.bincount(event_of_kept, weights=weight, minlength=n_events)

    def padded_length(self, kept_counts: np.ndarray, pad_to_multiple_of: int | None = None) -> int:
        length = int(kept_counts.max()) if len(kept_counts) else 1
        multiple = pad_to_multiple_of or self.pad_to_multiple_of or 1
        return -(-length // multiple) * multiple

    def encode(self, batch: PulseBatch, kept: np.ndarray, kept_offsets: np.ndarray,
               pad_to_multiple_of: int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """dom_ids, features and attention_mask (B, L, ...) of the kept pulses, and each kept pulse's slot
        `row * L + column` in the flattened padded batch (where the collators put their masks)."""
        kept_counts = np.diff(kept_offsets)
        n_events, length = len(kept_counts), self.padded_length(kept_counts, pad_to_multiple_of)
        slot = concatenated_ranges(np.arange(n_events) * length, kept_counts)

        dom_ids = np.full(n_events * length, self.pad_token_id, dtype=np.int64)
        dom_ids[slot] = batch["sensor_id"][kept]
        columns = self._scaled_features(batch, kept, kept_offsets)
        features = np.zeros((n_events * length, len(columns)), dtype=np.float32)
        for column, values in enumerate(columns):
            features[slot, column] = values
        attention_mask = np.zeros(n_events * length, dtype=np.int64)
        attention_mask[slot] = 1
        encoded = {
            "dom_ids": dom_ids.reshape(n_events, length),
            "features": features.reshape(n_events, length, len(columns)),  # (batch, seq_len, num_features)
            "attention_mask": attention_mask.reshape(n_events, length),
        }
        return encoded, slot

    # ---- user input --------------------------------------------------------------------------------------------

    def pulse_batch(self, events, extra_columns: Sequence[str] = ()) -> PulseBatch:
        """A list of events or a `PulseBatch` as a checked `PulseBatch`: every value as given checked (sensor ids
        against this extractor's `num_doms`) before the cast to the prepared dtypes (see `checked_pulse_batch`)."""
        return as_pulse_batch(events, extra_columns, num_doms=self.num_doms)

    def __call__(
        self,
        events,
        keep_all_pulses: bool = False,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Featurise and pad one event or a list of events for the model.

        Args:
            events: a list of events, or one event. An event is a mapping with `sensor_id`, `time` (ns), `charge`
                (p.e.) and `auxiliary` array-likes of its pulses, in the order of the Kaggle batch files, and its
                `event_id`. The event_id keys the deterministic down-sampling, so that an event gets the pulses
                `polarbert predict` gives it; it may be left out only for events of at most `max_pulses` pulses
                (or with `keep_all_pulses`): a longer event without one is an error. A `PulseBatch` (flat arrays
                with `pulse_offsets`) is accepted too. Every value is checked as given, before any cast: integer
                sensor ids in [0, num_doms), bool or 0/1 flags, finite times, positive finite charges, integer
                event ids; a ValueError names the column, the value, the event and the pulse.
            keep_all_pulses: no down-sampling (`polarbert evaluate --all-pulses`).
            pad_to_multiple_of: round the padded length up to a multiple of this (default: the extractor's).
            return_tensors: `"pt"` for torch tensors, `"np"` or None for numpy arrays.
        """
        if kwargs:
            raise TypeError(f"{type(self).__name__}.__call__ got unexpected arguments {sorted(kwargs)}")
        if isinstance(events, Mapping) and "pulse_offsets" not in events:
            events = [events]
        batch = self.pulse_batch(events)
        kept, kept_offsets = self.select_pulses(batch, keep_all_pulses=keep_all_pulses, deterministic=True)
        encoded, _ = self.encode(batch, kept, kept_offsets, pad_to_multiple_of)
        return BatchFeature(encoded, tensor_type=return_tensors)


__all__ = ["PolarBertFeatureExtractor"]
