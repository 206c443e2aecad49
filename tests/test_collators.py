"""Tests of modeling_polarbert.collators: down-sampling, masking, the batch contract and the Arrow fast path."""

import pickle

import datasets
import numpy as np
import pytest
import torch

from modeling_polarbert.collators import (
    PolarBertDirectionCollator,
    PolarBertPretrainingCollator,
    PolarBertSequenceClassificationCollator,
    rows_to_pulse_batch,
)
from modeling_polarbert.configuration_polarbert import PolarBertConfig
from modeling_polarbert.feature_extraction_polarbert import PolarBertFeatureExtractor
from modeling_polarbert.numpy_directions import angles_to_unit_vector
from modeling_polarbert.pulse_dataset import as_pulse_dataset


CONFIG = PolarBertConfig()
EXTRACTOR = PolarBertFeatureExtractor.for_model(CONFIG)  # the scaling the collators apply (the extractor owns it)
PRETRAINING_KEYS = {"dom_ids", "features", "attention_mask", "labels", "total_charge", "masked_positions"}
DIRECTION_KEYS = {"dom_ids", "features", "attention_mask", "labels"}


def make_row(event_id, n_primary, n_auxiliary, seed=0):
    """An event whose pulse k has the distinct time 5000 + 10 k, so a kept pulse can be traced back."""
    rng = np.random.default_rng(seed)
    n = n_primary + n_auxiliary
    auxiliary = np.zeros(n, bool)
    auxiliary[rng.permutation(n)[:n_auxiliary]] = True
    return {
        "event_id": event_id,
        "sensor_id": rng.integers(0, 5160, n).tolist(),
        "time": (5000 + 10 * np.arange(n)).tolist(),
        "charge": (rng.integers(1, 400, n) * 0.025).astype(np.float32).tolist(),
        "auxiliary": auxiliary.tolist(),
        "n_pulses": n,
        "azimuth": float(rng.uniform(0, 2 * np.pi)),
        "zenith": float(rng.uniform(0, np.pi)),
    }


def kept_pulse_indices(batch, i):
    """Indices (into the original event) of the pulses in row i of a collated batch, from their times."""
    real = batch["attention_mask"][i].bool()
    time = batch["features"][i, real, 0].double() * EXTRACTOR.time_scale + EXTRACTOR.time_offset
    return ((time.round() - 5000) / 10).long().numpy()


def unmasked_dom_ids(batch):
    """dom_ids with the masked positions' true ids put back."""
    labels = batch["labels"]
    return torch.where(labels != -100, labels, batch["dom_ids"])


ROWS = [
    make_row(1, 300, 60, seed=1),  # more than 127 primaries
    make_row(2, 80, 80, seed=2),  # long, but fewer primaries than 127
    make_row(3, 0, 5, seed=3),  # all auxiliary
    make_row(4, 1, 0, seed=4),  # a single pulse
    make_row(5, 30, 12, seed=5),
]


# ---------------------------------------------------------------------------------------------------------------
# The batch contract
# ---------------------------------------------------------------------------------------------------------------


def test_pretraining_batch_has_exactly_the_model_keys_and_dtypes():
    batch = PolarBertPretrainingCollator(CONFIG, seed=0)(ROWS)
    assert set(batch) == PRETRAINING_KEYS
    n, length = len(ROWS), 127
    assert batch["dom_ids"].dtype == torch.int64 and batch["dom_ids"].shape == (n, length)
    assert batch["features"].dtype == torch.float32 and batch["features"].shape == (n, length, 3)
    assert batch["attention_mask"].dtype == torch.int64 and batch["attention_mask"].shape == (n, length)
    assert batch["labels"].dtype == torch.int64 and batch["labels"].shape == (n, length)
    assert batch["total_charge"].dtype == torch.float32 and batch["total_charge"].shape == (n,)
    # The masked pulses as flat indices, so that the model needs no host sync to find them
    assert batch["masked_positions"].dtype == torch.int64
    assert torch.equal(batch["masked_positions"], torch.nonzero(batch["labels"].reshape(-1) != -100).flatten())


