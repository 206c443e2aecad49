"""Tests of modeling_polarbert.feature_extraction_polarbert: the one implementation of pulse selection, scaling and
padding, saved with every checkpoint, and a Hub user's path (events -> directions) without the package."""

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModel

import modeling_polarbert  # noqa: F401  (registers the Auto classes)
from modeling_polarbert import (
    PolarBertConfig,
    PolarBertDirectionCollator,
    PolarBertFeatureExtractor,
    PolarBertPretrainingCollator,
)
from modeling_polarbert.configuration_polarbert import SHARED_SETTINGS
from modeling_polarbert.feature_extraction_polarbert import (
    choose_smallest_keys,
    concatenated_ranges,
    uniform_draws,
)
from modeling_polarbert.kaggle_layout import DIRECTION_COLUMNS, PULSE_COLUMNS
from modeling_polarbert.numpy_directions import angles_to_unit_vector
from modeling_polarbert.prediction import predict_kaggle_dir
from modeling_polarbert.preparation import prepare_kaggle
from modeling_polarbert.training import run_finetuning

from kaggle_files import edge_case_events, random_batches, write_kaggle_dir  # tests/ is on sys.path

ROOT = Path(__file__).resolve().parent.parent


def tiny_extractor(**settings) -> PolarBertFeatureExtractor:
    return PolarBertFeatureExtractor(**{"max_pulses": 24, **settings})


def tiny_config(extractor: PolarBertFeatureExtractor | None = None) -> PolarBertConfig:
    """A tiny model config that records what the model reads of `extractor` (default `EXTRACTOR`)."""
    return PolarBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                           **(extractor or EXTRACTOR).model_settings())


EXTRACTOR = tiny_extractor()
CONFIG = tiny_config()
MODEL_KEYS = {"dom_ids", "features", "attention_mask"}


def random_events(rng: np.random.Generator, n_events: int, max_length: int = 120) -> list[dict]:
    """Events as a user would pass them: Kaggle dtypes (int64 times, float64 charges), some longer than
    max_pulses, some with few or no primary pulses."""
    events = []
    for i in range(n_events):
        n = int(rng.integers(1, max_length))
        aux_fraction = rng.choice([0.0, 0.3, 0.9, 1.0])
        events.append({
            "event_id": int(rng.integers(0, 2**40)),
            "sensor_id": rng.integers(0, 5160, n).astype(np.int16),
            "time": np.sort(rng.integers(5_000, 30_000, n)).astype(np.int64),
            "charge": rng.integers(1, 400, n) * 0.025,
            "auxiliary": rng.random(n) < aux_fraction,
        })
    return events