def test_direction_batch_has_unit_vector_labels_in_kaggle_convention():
    batch = PolarBertDirectionCollator(CONFIG, seed=0)(ROWS)
    assert set(batch) == DIRECTION_KEYS
    expected = angles_to_unit_vector([r["azimuth"] for r in ROWS], [r["zenith"] for r in ROWS])
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (len(ROWS), 3)
    np.testing.assert_allclose(batch["labels"].numpy(), expected, rtol=0, atol=1e-6)
    assert (batch["dom_ids"] != CONFIG.mask_token_id).all()  # nothing is masked for fine-tuning


def test_direction_batch_without_labels_leaves_them_out_for_prediction():
    rows = [{k: v for k, v in row.items() if k not in ("azimuth", "zenith")} for row in ROWS]
    assert set(PolarBertDirectionCollator(CONFIG)(rows)) == {"dom_ids", "features", "attention_mask"}


TASK_COLUMNS = {"energy": [10.0, 1e3, 1e5, 42.0, 3.5], "vertex_z": [-10.0, 0.0, 5.5, 300.0, -400.0],
                "kind": ["numu", "nue", "nutau", "nue", "numu"], "is_track": [True, False, False, True, False]}
TASK_ROWS = [{**row, **{name: values[i] for name, values in TASK_COLUMNS.items()}} for i, row in enumerate(ROWS)]


def task_config(problem_type, label_columns, **fields):
    return PolarBertConfig(problem_type=problem_type, label_columns=label_columns, **fields)


def test_sequence_batch_has_regression_targets_in_physical_units():
    config = task_config("regression", ["log10:energy", "vertex_z"], id2label={0: "log10:energy", 1: "vertex_z"},
                         label2id={"log10:energy": 0, "vertex_z": 1})
    batch = PolarBertSequenceClassificationCollator(config, seed=0)(TASK_ROWS)
    assert set(batch) == DIRECTION_KEYS
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (len(ROWS), 2)
    np.testing.assert_allclose(batch["labels"][:, 0].numpy(), np.log10(TASK_COLUMNS["energy"]), rtol=1e-6)
    np.testing.assert_allclose(batch["labels"][:, 1].numpy(), TASK_COLUMNS["vertex_z"])
    # The pulses are those the direction collator selects: only the labels differ.
    direction = PolarBertDirectionCollator(config, seed=0)(TASK_ROWS)
    for key in ("dom_ids", "features", "attention_mask"):
        assert torch.equal(batch[key], direction[key]), key


def test_sequence_batch_has_class_indices_or_multi_label_targets():
    single = task_config("single_label_classification", ["kind"], id2label={0: "nue", 1: "numu", 2: "nutau"},
                         label2id={"nue": 0, "numu": 1, "nutau": 2})
    labels = PolarBertSequenceClassificationCollator(single)(TASK_ROWS)["labels"]
    assert labels.dtype == torch.int64 and labels.tolist() == [1, 0, 2, 0, 1]
    multi = task_config("multi_label_classification", ["is_track"], id2label={0: "is_track"}, label2id={"is_track": 0})
    labels = PolarBertSequenceClassificationCollator(multi)(TASK_ROWS)["labels"]
    assert labels.dtype == torch.float32 and labels[:, 0].tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]
    # Without the label columns (a test split) the labels are left out, for prediction.
    assert set(PolarBertSequenceClassificationCollator(single)(ROWS)) == {"dom_ids", "features", "attention_mask"}
    with pytest.raises(ValueError, match="no label_columns/problem_type"):
        PolarBertSequenceClassificationCollator(CONFIG)


@pytest.mark.parametrize("view", ["saved", "shuffled", "selected"])
def test_fast_path_gathers_extra_label_columns_like_the_row_path(saved_dataset, view):
    rng = np.random.default_rng(5)
    n = len(saved_dataset)
    dataset = (saved_dataset.add_column("energy", (10 ** rng.uniform(2, 6, n)).tolist())
               .add_column("kind", rng.choice(["nue", "numu", "nutau"], n).tolist())
               .add_column("is_track", (rng.random(n) < 0.3).tolist()))
    dataset = {"saved": dataset, "shuffled": dataset.shuffle(seed=2), "selected": dataset.select(range(150, 5, -3))}[view]
    fast = as_pulse_dataset(dataset, extra_columns=["energy", "kind", "is_track", "azimuth"])
    indices = rng.choice(len(dataset), size=29, replace=False).tolist()
    batch = fast.gather(indices)
    rows = [dataset[i] for i in indices]
    assert batch["kind"].tolist() == [row["kind"] for row in rows]
    assert batch["is_track"].dtype == bool and batch["is_track"].tolist() == [row["is_track"] for row in rows]
    np.testing.assert_array_equal(batch["energy"], [row["energy"] for row in rows])
    config = task_config("single_label_classification", ["kind"], id2label={0: "nue", 1: "numu", 2: "nutau"},
                         label2id={"nue": 0, "numu": 1, "nutau": 2})
    collator = PolarBertSequenceClassificationCollator(config, seed=3)
    assert_batches_equal(collator(batch), collator(rows))
    copy = pickle.loads(pickle.dumps(fast))  # DataLoader workers keep the extra columns
    assert copy.gather(indices)["kind"].tolist() == batch["kind"].tolist()
    assert fast[indices[0]]["kind"] == rows[0]["kind"]
    with pytest.raises(ValueError, match="no column 'enrgy'"):
        as_pulse_dataset(dataset, extra_columns=["enrgy"])


def test_fast_path_over_a_dataset_not_written_by_prepare_checks_the_values_as_stored():
    # int64 DOM ids, as `datasets` infers them: gathering them into int16 would have made 65546 DOM 10.
    dataset = datasets.Dataset.from_dict({
        "event_id": [7, 8], "sensor_id": [[1, 2], [3, 65546]], "time": [[5000, 5100], [5000, 5100]],
        "charge": [[1.0, 2.0], [1.0, 2.0]], "auxiliary": [[False, True], [False, True]],
    })
    fast = as_pulse_dataset(dataset)
    assert fast.gather([1])["sensor_id"].tolist() == [3, 65546]
    with pytest.raises(ValueError, match=r"event 1 \(event_id 8\): sensor_id 65546 of pulse 1 is outside \[0, 5160\)"):
        PolarBertDirectionCollator(CONFIG)(fast.gather([0, 1]))
    assert PolarBertDirectionCollator(CONFIG)(fast.gather([0]))["dom_ids"].tolist() == [[1, 2]]