# ---------------------------------------------------------------------------------------------------------------
# One implementation: the extractor gives exactly what evaluation and prediction feed the model
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep_all_pulses", [False, True])
@pytest.mark.parametrize("pad_to_multiple_of", [None, 8])
@pytest.mark.parametrize("event_time_reference", [None, "first_pulse", "charge_weighted_mean"])
def test_extractor_equals_the_deterministic_direction_collator_on_random_events(keep_all_pulses, pad_to_multiple_of,
                                                                               event_time_reference):
    extractor = tiny_extractor(pad_to_multiple_of=pad_to_multiple_of, event_time_reference=event_time_reference)
    config = tiny_config(extractor)
    collator = PolarBertDirectionCollator(config, deterministic=True, keep_all_pulses=keep_all_pulses,
                                          feature_extractor=extractor)
    rng = np.random.default_rng(3)
    for _ in range(5):
        events = random_events(rng, 17)
        inputs = extractor(events, keep_all_pulses=keep_all_pulses, return_tensors="pt")
        batch = collator(events)
        assert set(inputs) == MODEL_KEYS == set(batch)
        assert inputs["features"].shape[-1] == config.num_pulse_features
        for key in MODEL_KEYS:
            assert inputs[key].dtype == batch[key].dtype and torch.equal(inputs[key], batch[key]), key
        lengths = [len(event["sensor_id"]) for event in events]
        expected = max(lengths) if keep_all_pulses else min(max(lengths), extractor.max_pulses)
        multiple = pad_to_multiple_of or 1
        assert inputs["dom_ids"].shape[1] == -(-expected // multiple) * multiple


def test_extractor_selects_primaries_first_scales_as_the_paper_and_pads():
    extractor = EXTRACTOR
    rng = np.random.default_rng(0)
    long_primary, mixed, short = random_events(rng, 3)
    long_primary.update(auxiliary=np.arange(100) % 5 == 0, sensor_id=np.arange(100), time=np.arange(100) * 10 + 5000,
                        charge=np.full(100, 0.5))  # 80 primaries > 24
    mixed.update(auxiliary=np.arange(40) % 2 == 0, sensor_id=np.arange(40), time=np.arange(40) * 10 + 5000,
                 charge=np.full(40, 2.0))  # 20 primaries < 24
    short.update(auxiliary=np.zeros(5, bool), sensor_id=np.arange(5), time=np.array([5000, 6000, 7000, 8000, 9000]),
                 charge=np.array([0.025, 0.5, 1.0, 10.0, 100.0]))
    inputs = extractor([long_primary, mixed, short], return_tensors="np")
    assert inputs["features"].dtype == np.float32 and inputs["dom_ids"].shape == (3, 24)
    kept_long = inputs["dom_ids"][0]
    assert not long_primary["auxiliary"][kept_long].any() and (np.diff(kept_long) > 0).all()  # primaries, in order
    kept_mixed = inputs["dom_ids"][1]
    assert set(np.flatnonzero(~mixed["auxiliary"])) <= set(kept_mixed) and (np.diff(kept_mixed) > 0).all()
    assert inputs["attention_mask"][2].tolist() == [1] * 5 + [0] * 19
    assert (inputs["dom_ids"][2, 5:] == CONFIG.pad_token_id).all() and (inputs["features"][2, 5:] == 0).all()
    expected = np.stack([(short["time"] - 1e4) / 3e4, np.log10(short["charge"]) / 3.0, short["auxiliary"] - 0.5], 1)
    np.testing.assert_allclose(inputs["features"][2, :5], expected, rtol=1e-6, atol=1e-7)


def test_an_event_gets_the_same_pulses_whatever_its_place_in_the_list():
    extractor = EXTRACTOR
    events = random_events(np.random.default_rng(1), 6, max_length=300)
    alone = [extractor([event])["dom_ids"][0] for event in events]
    together = extractor(events[::-1])["dom_ids"][::-1]
    for single, batched in zip(alone, together):
        assert np.array_equal(single, batched[: len(single)])
    # the draws follow the event_id: another id gives another subset of a long event
    event = max(events, key=lambda e: len(e["sensor_id"]))
    other = extractor([dict(event, event_id=event["event_id"] + 1)])["dom_ids"][0]
    assert not np.array_equal(other, extractor([event])["dom_ids"][0])


def test_a_long_event_without_event_id_is_refused_and_a_short_one_needs_none():
    extractor = EXTRACTOR
    short, long = sorted(random_events(np.random.default_rng(2), 20), key=lambda e: len(e["sensor_id"]))[::19]
    del short["event_id"], long["event_id"]
    assert extractor(short)["attention_mask"].sum() == len(short["sensor_id"])  # one event, not in a list
    with pytest.raises(ValueError, match=r"event 1 has \d+ pulses, more than max_pulses=24, and no non-negative "
                                         r"'event_id'"):
        extractor([short, long])
    assert extractor([short, long], keep_all_pulses=True)["attention_mask"][1].sum() == len(long["sensor_id"])


# Each bad value goes into pulse 1 of event 1 (event_id 8), after a good event 0 (event_id 7); the message must
# name the column, the value as given (before any cast), the event and the pulse. Every case is run on the
# extractor, on the collators and through the Hub's remote code (the extractor's file in a clean process).
GOOD_EVENT = {"event_id": 7, "sensor_id": [1, 2], "time": [5000, 5100], "charge": [1.0, 2.0],
              "auxiliary": [False, True]}
BAD_INPUTS = [
    ({"sensor_id": [3, 5160]}, r"event 1 \(event_id 8\): sensor_id 5160 of pulse 1 is outside \[0, 5160\)"),
    # int16 would wrap these onto real DOMs (65546 and 4294967306 onto DOM 10, 99999 onto -31073)
    ({"sensor_id": [3, 65546]}, r"event 1 \(event_id 8\): sensor_id 65546 of pulse 1 is outside \[0, 5160\)"),
    ({"sensor_id": [3, 4294967306]}, r"event 1 \(event_id 8\): sensor_id 4294967306 of pulse 1 is outside \[0, 5160\)"),
    ({"sensor_id": [3, 99999]}, r"event 1 \(event_id 8\): sensor_id 99999 of pulse 1 is outside \[0, 5160\)"),
    ({"sensor_id": [3, -1]}, r"event 1 \(event_id 8\): sensor_id -1 of pulse 1 is outside \[0, 5160\)"),
    # DOM ids are integers, as `polarbert prepare` requires of the batch files: a float is refused even when whole
    ({"sensor_id": [3, 12.5]}, r"event 1 \(event_id 8\): sensor_id 12.5 of pulse 1 is of dtype float64, but "
                               r"sensor_id must hold integers"),
    ({"sensor_id": [3.0, 12.0]}, r"event 1 \(event_id 8\): sensor_id 3.0 of pulse 0 is of dtype float64"),
    ({"auxiliary": [False, 2]}, r"event 1 \(event_id 8\): auxiliary 2 of pulse 1 is neither a bool nor 0 or 1"),
    ({"auxiliary": [0.0, 1.0]}, r"event 1 \(event_id 8\): auxiliary 0.0 of pulse 0 is of dtype float64, but "
                                r"auxiliary must hold bools or 0/1"),
    ({"time": [5000.0, float("nan")]}, r"event 1 \(event_id 8\): time nan of pulse 1 is not finite"),
    ({"time": [5000.0, float("inf")]}, r"event 1 \(event_id 8\): time inf of pulse 1 is not finite"),
    ({"charge": [1.0, 0.0]}, r"event 1 \(event_id 8\): charge 0.0 of pulse 1 is not a positive finite charge"),
    ({"charge": [1.0, -2.0]}, r"event 1 \(event_id 8\): charge -2.0 of pulse 1 is not a positive finite charge"),
    ({"charge": [1.0, 1e-50]}, r"event 1 \(event_id 8\): charge 1e-50 of pulse 1 is not a positive finite charge"),
    ({"event_id": 8.5}, r"event 1: event_id 8.5 is not an integer"),
    ({"auxiliary": [True]}, r"event 1 \(event_id 8\): 'auxiliary' holds 1 values but 'sensor_id' 2"),
    ({"charge": None}, r"event 1 \(event_id 8\) has no \['charge'\]"),
]


def bad_event(change: dict) -> dict:
    event = {**GOOD_EVENT, "event_id": 8, **change}
    return {name: value for name, value in event.items() if value is not None}


@pytest.mark.parametrize("change, message", BAD_INPUTS)
def test_bad_pulses_raise_an_error_naming_the_value_as_given_and_the_event(change, message):
    with pytest.raises(ValueError, match=message):
        EXTRACTOR([GOOD_EVENT, bad_event(change)])


@pytest.mark.parametrize("collator_class", [PolarBertPretrainingCollator, PolarBertDirectionCollator])
@pytest.mark.parametrize("change, message", BAD_INPUTS)
def test_the_collators_refuse_bad_pulses_as_the_extractor_does(collator_class, change, message):
    with pytest.raises(ValueError, match=message):
        collator_class(CONFIG)([GOOD_EVENT, bad_event(change)])


def test_values_of_other_numeric_dtypes_are_taken_as_the_numbers_they_are():
    extractor = EXTRACTOR
    as_usual = extractor([GOOD_EVENT], return_tensors="np")
    other_dtypes = {**GOOD_EVENT, "sensor_id": np.array([1, 2], np.uint64), "auxiliary": [0, 1],
                    "charge": np.array([1, 2], np.int8), "time": np.array([5000, 5100], np.uint32)}
    for key, value in extractor([other_dtypes], return_tensors="np").items():
        np.testing.assert_array_equal(value, as_usual[key], err_msg=key)
    # an integer time beyond int32 is not wrapped around: it is scaled as the float it equals
    late = extractor([{**GOOD_EVENT, "time": [5000, 2**31 + 5000]}], return_tensors="np")
    assert late["features"][0, 1, 0] == pytest.approx((2**31 + 5000 - 1e4) / 3e4)


def test_fractional_times_are_scaled_not_truncated():
    event = {"event_id": 1, "sensor_id": [1], "time": [10_000.75], "charge": [1.0], "auxiliary": [False]}
    features = EXTRACTOR(event)["features"]
    assert features[0, 0, 0] == pytest.approx(0.75 / 3e4, rel=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# Saving, loading, and refusing a mismatch with the model
# ---------------------------------------------------------------------------------------------------------------


def test_saved_extractor_carries_its_settings_what_the_model_reads_its_code_and_auto_map(tmp_path):
    extractor = tiny_extractor(event_time_reference="first_pulse")
    extractor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["auto_map"] == {"AutoFeatureExtractor": "feature_extraction_polarbert.PolarBertFeatureExtractor"}
    assert (saved["max_pulses"], saved["event_time_reference"], saved["num_pulse_features"]) == (24, "first_pulse", 4)
    assert {name: saved[name] for name in SHARED_SETTINGS} == extractor.model_settings()
    assert (tmp_path / "feature_extraction_polarbert.py").is_file()
    loaded = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert type(loaded) is PolarBertFeatureExtractor and loaded.to_dict() == extractor.to_dict()


def save_a_disagreeing_pair(folder: Path) -> None:
    """A model folder whose preprocessor_config.json writes charge and flag otherwise than config.json reads them."""
    modeling_polarbert.PolarBertForDirection(CONFIG).save_pretrained(folder)
    EXTRACTOR.save_pretrained(folder)
    saved = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").write_text(json.dumps({**saved, "charge_scale": 1.0, "auxiliary_offset": 0.0}))


MODEL_DOOR = (r"preprocessor_config.json and config.json disagree \(charge_scale: preprocessor_config.json 1.0, "
              r"config.json 3.0; auxiliary_offset: preprocessor_config.json 0.0, config.json 0.5\)")


def load_from_dict(folder: Path) -> PolarBertFeatureExtractor:
    """What AutoFeatureExtractor of transformers 5.25 does: from_dict alone, never seeing the folder."""
    return PolarBertFeatureExtractor.from_dict(json.loads((folder / "preprocessor_config.json").read_text()))


@pytest.mark.parametrize("load", [PolarBertFeatureExtractor.from_pretrained, AutoFeatureExtractor.from_pretrained,
                                  load_from_dict], ids=["PolarBertFeatureExtractor", "AutoFeatureExtractor", "from_dict"])
def test_the_extractor_loads_its_own_settings_on_every_path(tmp_path, load):
    """The extractor owns its settings: every loading path gives the extractor as saved; whether it suits a model
    is for the model's door to say."""
    extractor = tiny_extractor(max_pulses=50, event_time_reference="charge_weighted_mean", pad_to_multiple_of=8)
    extractor.save_pretrained(tmp_path)
    assert load(tmp_path).to_dict() == extractor.to_dict()


def test_a_model_config_records_what_the_model_reads_of_its_extractor():
    extractor = tiny_extractor(event_time_reference="charge_weighted_mean", charge_scale=2.0)
    config = tiny_config(extractor)
    assert (config.num_pulse_features, config.charge_scale, config.pad_token_id) == (4, 2.0, 5160)
    assert not hasattr(config, "max_pulses") and not hasattr(config, "event_time_reference")  # the extractor's
    rebuilt = PolarBertFeatureExtractor.for_model(config, max_pulses=24, event_time_reference="charge_weighted_mean")
    assert rebuilt.to_dict() == extractor.to_dict()
    with pytest.raises(ValueError, match="num_pulse_features: the model reads 4, the extractor writes 3"):
        PolarBertFeatureExtractor.for_model(config)
    with pytest.raises(ValueError, match=r"\['event_time_reference'\]: settings of the feature extractor"):
        PolarBertConfig(event_time_reference="first_pulse")


@pytest.mark.parametrize("load", [AutoModel.from_pretrained, modeling_polarbert.PolarBertForDirection.from_pretrained],
                         ids=["AutoModel", "PolarBertForDirection"])
def test_loading_the_model_refuses_a_folder_whose_extractor_disagrees(tmp_path, load):
    """The model's door, the one check: every path that loads a model from a folder (AutoFeatureExtractor of
    transformers 5.25 never sees the folder) refuses an extractor that writes what the model would misread, naming
    the settings; settings the extractor alone uses (max_pulses) are the extractor's to choose."""
    save_a_disagreeing_pair(tmp_path / "disagreeing")
    with pytest.raises(ValueError, match=MODEL_DOOR):
        load(tmp_path / "disagreeing")
    modeling_polarbert.PolarBertForDirection(CONFIG).save_pretrained(tmp_path / "agreeing")
    tiny_extractor(max_pulses=127).save_pretrained(tmp_path / "agreeing")
    assert load(tmp_path / "agreeing").config.num_pulse_features == 3
    assert load(tmp_path / "disagreeing", charge_scale=1.0, auxiliary_offset=0.0).config.charge_scale == 1.0  # asked


def test_the_shipped_file_imports_only_numpy_torch_and_transformers():
    source = (ROOT / "modeling_polarbert" / "feature_extraction_polarbert.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import would not travel to the Hub"
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "collections", "contextvars", "os", "numpy", "torch", "transformers"}, imported


def test_the_shipped_copies_of_the_column_names_equal_the_kaggle_layouts():
    # The shipped file cannot import kaggle_layout (it travels to the Hub alone), so it holds its own copy.
    from modeling_polarbert import feature_extraction_polarbert as shipped

    assert tuple(shipped.PULSE_COLUMNS) == tuple(PULSE_COLUMNS)
    assert tuple(shipped.LABEL_COLUMNS) == tuple(DIRECTION_COLUMNS)


# ---------------------------------------------------------------------------------------------------------------
# The random choice primitive
# ---------------------------------------------------------------------------------------------------------------


def test_concatenated_ranges():
    assert concatenated_ranges(np.array([5, 0, 9]), np.array([2, 0, 3])).tolist() == [5, 6, 9, 10, 11]
    assert concatenated_ranges(np.array([], dtype=int), np.array([], dtype=int)).tolist() == []


def reference_choice(keys, pool_event, n_choose):
    """Per event, the pool members with the n_choose smallest keys (a plain loop: the specification)."""
    chosen = []
    for event, k in enumerate(n_choose):
        members = np.flatnonzero(pool_event == event)
        chosen.extend(members[np.argsort(keys[members], kind="stable")[:k]])
    return np.sort(np.asarray(chosen, dtype=np.int64))


@pytest.mark.parametrize("keys_kind", ["uniform", "adversarial"])
def test_choose_smallest_keys_equals_a_full_sort_per_event(keys_kind):
    rng = np.random.default_rng(0)
    sizes = np.array([0, 1, 5, 130, 400, 3000, 127])
    n_choose = np.minimum(sizes, [0, 1, 2, 127, 127, 127, 127])
    pool_event = np.repeat(np.arange(len(sizes)), sizes)
    pool = np.flatnonzero(rng.random(sizes.sum() * 2) < 2)[: sizes.sum()]  # ascending flat indices
    batch = {"event_id": np.arange(len(sizes)) * 7, "pulse_offsets": np.concatenate([[0], np.cumsum(sizes)])}
    if keys_kind == "uniform":
        keys = uniform_draws(batch, pool, pool_event, 1, deterministic=True)
    else:  # all near 1, so no event has enough keys below its threshold: exercises the fall-back
        keys = np.linspace(0.99, 0.999, len(pool))[::-1].copy()
    chosen = choose_smallest_keys(keys, pool, pool_event, n_choose)
    np.testing.assert_array_equal(chosen, pool[reference_choice(keys, pool_event, n_choose)])


# ---------------------------------------------------------------------------------------------------------------
# From the Hub alone: a clean process that cannot import the package predicts what `polarbert predict` predicts
# ---------------------------------------------------------------------------------------------------------------

# Around the model card's own snippet (run as the card shows it, on the test's batch file): what it found, and a
# fresh geometry-less build through the remote code.
HUB_USER_BEFORE = 'import json, sys\nsys.modules["modeling_polarbert"] = None  # the package must not be importable\n'
HUB_USER_AFTER = textwrap.dedent(
    """
    assert type(extractor).__module__.startswith("transformers_modules"), type(extractor).__module__
    print(json.dumps({"event_id": [int(e["event_id"]) for e in events], "direction": direction.tolist(),
                      "azimuth": azimuth.tolist(), "zenith": zenith.tolist()}))
    # A fresh model with DOM positions but no geometry beside the remote code fails loudly, not with NaNs.
    try:
        PolarBertForDirection(model.config)  # the class the card's snippet took from the remote code
    except FileNotFoundError as error:
        print("refused:", error)
    """
)


def card_snippet(folder: Path, batch_file: Path) -> str:
    card = (folder / "README.md").read_text()
    code = card.split("```python\n", 1)[1].split("```", 1)[0]
    assert '"test/batch_661.parquet"' in code
    return code.replace('"test/batch_661.parquet"', repr(str(batch_file)))


def run_as_hub_user(script: str, tmp_path: Path) -> list[str]:
    """Run `script` in a clean offline process (the package blocked by HUB_USER_BEFORE); its stdout lines."""
    (tmp_path / "hub_user.py").write_text(script)
    result = subprocess.run(
        [sys.executable, str(tmp_path / "hub_user.py")], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules")),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()


def test_hub_user_without_the_package_gets_the_directions_of_polarbert_predict(tmp_path):
    train = write_kaggle_dir(tmp_path / "kaggle", random_batches(n_batches=1, events_per_batch=120, seed=4))
    prepare_kaggle(train, tmp_path / "prepared", progress=False)
    run_finetuning([str(ROOT / "configs/finetune_tiny.yaml"), "--train_dataset", str(tmp_path / "prepared"),
                    "--eval_dataset", str(tmp_path / "prepared"), "--max_eval_events", "20", "--max_steps", "2",
                    "--output_dir", str(tmp_path / "model"), "--save_strategy", "no", "--eval_strategy", "no",
                    "--config_overrides", "hidden_size=32,num_hidden_layers=1,num_attention_heads=2,"
                    "intermediate_size=64,max_pulses=24,use_dom_positions=true,"
                    "event_time_reference=charge_weighted_mean"])
    folder = tmp_path / "model"
    assert {"preprocessor_config.json", "feature_extraction_polarbert.py"} <= set(os.listdir(folder))

    events = edge_case_events(first_event_id=5001)  # a single pulse, all-auxiliary, 300 and 160 pulses, ...
    events = [events[4], events[0], events[5], *events[1:4], *events[6:]]  # the card's snippet takes the first 3
    assert events[0].n_pulses > 24 and events[2].n_pulses > 24  # down-sampled: the event_id draws must agree
    test_dir = write_kaggle_dir(tmp_path / "kaggle_test", {661: events}, split="test")
    predict_kaggle_dir(str(folder), str(test_dir), str(tmp_path / "submission.csv"), split="test", progress=False)
    submission = pd.read_csv(tmp_path / "submission.csv").set_index("event_id")

    script = HUB_USER_BEFORE + card_snippet(folder, test_dir / "test" / "batch_661.parquet") + HUB_USER_AFTER
    lines = run_as_hub_user(script, tmp_path)
    remote = json.loads(next(line for line in lines if line.startswith("{")))
    assert remote["event_id"] == [event.event_id for event in events[:3]]
    expected = submission.loc[remote["event_id"]]
    np.testing.assert_allclose(remote["azimuth"], expected["azimuth"], atol=1e-5)
    np.testing.assert_allclose(remote["zenith"], expected["zenith"], atol=1e-5)
    np.testing.assert_allclose(remote["direction"], angles_to_unit_vector(expected["azimuth"], expected["zenith"]),
                               atol=1e-5)
    refusal = next(line for line in lines if line.startswith("refused:"))
    assert "use_dom_positions=True needs the detector geometry" in refusal


def test_hub_user_without_the_package_gets_the_same_refusals(tmp_path):
    """Through the remote code (the files shipped beside the weights, in a clean process without the package): the
    model refuses a folder whose extractor disagrees, the extractor (which owns its settings) loads it, and refuses
    every bad input of BAD_INPUTS with the messages the package gives."""
    PolarBertForDirection = modeling_polarbert.PolarBertForDirection
    PolarBertForDirection(CONFIG).save_pretrained(tmp_path / "model")
    EXTRACTOR.save_pretrained(tmp_path / "model")
    save_a_disagreeing_pair(tmp_path / "disagreeing")
    cases = [[GOOD_EVENT, bad_event(change)] for change, _ in BAD_INPUTS]
    script = HUB_USER_BEFORE + textwrap.dedent(
        f"""
        from transformers import AutoFeatureExtractor, AutoModel

        def refusal(call):
            try:
                call()
            except ValueError as error:
                return str(error)
            return "accepted"

        extractor = AutoFeatureExtractor.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True)
        assert type(extractor).__module__.startswith("transformers_modules"), type(extractor).__module__
        print(json.dumps({{
            "disagreeing": refusal(lambda: AutoFeatureExtractor.from_pretrained(
                {str(tmp_path / "disagreeing")!r}, trust_remote_code=True)),
            "model_disagreeing": refusal(lambda: AutoModel.from_pretrained(
                {str(tmp_path / "disagreeing")!r}, trust_remote_code=True)),
            "inputs": [refusal(lambda: extractor(events)) for events in json.loads({json.dumps(cases)!r})],
        }}))
        """
    )
    refusals = json.loads(run_as_hub_user(script, tmp_path)[-1])
    assert refusals["disagreeing"] == "accepted"  # the extractor as saved: the model's door judges the pair
    assert re.search(MODEL_DOOR, refusals["model_disagreeing"]), refusals["model_disagreeing"]
    for (change, message), refused in zip(BAD_INPUTS, refusals["inputs"], strict=True):
        assert re.search(message, refused), (change, refused)


SEQUENCE_HUB_USER_AFTER = textwrap.dedent(
    """
    assert type(model).__name__ == "PolarBertForSequenceClassification", type(model)
    print(json.dumps({"event_id": [int(e["event_id"]) for e in events], "logits": logits.tolist()}))
    """
)


def test_hub_user_without_the_package_gets_the_energies_of_an_energy_model(simulated, tmp_path):
    from modeling_polarbert.loading import load_prepared_dataset
    from modeling_polarbert.prediction import load_sequence_model, predict_sequence_logits

    run_finetuning([str(ROOT / "configs/finetune_tiny.yaml"), "--train_dataset", str(simulated / "prepared"),
                    "--eval_dataset", str(simulated / "prepared"), "--max_eval_events", "20", "--max_steps", "2",
                    "--output_dir", str(tmp_path / "model"), "--save_strategy", "no", "--eval_strategy", "no",
                    "--task", "regression", "--label_columns", "log10:energy",
                    "--config_overrides", "hidden_size=32,num_hidden_layers=1,num_attention_heads=2,"
                    "intermediate_size=64,max_pulses=24,event_time_reference=charge_weighted_mean"])
    folder = tmp_path / "model"
    events = edge_case_events(first_event_id=7001)
    events = [events[4], events[0], events[5], *events[1:4], *events[6:]]  # two of the card's 3 are down-sampled
    test_dir = write_kaggle_dir(tmp_path / "kaggle_test", {661: events}, split="test")
    prepare_kaggle(test_dir, tmp_path / "prepared_test", split="test", progress=False)
    test_set = load_prepared_dataset(str(tmp_path / "prepared_test"))
    logits = predict_sequence_logits(load_sequence_model(str(folder), "cpu"), test_set, progress=False)
    expected = dict(zip(test_set["event_id"], logits[:, 0]))

    script = HUB_USER_BEFORE + card_snippet(folder, test_dir / "test" / "batch_661.parquet") + SEQUENCE_HUB_USER_AFTER
    remote = json.loads(next(line for line in run_as_hub_user(script, tmp_path) if line.startswith("{")))
    assert remote["event_id"] == [event.event_id for event in events[:3]]
    # log10(energy / GeV) in physical units: the target statistics travelled in config.json.
    np.testing.assert_allclose(np.asarray(remote["logits"])[:, 0], [expected[i] for i in remote["event_id"]],
                               atol=1e-5)