def test_short_events_keep_every_pulse_in_order_with_scaled_features_and_padding():
    rows = [ROWS[4], ROWS[3], ROWS[2]]  # 42, 1 and 5 pulses
    batch = PolarBertPretrainingCollator(CONFIG, seed=0)(rows)
    assert batch["dom_ids"].shape[1] == 42  # the longest event, no CLS token added
    for i, row in enumerate(rows):
        n = row["n_pulses"]
        assert batch["attention_mask"][i].tolist() == [1] * n + [0] * (42 - n)
        assert unmasked_dom_ids(batch)[i, :n].tolist() == row["sensor_id"]
        assert (batch["dom_ids"][i, n:] == CONFIG.pad_token_id).all()
        assert (batch["features"][i, n:] == 0).all() and (batch["labels"][i, n:] == -100).all()
        expected = np.stack([
            (np.asarray(row["time"]) - EXTRACTOR.time_offset) / EXTRACTOR.time_scale,
            np.log10(np.asarray(row["charge"], dtype=np.float32)) / EXTRACTOR.charge_scale,
            np.asarray(row["auxiliary"]) - EXTRACTOR.auxiliary_offset,
        ], axis=-1)
        np.testing.assert_allclose(batch["features"][i, :n].numpy(), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("multiple, expected", [(8, 48), (None, 42), (1, 42)])
def test_padding_rounds_up_to_the_requested_multiple(multiple, expected):
    rows = [ROWS[4], ROWS[3]]
    assert PolarBertDirectionCollator(CONFIG, pad_to_multiple_of=multiple)(rows)["dom_ids"].shape[1] == expected
    extractor = PolarBertFeatureExtractor(pad_to_multiple_of=16)  # the extractor's own multiple
    assert PolarBertDirectionCollator(CONFIG, feature_extractor=extractor)(rows)["dom_ids"].shape[1] == 48


# ---------------------------------------------------------------------------------------------------------------
# Down-sampling and masking rules
# ---------------------------------------------------------------------------------------------------------------


def test_downsampling_keeps_a_random_subset_of_primaries_when_there_are_too_many():
    row = ROWS[0]
    batch = PolarBertDirectionCollator(CONFIG, seed=1)([row])
    kept = kept_pulse_indices(batch, 0)
    assert len(kept) == 127 and len(set(kept)) == 127
    assert not np.asarray(row["auxiliary"])[kept].any()  # only primaries
    assert (np.diff(kept) > 0).all()  # original (time) order restored
    assert batch["dom_ids"][0].tolist() == np.asarray(row["sensor_id"])[kept].tolist()
    other = kept_pulse_indices(PolarBertDirectionCollator(CONFIG, seed=2)([row]), 0)
    assert set(kept) != set(other)  # a random subset, not the first 127


def test_downsampling_keeps_all_primaries_then_fills_with_random_auxiliary_pulses():
    row = ROWS[1]
    auxiliary = np.asarray(row["auxiliary"])
    draws = []
    for seed in (1, 2):
        kept = kept_pulse_indices(PolarBertDirectionCollator(CONFIG, seed=seed)([row]), 0)
        assert len(kept) == 127 and (np.diff(kept) > 0).all()
        assert set(np.flatnonzero(~auxiliary)) <= set(kept)  # every one of the 80 primaries
        assert auxiliary[kept].sum() == 47
        draws.append(set(kept))
    assert draws[0] != draws[1]


def test_keep_all_pulses_disables_downsampling():
    batch = PolarBertDirectionCollator(CONFIG, keep_all_pulses=True)(ROWS)
    assert batch["dom_ids"].shape[1] == 360
    assert batch["attention_mask"].sum(1).tolist() == [r["n_pulses"] for r in ROWS]
    assert kept_pulse_indices(batch, 0).tolist() == list(range(360))


def test_max_pulses_argument_overrides_the_config():
    batch = PolarBertDirectionCollator(CONFIG, max_pulses=10, seed=0)(ROWS)
    assert batch["attention_mask"].sum(1).tolist() == [10, 10, 5, 1, 10]


def test_only_a_quarter_of_selected_primary_pulses_are_masked():
    collator = PolarBertPretrainingCollator(CONFIG, seed=0)
    batch = collator(ROWS)
    masked = batch["labels"] != -100
    is_auxiliary = batch["features"][..., 2] > 0
    for i in range(len(ROWS)):
        n_primary = int(((~is_auxiliary[i]) & batch["attention_mask"][i].bool()).sum())
        expected = 0 if n_primary == 0 else max(1, int(np.floor(0.25 * n_primary + 0.5)))
        assert int(masked[i].sum()) == expected, i
    assert masked.sum(1).tolist() == [32, 20, 0, 1, 8]  # 127, 80, 0, 1 and 30 primaries
    assert not (masked & is_auxiliary).any()  # auxiliary pulses are never masked
    assert not (masked & ~batch["attention_mask"].bool()).any()
    assert (batch["dom_ids"][masked] == CONFIG.mask_token_id).all()
    assert (batch["dom_ids"][~masked] != CONFIG.mask_token_id).all()
    # labels hold the true DOM id of the masked pulse
    for i, row in enumerate(ROWS):
        kept = kept_pulse_indices(batch, i)
        true_ids = torch.tensor(np.asarray(row["sensor_id"])[kept])
        n = len(kept)
        assert torch.equal(batch["labels"][i, :n][masked[i, :n]], true_ids[masked[i, :n]])


def test_mask_ratio_zero_masks_nothing_and_rounding_is_half_up():
    assert not (PolarBertPretrainingCollator(CONFIG, mask_ratio=0.0)(ROWS)["labels"] != -100).any()
    collator = PolarBertPretrainingCollator(CONFIG)
    assert collator.masked_counts(np.array([0, 1, 2, 3, 6, 10, 127])).tolist() == [0, 1, 1, 1, 2, 3, 32]


def test_total_charge_is_log10_of_all_charges_before_downsampling():
    batch = PolarBertPretrainingCollator(CONFIG, seed=0)(ROWS)
    expected = [np.log10(np.sum(np.asarray(r["charge"], dtype=np.float64))) for r in ROWS]
    np.testing.assert_allclose(batch["total_charge"].numpy(), expected, rtol=1e-6)
    kept_charge = 10 ** (batch["features"][0, :, 1].double() * EXTRACTOR.charge_scale)
    assert np.log10(kept_charge.sum().item()) < expected[0] - 0.05  # the first event was down-sampled


def test_an_event_without_pulses_is_an_error():
    empty = dict(ROWS[4], sensor_id=[], time=[], charge=[], auxiliary=[], event_id=77)
    with pytest.raises(ValueError, match="event_id 77 has no pulses"):
        PolarBertPretrainingCollator(CONFIG)([ROWS[4], empty])


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda row: row["sensor_id"].__setitem__(3, 5160),
         r"event 1 \(event_id 5\): sensor_id 5160 of pulse 3 is outside \[0, 5160\)"),
        (lambda row: row["sensor_id"].__setitem__(0, -1), r"event 1 \(event_id 5\): sensor_id -1 of pulse 0"),
        (lambda row: row["charge"].__setitem__(7, 0.0), r"event_id 5\): charge 0.0 of pulse 7 is not a positive"),
        (lambda row: row["charge"].__setitem__(7, float("nan")), r"event_id 5\): charge nan of pulse 7"),
        (lambda row: row.update(zenith=float("nan")), "event_id 5 has a non-finite azimuth or zenith"),
    ],
)
def test_bad_pulses_and_angles_are_caught_on_the_cpu_with_the_event_named(corrupt, message):
    row = {key: list(value) if isinstance(value, list) else value for key, value in ROWS[4].items()}
    corrupt(row)
    with pytest.raises(ValueError, match=message):
        PolarBertDirectionCollator(CONFIG)([ROWS[3], row])


def test_packed_batch_holds_every_event_once_with_its_own_cls_slot_and_no_padding_between():
    collator = PolarBertPretrainingCollator(CONFIG, seed=0)
    padded = collator(ROWS)
    packed = PolarBertPretrainingCollator(CONFIG, seed=0, pack_length=160)(ROWS)
    # Events of 127 + 1, 127 + 1, 5 + 1, 1 + 1 and 42 + 1 tokens fill rows of 160 in order (next fit).
    assert packed["dom_ids"].shape == (3, 160) and packed["features"].shape == (3, 160, 3)
    assert packed["cls_positions"].tolist() == [0, 160, 288, 294, 320]
    lengths = padded["attention_mask"].sum(dim=1)
    for event, cls in enumerate(packed["cls_positions"].tolist()):
        row, column = divmod(cls, 160)
        n = int(lengths[event])
        pulses = slice(column + 1, column + 1 + n)
        for key in ("dom_ids", "features", "labels"):  # the same draws as the padded batch, laid out packed
            assert torch.equal(packed[key][row, pulses], padded[key][event, :n]), key
        assert packed["dom_ids"][row, column] == CONFIG.pad_token_id and packed["labels"][row, column] == -100
    assert packed["attention_mask"].sum() == lengths.sum() + len(ROWS)  # pulses + a CLS slot each
    assert packed["attention_mask"][1].tolist() == [1] * 128 + [1] * 6 + [1] * 2 + [0] * 24  # padding at row ends only
    assert torch.equal(packed["total_charge"], padded["total_charge"])
    assert torch.equal(packed["masked_positions"], torch.nonzero(packed["labels"].reshape(-1) != -100).flatten())
    direction = PolarBertDirectionCollator(CONFIG, pack_length=160)(ROWS)
    assert torch.equal(direction["cls_positions"], packed["cls_positions"]) and direction["labels"].shape == (5, 3)


def test_pack_length_must_hold_the_longest_event():
    with pytest.raises(ValueError, match="pack_length=100 cannot hold an event of max_pulses=127"):
        PolarBertDirectionCollator(CONFIG, pack_length=100)
    with pytest.raises(ValueError, match="event_id 1: its 360 pulses and its CLS slot do not fit in pack_length=200"):
        PolarBertDirectionCollator(CONFIG, pack_length=200, keep_all_pulses=True)(ROWS)


# ---------------------------------------------------------------------------------------------------------------
# Seeds and the deterministic evaluation mode
# ---------------------------------------------------------------------------------------------------------------


def assert_batches_equal(a, b):
    assert set(a) == set(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_seed_pins_the_draws_and_a_new_batch_draws_afresh():
    collator = PolarBertPretrainingCollator(CONFIG, seed=11)
    reference = collator(ROWS)
    # No state: the same batch draws the same, from any collator instance and on any call (exact resume).
    assert_batches_equal(collator(ROWS), reference)
    assert_batches_equal(PolarBertPretrainingCollator(CONFIG, seed=11)(ROWS), reference)
    assert not torch.equal(PolarBertPretrainingCollator(CONFIG, seed=12)(ROWS)["labels"], reference["labels"])
    # The next epoch's shuffle puts the event in another batch: new masks for it.
    reshuffled = collator([ROWS[2], *ROWS[:2], *ROWS[3:]])
    assert not torch.equal(reshuffled["labels"][1, :127], reference["labels"][0, :127])
    # An event given twice in a batch draws twice.
    twice = collator([ROWS[0], ROWS[0]])
    assert not torch.equal(twice["labels"][0], twice["labels"][1])


def test_deterministic_mode_gives_an_event_the_same_pulses_whatever_its_batch():
    for collator_class in (PolarBertPretrainingCollator, PolarBertDirectionCollator):
        collator = collator_class(CONFIG, deterministic=True)
        alone = collator([ROWS[0]])
        with_others = collator([ROWS[3], ROWS[1], ROWS[0]])
        later = collator_class(CONFIG, deterministic=True)([ROWS[2], ROWS[0]])
        for batch, i in ((with_others, 2), (later, 1)):
            for key in ("dom_ids", "features", "attention_mask") + (("labels",) if batch["labels"].ndim == 2 else ()):
                assert torch.equal(batch[key][i, :127], alone[key][0]), (collator_class.__name__, key)
    # the event's draws are random-looking, not the first 127 pulses
    kept = kept_pulse_indices(PolarBertDirectionCollator(CONFIG, deterministic=True)([ROWS[0]]), 0)
    assert kept.tolist() != np.flatnonzero(~np.asarray(ROWS[0]["auxiliary"]))[:127].tolist()
    other_salt = kept_pulse_indices(PolarBertDirectionCollator(CONFIG, deterministic=True, seed=5)([ROWS[0]]), 0)
    assert set(kept) != set(other_salt)


# ---------------------------------------------------------------------------------------------------------------
# The Arrow fast path
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("collator_class", [PolarBertPretrainingCollator, PolarBertDirectionCollator])
@pytest.mark.parametrize("view", ["saved", "shuffled", "selected", "contiguous", "in memory"])
def test_fast_path_batches_equal_row_by_row_batches(saved_dataset, collator_class, view):
    dataset = {"saved": saved_dataset, "shuffled": saved_dataset.shuffle(seed=3),
               "selected": saved_dataset.select(range(150, 5, -3)),
               "contiguous": saved_dataset.select(range(17, 163)),  # a slice: list arrays with an offset
               "in memory": datasets.Dataset(saved_dataset.data.table.slice(5, 150).combine_chunks())}[view]
    fast = as_pulse_dataset(dataset)
    rng = np.random.default_rng(0)
    for _ in range(3):
        indices = rng.choice(len(dataset), size=37, replace=False).tolist()
        from_arrow = collator_class(CONFIG, seed=4)(fast.gather(indices))
        from_rows = collator_class(CONFIG, seed=4)([dataset[i] for i in indices])
        assert_batches_equal(from_arrow, from_rows)
    assert fast.lengths.tolist() == dataset["n_pulses"]
    assert len(fast) == len(dataset)


def test_dataloader_over_the_fast_path_yields_the_row_path_batches(saved_dataset):
    loader = torch.utils.data.DataLoader(as_pulse_dataset(saved_dataset), batch_size=16,
                                         collate_fn=PolarBertPretrainingCollator(CONFIG, seed=9))
    reference = PolarBertPretrainingCollator(CONFIG, seed=9)
    for number, batch in enumerate(loader):
        rows = [saved_dataset[i] for i in range(16 * number, min(16 * (number + 1), len(saved_dataset)))]
        assert_batches_equal(batch, reference(rows))


def test_fast_path_works_on_an_in_memory_dataset_without_n_pulses():
    rows = [dict(r) for r in ROWS]
    for row in rows:
        del row["n_pulses"]
    dataset = datasets.Dataset.from_list(rows)
    fast = as_pulse_dataset(dataset)
    assert fast.lengths.tolist() == [r["n_pulses"] for r in ROWS]
    assert_batches_equal(PolarBertPretrainingCollator(CONFIG, seed=1)(fast.gather([4, 0, 2])),
                         PolarBertPretrainingCollator(CONFIG, seed=1)([ROWS[4], ROWS[0], ROWS[2]]))


def test_iterated_batch_dict_gives_a_clear_error():
    batch_dict_keys = list(rows_to_pulse_batch(ROWS))  # what Trainer's RemoveColumnsCollator would pass on
    with pytest.raises(TypeError, match="remove_unused_columns"):
        PolarBertPretrainingCollator(CONFIG)(batch_dict_keys)


def test_downsampling_draws_every_primary_equally_often():
    row = ROWS[0]  # 300 primaries: each should be kept with probability 127 / 300
    collator = PolarBertDirectionCollator(CONFIG, seed=0)
    kept = np.zeros(360)
    for draw in range(300):  # 300 different batches (draws are a function of the batch)
        kept[kept_pulse_indices(collator([dict(row, event_id=draw)]), 0)] += 1
    primary = ~np.asarray(row["auxiliary"])
    assert (kept[~primary] == 0).all()
    frequency = kept[primary] / 300
    assert abs(frequency.mean() - 127 / 300) < 1e-9
    assert frequency.min() > 0.30 and frequency.max() < 0.55  # binomial sd is about 0.029


def test_dataloader_workers_draw_what_one_process_draws():
    rows = [dict(ROWS[0], event_id=1000 + i) for i in range(8)]  # one long event under 8 ids
    dataset = as_pulse_dataset(datasets.Dataset.from_list(rows))
    batches = {}
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=workers,
                                             collate_fn=PolarBertPretrainingCollator(CONFIG, seed=0))
        batches[workers] = list(loader)
    for single, parallel in zip(batches[0], batches[2]):
        assert_batches_equal(single, parallel)
    first, second = batches[2]  # one batch from each worker: different draws
    assert not torch.equal(first["labels"][0], second["labels"][0])
    assert not torch.equal(first["dom_ids"][0], second["dom_ids"][0])


@pytest.mark.parametrize("reference", ["first_pulse", "charge_weighted_mean"])
def test_event_time_is_measured_from_the_events_reference_time(reference):
    extractor = PolarBertFeatureExtractor(event_time_reference=reference, event_time_scale=500.0)
    config = PolarBertConfig(**extractor.model_settings())
    rows = [ROWS[4], ROWS[2], ROWS[1]]  # short with primaries, all auxiliary, long (down-sampled)
    batch = PolarBertDirectionCollator(config, deterministic=True, feature_extractor=extractor)(rows)
    assert batch["features"].shape[-1] == 4
    for i, row in enumerate(rows):
        kept = kept_pulse_indices(batch, i)
        time = np.asarray(row["time"], dtype=np.float64)[kept]
        charge = np.asarray(row["charge"], dtype=np.float32).astype(np.float64)[kept]
        primary = ~np.asarray(row["auxiliary"])[kept]
        if reference == "first_pulse":
            event_time = time[0]
        else:  # over the primary pulses; all pulses of an event that has none
            weight = charge * primary if primary.any() else charge
            event_time = (weight * time).sum() / weight.sum()
        real = batch["attention_mask"][i].bool()
        np.testing.assert_allclose(batch["features"][i, real, 3].numpy(), (time - event_time) / 500.0, atol=1e-5)
        assert (batch["features"][i, ~real] == 0).all()
