"""Tests of the model file, in the pattern of transformers' tests/models/bert/test_modeling_bert.py: a small tester
builds a tiny config and random inputs in the batch contract, then one test per property."""

import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification

from modeling_polarbert import (
    PolarBertConfig,
    PolarBertFeatureExtractor,
    PolarBertForDirection,
    PolarBertForMaskedDOM,
    PolarBertForSequenceClassification,
    PolarBertModel,
    angles_to_unit_vector,
    opening_angle,
    unit_vector_to_angles,
)
from modeling_polarbert.collators import PolarBertDirectionCollator, PolarBertPretrainingCollator
from modeling_polarbert.diagnostics import count_host_syncs
from modeling_polarbert.configuration_polarbert import LEGACY_PREPROCESSING_SETTINGS
from modeling_polarbert.modeling_polarbert import von_mises_fisher_nll

PAPER_PARAMETERS = 8_000_000


class PolarBertModelTester:
    def __init__(self, batch_size=4, seq_length=12, **config_overrides):
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.config_kwargs = dict(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, **config_overrides
        )

    def get_config(self, **overrides) -> PolarBertConfig:
        return PolarBertConfig(**{**self.config_kwargs, **overrides})

    def prepare_inputs(self, config: PolarBertConfig, seed: int = 0) -> dict:
        """Random events in the batch contract; row 0 is padded after 5 pulses, 25 % of pulses masked."""
        generator = torch.Generator().manual_seed(seed)
        shape = (self.batch_size, self.seq_length)
        dom_ids = torch.randint(0, config.num_doms, shape, generator=generator)
        features = torch.randn(*shape, config.num_pulse_features, generator=generator)
        attention_mask = torch.ones(shape, dtype=torch.long)
        attention_mask[0, 5:] = 0
        dom_ids[0, 5:] = config.pad_token_id
        features[0, 5:] = 0.0
        masked = (torch.rand(shape, generator=generator) < 0.25) & attention_mask.bool()
        masked[:, 1] = True  # at least one masked pulse per event
        labels = torch.where(masked, dom_ids, torch.full_like(dom_ids, -100))
        dom_ids = torch.where(masked, torch.full_like(dom_ids, config.mask_token_id), dom_ids)
        return {
            "dom_ids": dom_ids,
            "features": features,
            "attention_mask": attention_mask,
            "labels": labels,
            "total_charge": torch.randn(self.batch_size, generator=generator),
            "direction_labels": torch.nn.functional.normalize(torch.randn(self.batch_size, 3, generator=generator), dim=-1),
        }


def backbone_inputs(inputs: dict) -> dict:
    return {key: inputs[key] for key in ("dom_ids", "features", "attention_mask")}


def pretraining_inputs(inputs: dict) -> dict:
    return {**backbone_inputs(inputs), "labels": inputs["labels"], "total_charge": inputs["total_charge"]}


def direction_inputs(inputs: dict) -> dict:
    return {**backbone_inputs(inputs), "labels": inputs["direction_labels"]}


# The three problem types of PolarBertForSequenceClassification: config fields and labels for a batch of 4.
SEQUENCE_TASKS = {
    "regression": (
        dict(problem_type="regression", id2label={0: "log10:energy", 1: "vertex_z"}, label2id={"log10:energy": 0, "vertex_z": 1},
             label_columns=["log10:energy", "vertex_z"], target_mean=[3.0, -100.0], target_std=[0.8, 300.0]),
        lambda generator: torch.stack([3.0 + 0.8 * torch.randn(4, generator=generator),
                                       -100.0 + 300.0 * torch.randn(4, generator=generator)], dim=-1),
    ),
    "single_label_classification": (
        dict(problem_type="single_label_classification", id2label={0: "a", 1: "b", 2: "c"},
             label2id={"a": 0, "b": 1, "c": 2}, label_columns=["kind"]),
        lambda generator: torch.tensor([0, 2, 1, 2]),
    ),
    "multi_label_classification": (
        dict(problem_type="multi_label_classification", id2label={0: "is_track", 1: "is_contained"},
             label2id={"is_track": 0, "is_contained": 1}, label_columns=["is_track", "is_contained"]),
        lambda generator: torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 1.0]]),
    ),
}


def sequence_config_and_labels(tester, problem_type, **overrides):
    fields, make_labels = SEQUENCE_TASKS[problem_type]
    return tester.get_config(**{**fields, **overrides}), make_labels(torch.Generator().manual_seed(1))


@pytest.fixture
def tester():
    return PolarBertModelTester()


def test_default_config_has_the_papers_8m_parameters():
    model = PolarBertForMaskedDOM(PolarBertConfig())
    count = sum(parameter.numel() for parameter in model.parameters())
    print(f"PolarBertForMaskedDOM, default config: {count:,} parameters")
    assert abs(count - PAPER_PARAMETERS) / PAPER_PARAMETERS < 0.10
    # Exact count from the architecture: embeddings, 8 pre-LN blocks, final norm, CLS, DOM head and charge head.
    config = model.config
    h, i, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    embeddings = config.vocab_size * h // 2 + (3 * h // 2 + h // 2)
    block = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * 2 * h
    heads = (h * config.num_doms + config.num_doms) + (h + 1)
    assert count == embeddings + n * block + 2 * h + h + heads


def test_backbone_output_shapes_and_cls_vector(tester):
    config = tester.get_config()
    inputs = tester.prepare_inputs(config)
    outputs = PolarBertModel(config)(**backbone_inputs(inputs), output_hidden_states=True)
    assert outputs.last_hidden_state.shape == (tester.batch_size, tester.seq_length + 1, config.hidden_size)
    assert torch.equal(outputs.pooler_output, outputs.last_hidden_state[:, 0])
    assert len(outputs.hidden_states) == config.num_hidden_layers + 1


def extractor_for(config: PolarBertConfig) -> PolarBertFeatureExtractor:
    """The feature extractor of these tests' models: the fourth column, when a model reads one, is the time within
    the event from its charge-weighted mean time (the extractor owns that choice; the config knows the count)."""
    reference = "charge_weighted_mean" if config.num_pulse_features == 4 else None
    return PolarBertFeatureExtractor.for_model(config, event_time_reference=reference)


INPUT_OPTIONS = {
    "paper": {},
    "event time, positions": dict(num_pulse_features=4, use_dom_positions=True),
    "first-pulse time": dict(num_pulse_features=4),
    "centred positions": dict(num_pulse_features=4, use_dom_positions=True,
                              event_position_reference="charge_weighted_mean"),
    "centred, no DOM-id table": dict(num_pulse_features=4, use_dom_positions=True,
                                     event_position_reference="charge_weighted_mean", use_dom_embeddings=False),
}
CENTRED = INPUT_OPTIONS["centred positions"]


@pytest.mark.parametrize("options", INPUT_OPTIONS.values(), ids=INPUT_OPTIONS.keys())
@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_padding_never_changes_real_tokens(tester, attn_implementation, options):
    config = tester.get_config(**options)
    model = PolarBertModel(config).eval()
    model.set_attn_implementation(attn_implementation)
    inputs = backbone_inputs(tester.prepare_inputs(config))
    extra = 7
    padded = {
        "dom_ids": torch.nn.functional.pad(inputs["dom_ids"], (0, extra), value=config.pad_token_id),
        # Garbage in the padded features must not matter either.
        "features": torch.cat(
            [inputs["features"], torch.randn(tester.batch_size, extra, config.num_pulse_features)], dim=1
        ),
        "attention_mask": torch.nn.functional.pad(inputs["attention_mask"], (0, extra), value=0),
    }
    with torch.no_grad():
        reference = model(**inputs).last_hidden_state
        with_padding = model(**padded).last_hidden_state
        # Row 0 alone, with no padding at all.
        alone = model(**{key: value[:1, :5] for key, value in inputs.items()}).last_hidden_state
    real = inputs["attention_mask"].bool()
    assert torch.allclose(reference[:, 1:][real], with_padding[:, 1 : tester.seq_length + 1][real], atol=1e-5)
    assert torch.allclose(reference[:, 0], with_padding[:, 0], atol=1e-5)
    assert torch.allclose(reference[0, :6], alone[0], atol=1e-5)


def test_attention_implementations_agree(tester):
    config = tester.get_config()
    model = PolarBertForMaskedDOM(config).eval()
    inputs = pretraining_inputs(tester.prepare_inputs(config))
    results = {}
    for implementation in ["eager", "sdpa", "flex_attention"]:
        try:
            model.set_attn_implementation(implementation)
        except (ImportError, ValueError) as error:  # flex attention needs a recent torch
            print(f"{implementation} unavailable: {error}")
            continue
        with torch.no_grad():
            results[implementation] = model(**inputs)
    assert {"eager", "sdpa"} <= results.keys()
    real = inputs["attention_mask"].bool()
    for implementation, outputs in results.items():
        assert torch.allclose(outputs.logits[real], results["eager"].logits[real], atol=1e-4), implementation
        assert torch.allclose(outputs.loss, results["eager"].loss, atol=1e-5), implementation


def test_attention_implementation_is_chosen_at_load_time(tester, tmp_path):
    config = tester.get_config()
    PolarBertModel(config).save_pretrained(tmp_path)
    assert PolarBertModel.from_pretrained(tmp_path).config._attn_implementation == "sdpa"
    assert PolarBertModel.from_pretrained(tmp_path, attn_implementation="eager").config._attn_implementation == "eager"


def test_only_masked_pulses_enter_the_dom_loss(tester):
    config = tester.get_config(charge_loss_weight=0.0)
    model = PolarBertForMaskedDOM(config).eval()
    inputs = pretraining_inputs(tester.prepare_inputs(config))
    with torch.no_grad():
        outputs = model(**inputs)
    labels = inputs["labels"]
    masked = labels != -100
    expected = torch.nn.functional.cross_entropy(outputs.logits[masked], labels[masked])
    assert torch.allclose(outputs.masked_dom_loss, expected, atol=1e-6)
    assert torch.allclose(outputs.loss, expected, atol=1e-6)
    assert outputs.logits.shape == (tester.batch_size, tester.seq_length, config.num_doms)

    # Changing the target at an unmasked position (it is -100 there) changes nothing; at a masked one it does.
    other = dict(inputs, labels=labels.clone())
    other["labels"][masked] = (labels[masked] + 1) % config.num_doms
    with torch.no_grad():
        assert not torch.allclose(model(**other).loss, outputs.loss)


def test_sparse_prediction_gives_the_dense_loss(tester):
    config = tester.get_config()
    inputs = pretraining_inputs(tester.prepare_inputs(config))
    dense_model = PolarBertForMaskedDOM(config).eval()
    sparse_model = PolarBertForMaskedDOM(tester.get_config(sparse_prediction=True)).eval()
    sparse_model.load_state_dict(dense_model.state_dict())
    with torch.no_grad():
        dense, sparse = dense_model(**inputs), sparse_model(**inputs)
    masked = inputs["labels"] != -100
    assert sparse.logits.shape == (int(masked.sum()), config.num_doms)
    assert torch.allclose(sparse.logits, dense.logits[masked], atol=1e-6)
    assert torch.allclose(sparse.loss, dense.loss, atol=1e-6)


def test_pretraining_loss_adds_weighted_charge_mse(tester):
    config = tester.get_config(charge_loss_weight=2.5)
    model = PolarBertForMaskedDOM(config).eval()
    inputs = pretraining_inputs(tester.prepare_inputs(config))
    with torch.no_grad():
        outputs = model(**inputs)
    expected_charge = torch.mean((outputs.charge_prediction - inputs["total_charge"]) ** 2)
    assert torch.allclose(outputs.charge_loss, expected_charge, atol=1e-6)
    assert torch.allclose(outputs.loss, outputs.masked_dom_loss + 2.5 * expected_charge, atol=1e-5)


def test_batch_with_nothing_masked_has_zero_dom_loss(tester):
    config = tester.get_config()
    inputs = pretraining_inputs(tester.prepare_inputs(config))
    inputs["labels"] = torch.full_like(inputs["labels"], -100)
    outputs = PolarBertForMaskedDOM(config)(**inputs)
    assert torch.isfinite(outputs.loss) and outputs.masked_dom_loss.item() == 0.0
    outputs.loss.backward()


def _train_steps(model, inputs, steps=60, lr=3e-3):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = model(**inputs).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_tiny_masked_dom_model_overfits_one_batch(tester):
    torch.manual_seed(0)
    config = tester.get_config(num_doms=64)
    inputs = pretraining_inputs(PolarBertModelTester(batch_size=4, seq_length=12).prepare_inputs(config))
    losses = _train_steps(PolarBertForMaskedDOM(config), inputs, steps=80)
    assert losses[-1] < 0.1 * losses[0], losses[::10]


def test_tiny_direction_model_overfits_one_batch(tester):
    torch.manual_seed(0)
    config = tester.get_config(num_doms=64)
    inputs = direction_inputs(tester.prepare_inputs(config))
    losses = _train_steps(PolarBertForDirection(config), inputs, steps=80)
    assert losses[-1] < 0.1 * losses[0], losses[::10]


@pytest.mark.parametrize("problem_type", SEQUENCE_TASKS)
def test_tiny_sequence_model_overfits_one_batch_for_each_problem_type(tester, problem_type):
    torch.manual_seed(0)
    config, labels = sequence_config_and_labels(tester, problem_type, num_doms=64)
    inputs = {**backbone_inputs(tester.prepare_inputs(config)), "labels": labels}
    losses = _train_steps(PolarBertForSequenceClassification(config), inputs, steps=60)
    assert losses[-1] < 0.1 * losses[0], losses[::10]


def test_regression_standardises_its_targets_and_returns_physical_units(tester):
    config, labels = sequence_config_and_labels(tester, "regression")
    model = PolarBertForSequenceClassification(config).eval()
    inputs = backbone_inputs(tester.prepare_inputs(config))
    with torch.no_grad():
        outputs = model(**inputs, labels=labels)
        raw = model.classifier(model.polarbert(**inputs).pooler_output)
    mean, std = torch.tensor(config.target_mean), torch.tensor(config.target_std)
    assert outputs.logits.shape == (tester.batch_size, 2)
    assert torch.allclose(outputs.logits, mean + std * raw, atol=1e-4)
    # The loss weighs both targets in standard units, whatever their physical scales (0.8 and 300).
    expected = torch.mean(((labels - mean) / std - raw) ** 2)
    assert torch.allclose(outputs.loss, expected, atol=1e-5)
    # One target: labels (batch,) and (batch, 1) are the same.
    single, _ = sequence_config_and_labels(tester, "regression", id2label={0: "log10:energy"},
                                           label2id={"log10:energy": 0}, target_mean=[3.0], target_std=[0.8])
    model = PolarBertForSequenceClassification(single).eval()
    with torch.no_grad():
        assert torch.equal(model(**inputs, labels=labels[:, 0]).loss, model(**inputs, labels=labels[:, :1]).loss)


def test_unset_problem_type_is_inferred_from_the_labels_as_bert_does(tester):
    inputs = backbone_inputs(tester.prepare_inputs(tester.get_config()))
    for num_labels, labels, expected in [
        (1, torch.randn(4), "regression"),
        (3, torch.tensor([0, 2, 1, 1]), "single_label_classification"),
        (3, torch.tensor([[1.0, 0.0, 1.0]] * 4), "multi_label_classification"),
    ]:
        config = tester.get_config(num_labels=num_labels)
        assert config.problem_type is None
        model = PolarBertForSequenceClassification(config)
        outputs = model(**inputs, labels=labels)
        assert config.problem_type == expected and torch.isfinite(outputs.loss)
        if expected == "single_label_classification":
            assert torch.allclose(outputs.loss, torch.nn.functional.cross_entropy(outputs.logits, labels))
        if expected == "multi_label_classification":
            assert torch.allclose(outputs.loss, torch.nn.functional.binary_cross_entropy_with_logits(outputs.logits, labels))


@pytest.mark.parametrize(
    "problem_type, labels, message",
    [
        ("regression", torch.zeros(4, 3), r"\(batch, num_labels\) = \(4, 2\)"),
        ("regression", torch.tensor([[0.0, 1.0], [float("nan"), 0.0], [0.0, 0.0], [0.0, 0.0]]), r"NaN or inf in batch rows \[1\]"),
        ("single_label_classification", torch.tensor([0, 1, 3, 0]), r"class indices must lie in \[0, num_labels=3\)"),
        ("single_label_classification", torch.zeros(4), "integer class indices"),
        ("multi_label_classification", torch.full((4, 2), 2.0), r"must lie in \[0, 1\]"),
    ],
)
def test_bad_sequence_labels_raise_a_clear_error(tester, problem_type, labels, message):
    config, _ = sequence_config_and_labels(tester, problem_type)
    inputs = backbone_inputs(tester.prepare_inputs(config))
    with pytest.raises(ValueError, match=message):
        PolarBertForSequenceClassification(config)(**inputs, labels=labels)


def test_target_statistics_must_match_num_labels(tester):
    config, _ = sequence_config_and_labels(tester, "regression", target_mean=[1.0])
    with pytest.raises(ValueError, match="need num_labels=2 values"):
        PolarBertForSequenceClassification(config)
    with pytest.raises(ValueError, match="target_std must be positive"):
        tester.get_config(target_std=[0.0])


@pytest.mark.parametrize("model_class", [PolarBertModel, PolarBertForMaskedDOM, PolarBertForDirection,
                                         PolarBertForSequenceClassification])
def test_save_and_load_give_bit_identical_outputs(tester, tmp_path, model_class):
    config = tester.get_config(use_dom_positions=True, direction_loss="vmf", **SEQUENCE_TASKS["regression"][0])
    model = model_class(config).eval()
    inputs = backbone_inputs(tester.prepare_inputs(config))
    model.save_pretrained(tmp_path)
    assert "model.safetensors" in os.listdir(tmp_path)
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in os.listdir(tmp_path))
    loaded = model_class.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        before, after = model(**inputs), loaded(**inputs)
    for key in before.keys():
        if isinstance(before[key], torch.Tensor):
            assert torch.equal(before[key], after[key]), key


def test_dom_position_buffer_holds_the_geometry_and_hides_masked_doms(tester):
    from modeling_polarbert.geometry import load_sensor_geometry

    model = PolarBertModel(tester.get_config(use_dom_positions=True))
    positions = model.embeddings.dom_positions
    geometry = torch.tensor(load_sensor_geometry(), dtype=torch.float32)
    assert torch.equal(positions[: model.config.num_doms], geometry)
    assert torch.count_nonzero(positions[model.config.pad_token_id]) == 0
    assert torch.count_nonzero(positions[model.config.mask_token_id]) == 0
    assert "embeddings.dom_positions" in model.state_dict()


def relative_positions_of(model, batch) -> torch.Tensor:
    dom_ids = batch["dom_ids"]
    event_index = torch.arange(len(dom_ids)).unsqueeze(1).expand_as(dom_ids)
    positions = model.embeddings.dom_positions[dom_ids]
    return model.embeddings.event_relative_positions(dom_ids, batch["features"], positions, event_index, len(dom_ids))


def test_event_relative_positions_are_centred_on_the_charge_weighted_primary_pulses(tester):
    config = tester.get_config(**CENTRED)
    model = PolarBertModel(config)
    rows = collator_rows(n_events=5, lengths=[3, 30, 1, 12, 60])
    rows[2]["auxiliary"] = [True]  # an event without primary pulses is centred on all of them
    batch = PolarBertDirectionCollator(config, feature_extractor=extractor_for(config), seed=0)(rows)
    relative = relative_positions_of(model, batch)
    geometry = model.embeddings.dom_positions[: config.num_doms].double().numpy()
    for row, event in enumerate(rows):
        n = len(event["sensor_id"])
        doms, charge = np.asarray(event["sensor_id"]), np.asarray(event["charge"])
        weight = np.where(np.asarray(event["auxiliary"]), 0.0, charge) if not all(event["auxiliary"]) else charge
        centre = (weight[:, None] * geometry[doms]).sum(0) / weight.sum()
        expected = (geometry[doms] - centre) / config.event_position_scale
        assert np.allclose(relative[row, :n].numpy(), expected, atol=1e-4), row
        assert torch.count_nonzero(relative[row, n:]) == 0  # padding


def test_a_masked_pulse_reveals_its_dom_through_no_input(tester):
    """The leak test: the pretraining batches of two events that differ only in a masked pulse's DOM are identical
    in everything the model reads (its DOM id is the mask id, its features carry no position), so the model's
    every output is identical too, relative positions included; only the labels differ. The masked pulse gets no
    relative position and does not count in the event's reference point."""
    config = tester.get_config(**CENTRED)
    collator = PolarBertPretrainingCollator(config, feature_extractor=extractor_for(config), seed=0)
    rows = collator_rows(n_events=4, lengths=[20, 35, 8, 50])
    batch = collator(rows)
    row, column = [int(i) for i in torch.nonzero(batch["labels"] != -100)[0]]
    moved = [dict(event) for event in rows]
    sensors = list(moved[row]["sensor_id"])
    true_dom = sensors[column]
    sensors[column] = (true_dom + 2580) % config.num_doms  # a DOM on the far side of the detector
    moved[row]["sensor_id"] = sensors
    moved_batch = collator(moved)
    assert not torch.equal(batch["labels"], moved_batch["labels"])
    for key in ("dom_ids", "features", "attention_mask", "total_charge"):
        assert torch.equal(batch[key], moved_batch[key]), key
    model = PolarBertForMaskedDOM(config).eval()
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    with torch.no_grad():
        assert torch.equal(model(**inputs).last_hidden_state,
                           model(**{**inputs, "features": moved_batch["features"]}).last_hidden_state)
    relative = relative_positions_of(model.polarbert, batch)
    assert torch.count_nonzero(relative[row, column]) == 0
    # Unmasked, the same pulse has a position and moves the reference point of every pulse of its event.
    unmasked = dict(batch, dom_ids=batch["dom_ids"].clone())
    unmasked["dom_ids"][row, column] = true_dom
    shown = relative_positions_of(model.polarbert, unmasked)
    assert torch.count_nonzero(shown[row, column]) == 3
    visible = batch["dom_ids"][row] < config.num_doms
    assert not torch.allclose(shown[row][visible], relative[row][visible])


def test_auto_classes_resolve(tester, tmp_path):
    config = tester.get_config()
    PolarBertForDirection(config).save_pretrained(tmp_path / "direction")
    PolarBertForMaskedDOM(config).save_pretrained(tmp_path / "masked")
    PolarBertForSequenceClassification(tester.get_config(**SEQUENCE_TASKS["single_label_classification"][0])
                                       ).save_pretrained(tmp_path / "classifier")
    assert isinstance(AutoConfig.from_pretrained(tmp_path / "masked"), PolarBertConfig)
    assert type(AutoModel.from_pretrained(tmp_path / "masked")) is PolarBertModel
    assert type(AutoModel.from_pretrained(tmp_path / "direction")) is PolarBertModel
    assert type(AutoModelForMaskedLM.from_pretrained(tmp_path / "masked")) is PolarBertForMaskedDOM
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path / "classifier")
    assert type(classifier) is PolarBertForSequenceClassification and classifier.config.id2label[2] == "c"
    for folder in ("direction", "masked", "classifier"):
        saved = json.loads((tmp_path / folder / "config.json").read_text())
        assert saved["model_type"] == "polarbert"
        # Every folder names the same classes, whichever was saved: direction has no Auto class of its own.
        assert saved["auto_map"]["AutoModelForSequenceClassification"] == \
            "modeling_polarbert.PolarBertForSequenceClassification", folder
        assert "PolarBertForDirection" not in json.dumps(saved["auto_map"])
        assert {"modeling_polarbert.py", "configuration_polarbert.py"} <= set(os.listdir(tmp_path / folder)), folder


REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    sys.modules["modeling_polarbert"] = None  # the installed package must not be importable here
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification
    from transformers.dynamic_module_utils import get_class_from_dynamic_module
    direction_folder, regression_folder = sys.argv[1], sys.argv[2]
    backbone = AutoModel.from_pretrained(direction_folder, trust_remote_code=True)
    assert type(backbone).__module__.startswith("transformers_modules"), type(backbone).__module__
    # Direction has no Auto class: the class named in the folder's code, as the README says.
    direction_class = get_class_from_dynamic_module("modeling_polarbert.PolarBertForDirection", direction_folder)
    direction = direction_class.from_pretrained(direction_folder).eval()
    regression = AutoModelForSequenceClassification.from_pretrained(regression_folder, trust_remote_code=True).eval()
    assert type(backbone).__name__ == "PolarBertModel" and type(direction).__name__ == "PolarBertForDirection"
    assert type(regression).__name__ == "PolarBertForSequenceClassification", type(regression)
    # A remote-code model saved again is a complete folder too (the class has no Auto class registration here).
    direction.save_pretrained(os.path.join(direction_folder, "again"))
    inputs = torch.load(sys.argv[3])
    with torch.no_grad():
        print(json.dumps([direction(**inputs).direction.tolist(), regression(**inputs).logits.tolist()]))
    """
)


def test_remote_code_round_trip_without_the_package(tester, tmp_path):
    config = tester.get_config(use_dom_positions=True)
    model = PolarBertForDirection(config).eval()
    model.save_pretrained(tmp_path / "model")
    regression = PolarBertForSequenceClassification(tester.get_config(**SEQUENCE_TASKS["regression"][0])).eval()
    regression.save_pretrained(tmp_path / "regression")
    inputs = backbone_inputs(tester.prepare_inputs(config))
    torch.save(inputs, tmp_path / "inputs.pt")
    (tmp_path / "check.py").write_text(REMOTE_CODE_SCRIPT)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run(
        [sys.executable, str(tmp_path / "check.py"), str(tmp_path / "model"), str(tmp_path / "regression"),
         str(tmp_path / "inputs.pt")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote_direction, remote_logits = json.loads(result.stdout.strip().splitlines()[-1])
    with torch.no_grad():
        assert torch.allclose(torch.tensor(remote_direction), model(**inputs).direction, atol=1e-6)
        # Regression logits in physical units: the target statistics came through the config.
        assert torch.allclose(torch.tensor(remote_logits), regression(**inputs).logits, atol=1e-4)
    assert {"modeling_polarbert.py", "configuration_polarbert.py", "config.json"} <= set(
        os.listdir(tmp_path / "model" / "again"))


def test_direction_model_takes_the_pretrained_backbone(tester, tmp_path):
    config = tester.get_config()
    pretrained = PolarBertForMaskedDOM(config)
    pretrained.save_pretrained(tmp_path)
    direction = PolarBertForDirection.from_pretrained(tmp_path)
    for name, tensor in pretrained.polarbert.state_dict().items():
        assert torch.equal(direction.polarbert.state_dict()[name], tensor), name
    # The head is freshly initialised (normal with initializer_range), not left at zeros or garbage.
    head_weight = direction.direction_head[0].weight
    assert 0.5 * config.initializer_range < head_weight.std() < 2 * config.initializer_range


def test_direction_output_is_unit_vectors_with_kappa_for_vmf(tester):
    config = tester.get_config(direction_loss="angle+vmf")
    inputs = direction_inputs(tester.prepare_inputs(config))
    outputs = PolarBertForDirection(config)(**inputs)
    assert outputs.direction.shape == (tester.batch_size, 3)
    assert torch.allclose(outputs.direction.norm(dim=-1), torch.ones(tester.batch_size), atol=1e-5)
    assert outputs.kappa.shape == (tester.batch_size,) and (outputs.kappa > 0).all()
    angle_only = PolarBertForDirection(tester.get_config())(**inputs)
    assert angle_only.kappa is None


def test_angle_helpers_follow_the_kaggle_convention():
    azimuth = torch.tensor([0.0, math.pi / 2, 1.0, 5.5])
    zenith = torch.tensor([0.0, math.pi / 2, 2.0, math.pi])
    vectors = angles_to_unit_vector(azimuth, zenith)
    assert torch.allclose(vectors[0], torch.tensor([0.0, 0.0, 1.0]))  # zenith 0: came from straight above
    assert torch.allclose(vectors[1], torch.tensor([0.0, 1.0, 0.0]), atol=1e-7)
    round_azimuth, round_zenith = unit_vector_to_angles(vectors)
    assert torch.allclose(round_zenith, zenith, atol=1e-5)
    assert torch.allclose(round_azimuth[1:3], azimuth[1:3], atol=1e-5)


def test_opening_angle_has_finite_gradients_at_zero_and_pi():
    target = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    predicted = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]], requires_grad=True)
    angles = opening_angle(predicted, target)
    assert torch.allclose(angles, torch.tensor([0.0, math.pi]), atol=2e-3)
    angles.sum().backward()
    assert torch.isfinite(predicted.grad).all()


def test_vmf_nll_is_a_normalised_density():
    # Integrate exp(-nll) over the sphere numerically: it must be 1 for small, moderate and large kappa.
    cos_theta = torch.linspace(-1, 1, 200_001, dtype=torch.float64)
    for kappa in [0.01, 3.0, 200.0]:
        targets = torch.stack([torch.zeros_like(cos_theta), (1 - cos_theta**2).clamp_min(0).sqrt(), cos_theta], dim=-1)
        mean = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand_as(targets)
        density = torch.exp(-von_mises_fisher_nll(mean, torch.full_like(cos_theta, kappa), targets).double())
        integral = 2 * math.pi * torch.trapezoid(density, cos_theta)
        assert abs(integral.item() - 1.0) < 1e-3, (kappa, integral.item())


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda x, c: x.update(dom_ids=x["dom_ids"][0]), "dom_ids must be"),
        (lambda x, c: x.update(features=x["features"][..., :2]), "features must be"),
        (lambda x, c: x.update(attention_mask=x["attention_mask"][:, :3]), "attention_mask must"),
        (lambda x, c: x["dom_ids"].__setitem__((1, 2), c.vocab_size), "dom_ids must lie"),
        (lambda x, c: x["dom_ids"].__setitem__((1, 2), -1), "dom_ids must lie"),
        (lambda x, c: x["features"].__setitem__((2, 1, 0), float("nan")), r"NaN or inf in batch rows \[2\]"),
        (lambda x, c: x["features"].__setitem__((3, 1, 2), float("inf")), r"NaN or inf in batch rows \[3\]"),
    ],
)
def test_bad_backbone_input_raises_a_clear_error(tester, corrupt, message):
    config = tester.get_config()
    inputs = backbone_inputs(tester.prepare_inputs(config))
    corrupt(inputs, config)
    with pytest.raises(ValueError, match=message):
        PolarBertModel(config)(**inputs)


def test_bad_labels_raise_a_clear_error(tester):
    config = tester.get_config()
    inputs = tester.prepare_inputs(config)
    with pytest.raises(ValueError, match="unit vectors"):
        PolarBertForDirection(config)(**backbone_inputs(inputs), labels=2 * inputs["direction_labels"])
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        PolarBertForDirection(config)(**backbone_inputs(inputs), labels=inputs["direction_labels"][:, :2])
    bad_dom_labels = inputs["labels"].clone()
    bad_dom_labels[0, 1] = config.num_doms  # the pad id is not a DOM
    with pytest.raises(ValueError, match="labels must be -100 or a DOM id"):
        PolarBertForMaskedDOM(config)(**backbone_inputs(inputs), labels=bad_dom_labels)


def test_config_rejects_inconsistent_values():
    with pytest.raises(ValueError, match="divisible"):
        PolarBertConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="direction_loss"):
        PolarBertConfig(direction_loss="cosine")
    with pytest.raises(ValueError, match="event_position_reference needs use_dom_positions"):
        PolarBertConfig(event_position_reference="charge_weighted_mean")
    with pytest.raises(ValueError, match="event_position_reference must be one of"):
        PolarBertConfig(use_dom_positions=True, event_position_reference="first_pulse")
    config = PolarBertConfig()
    assert (config.pad_token_id, config.mask_token_id, config.vocab_size) == (5160, 5161, 5162)
    assert config.direction_head_hidden_size == 4 * config.hidden_size


def test_without_the_dom_id_table_a_pulse_is_known_by_its_dom_position_alone(tester):
    config = tester.get_config(**CENTRED, use_dom_embeddings=False)
    model = PolarBertModel(config).eval()
    table = PolarBertModel(tester.get_config(**CENTRED)).eval()
    assert model.get_input_embeddings() is None and not any("dom_embeddings" in name for name in model.state_dict())
    assert model.embeddings.feature_embeddings.out_features == config.hidden_size
    half, count = config.hidden_size // 2, lambda m: sum(parameter.numel() for parameter in m.parameters())
    assert count(table) - count(model) == config.vocab_size * half - (config.num_pulse_features + 1) * half
    # Give DOM 1 the position of DOM 0: without the table, renaming DOM 0 to 1 changes nothing; with it, it does.
    inputs = backbone_inputs(tester.prepare_inputs(config))
    inputs["dom_ids"][0, 0] = 0
    renamed = {**inputs, "dom_ids": inputs["dom_ids"].clone()}
    renamed["dom_ids"][0, 0] = 1
    with torch.no_grad():
        for each in (model, table):
            each.embeddings.dom_positions[1] = each.embeddings.dom_positions[0]
        assert torch.equal(model(**inputs).last_hidden_state, model(**renamed).last_hidden_state)
        assert not torch.allclose(table(**inputs).last_hidden_state, table(**renamed).last_hidden_state)
    with pytest.raises(ValueError, match="use_dom_embeddings=False needs use_dom_positions"):
        PolarBertConfig(use_dom_embeddings=False)


def test_a_fourth_feature_column_widens_the_feature_embedding(tester):
    config = tester.get_config(num_pulse_features=4)
    assert config.num_pulse_features == 4 and tester.get_config().num_pulse_features == 3
    model = PolarBertModel(config)
    assert model.embeddings.feature_embeddings.in_features == 4
    with pytest.raises(ValueError, match="num_pulse_features"):
        model(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 5, 3))


def test_zero_initialised_direction_head_starts_at_zero_and_still_learns(tester, tmp_path):
    config = tester.get_config(zero_init_direction_head=True)
    model = PolarBertForDirection(config)
    assert torch.count_nonzero(model.direction_head[-1].weight) == 0
    assert torch.count_nonzero(model.direction_head[0].weight) > 0  # only the output layer starts at zero
    # Also when a pretrained backbone gets a new head.
    PolarBertForMaskedDOM(config).save_pretrained(tmp_path)
    assert torch.count_nonzero(PolarBertForDirection.from_pretrained(tmp_path).direction_head[-1].weight) == 0
    inputs = direction_inputs(tester.prepare_inputs(config))
    model(**inputs).loss.backward()
    gradient = model.direction_head[-1].weight.grad
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0


def straight_track_events(n_events: int, seed: int, hits: int = 24) -> list[dict]:
    """Muon-like events a line fit solves exactly: the `hits` DOMs nearest a straight line through the detector,
    hit when the muon (moving along -direction at c) passes them plus the light's travel to the DOM."""
    from modeling_polarbert.geometry import load_sensor_geometry

    geometry, rng = load_sensor_geometry(), np.random.default_rng(seed)
    events = []
    for event_id in range(n_events):
        cos_zenith, azimuth = rng.uniform(-1, 1), rng.uniform(0, 2 * np.pi)
        came_from = np.array([math.sqrt(1 - cos_zenith**2) * math.cos(azimuth),
                              math.sqrt(1 - cos_zenith**2) * math.sin(azimuth), cos_zenith])
        offset = geometry - rng.normal(0, 200, 3)  # from a point near the centre, in m
        along = offset @ -came_from
        distance = np.linalg.norm(offset + np.outer(along, came_from), axis=1)
        doms = np.argsort(distance)[:hits]
        time = 10_000 + along[doms] / 0.3 + distance[doms] / 0.22  # ns: muon at 0.3 m/ns, light at 0.22 m/ns
        order = np.argsort(time)
        events.append({"event_id": event_id, "sensor_id": doms[order], "time": time[order].astype(np.int32),
                       "charge": np.ones(hits, np.float32), "auxiliary": np.zeros(hits, bool),
                       "azimuth": azimuth, "zenith": math.acos(cos_zenith)})
    return events


def _mean_training_loss_per_epoch(config: PolarBertConfig, events: list[dict], epochs: int) -> list[float]:
    from modeling_polarbert.collators import PolarBertDirectionCollator

    torch.manual_seed(0)
    model, collator = PolarBertForDirection(config), PolarBertDirectionCollator(config, feature_extractor=extractor_for(config), seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for epoch in range(epochs):
        order, total = np.random.default_rng(epoch).permutation(len(events)), 0.0
        for start in range(0, len(events), 64):
            batch = collator([events[i] for i in order[start : start + 64]])
            loss = model(**batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch["labels"])
        losses.append(total / len(events))
    return losses


def test_direction_learning_leaves_the_constant_guess_plateau():
    """2,048 fixed straight-track events, 4 epochs (too few to memorise them): with the DOM positions, the time within
    the event and a zero-initialised head the training loss falls far below the best constant guess (about pi/2 for
    isotropic directions); the paper's inputs with a random head stay near it (docs/results.md, the diagnosis)."""
    events = straight_track_events(2048, seed=0)
    tiny = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    learning = PolarBertConfig(**tiny, use_dom_positions=True, num_pulse_features=4,
                               zero_init_direction_head=True)
    losses = _mean_training_loss_per_epoch(learning, events, epochs=4)
    assert losses[-1] < 1.0, losses
    plateau = _mean_training_loss_per_epoch(PolarBertConfig(**tiny), events, epochs=4)
    assert plateau[-1] > 1.3, plateau


def test_event_centred_positions_learn_directions_the_absolute_ones_do_not_yet():
    """The same 2,048 straight tracks, 3 epochs, DOM positions and event time both ways: with each pulse's position
    relative to the event's charge-weighted centroid the loss falls far below that of absolute positions alone
    (docs/results.md, centred inputs: a direction is the correlation of r - r_event with t - t_event)."""
    events = straight_track_events(2048, seed=0)
    tiny = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                use_dom_positions=True, num_pulse_features=4, zero_init_direction_head=True)
    centred = _mean_training_loss_per_epoch(PolarBertConfig(**tiny, event_position_reference="charge_weighted_mean"),
                                            events, epochs=3)
    absolute = _mean_training_loss_per_epoch(PolarBertConfig(**tiny), events, epochs=3)
    assert centred[-1] < 0.2, centred
    assert absolute[-1] > 3 * centred[-1], (absolute, centred)


# ---------------------------------------------------------------------------------------------------------------
# The GPU-throughput paths: no host sync, packed batches, gradient checkpointing, torch.compile
# ---------------------------------------------------------------------------------------------------------------


def collator_rows(n_events=6, seed=0, lengths=None):
    """Dataset rows (as `dataset[i]` gives them) of random events, for the collators."""
    rng = np.random.default_rng(seed)
    lengths = lengths or [int(n) for n in rng.integers(1, 40, n_events)]
    return [{
        "event_id": 100 + i,
        "sensor_id": rng.integers(0, 5160, n).tolist(),
        "time": np.sort(rng.integers(6000, 15000, n)).tolist(),
        "charge": rng.uniform(0.2, 5.0, n).tolist(),
        "auxiliary": (rng.random(n) < 0.3).tolist(),
        "azimuth": float(rng.uniform(0, 2 * math.pi)),
        "zenith": float(rng.uniform(0, math.pi)),
    } for i, n in enumerate(lengths)]


def host_syncs_of_a_step(model, batch) -> list[str]:
    return count_host_syncs(lambda inputs: model(**inputs).loss.backward(), batch)


@pytest.mark.parametrize("pack_length", [None, 160])
def test_training_step_needs_no_host_sync_with_the_collators_batches(tester, pack_length):
    config = tester.get_config(sparse_prediction=True, check_inputs=False)
    rows = collator_rows()
    pretraining = PolarBertPretrainingCollator(config, feature_extractor=extractor_for(config), seed=0, pack_length=pack_length)(rows)
    direction = PolarBertDirectionCollator(config, feature_extractor=extractor_for(config), seed=0, pack_length=pack_length)(rows)
    masked_dom, direction_model = PolarBertForMaskedDOM(config).train(), PolarBertForDirection(config).train()
    assert host_syncs_of_a_step(masked_dom, pretraining) == []
    assert host_syncs_of_a_step(direction_model, direction) == []
    # The counter sees the syncs it is there to catch: the value checks, and finding the masked pulses.
    config.check_inputs = True
    assert "_local_scalar_dense" in host_syncs_of_a_step(masked_dom, pretraining)
    assert "_local_scalar_dense" in host_syncs_of_a_step(direction_model, direction)
    config.check_inputs = False
    without_positions = {key: value for key, value in pretraining.items() if key != "masked_positions"}
    assert host_syncs_of_a_step(masked_dom, without_positions) == ["nonzero"]


def test_value_checks_are_off_with_check_inputs_false_but_shapes_are_still_checked(tester):
    config = tester.get_config(check_inputs=False)
    inputs = backbone_inputs(tester.prepare_inputs(config))
    inputs["features"][1, 2, 0] = float("nan")
    assert torch.isnan(PolarBertModel(config)(**inputs).last_hidden_state[1]).any()  # unchecked: the caller's job
    with pytest.raises(ValueError, match="features must be"):
        PolarBertModel(config)(**dict(inputs, features=inputs["features"][..., :2]))


def test_masked_positions_give_the_sparse_loss_and_wrong_ones_are_refused(tester):
    config = tester.get_config(sparse_prediction=True)
    inputs = pretraining_inputs(tester.prepare_inputs(config))
    model = PolarBertForMaskedDOM(config).eval()
    positions = torch.nonzero(inputs["labels"].reshape(-1) != -100).flatten()
    with torch.no_grad():
        found, given = model(**inputs), model(**inputs, masked_positions=positions)
    assert torch.equal(found.logits, given.logits) and torch.equal(found.loss, given.loss)
    with pytest.raises(ValueError, match="masked_positions must be the flat indices"):
        model(**inputs, masked_positions=positions[1:])
    with pytest.raises(ValueError, match="masked_positions must be the flat indices"):
        model(**inputs, masked_positions=positions + 1)


def compare_packed_with_padded(config, attn_implementation, rows, pack_length):
    """Outputs of the padded and the packed batch of the same events (the same draws): (padded, packed, batches)."""
    padded = PolarBertPretrainingCollator(config, feature_extractor=extractor_for(config), seed=0)(rows)
    packed = PolarBertPretrainingCollator(config, feature_extractor=extractor_for(config), seed=0, pack_length=pack_length)(rows)
    assert len(packed["dom_ids"]) < len(padded["dom_ids"])  # several events share a row
    torch.manual_seed(0)
    model = PolarBertForMaskedDOM(config).eval()
    model.set_attn_implementation(attn_implementation)
    with torch.no_grad():
        return model(**padded), model(**packed), padded, packed


@pytest.mark.parametrize("options", [{}, CENTRED], ids=["paper", "centred positions"])
@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_packed_batch_gives_the_outputs_of_the_padded_batch(tester, attn_implementation, options):
    config = tester.get_config(sparse_prediction=True, **options)
    rows = collator_rows(n_events=7, lengths=[3, 30, 1, 12, 200, 9, 20])  # 200: down-sampled to 127
    padded_out, packed_out, padded, packed = compare_packed_with_padded(config, attn_implementation, rows, 160)
    for name in ("loss", "masked_dom_loss", "charge_loss", "charge_prediction", "logits"):
        assert torch.allclose(getattr(packed_out, name), getattr(padded_out, name), atol=1e-5), name
    # Every pulse's hidden state, and each event's CLS vector from its own slot.
    lengths = padded["attention_mask"].sum(dim=1)
    packed_states = packed_out.last_hidden_state.flatten(0, 1)
    for event, cls in enumerate(packed["cls_positions"].tolist()):
        n = int(lengths[event])
        assert torch.allclose(packed_states[cls : cls + n + 1], padded_out.last_hidden_state[event, : n + 1], atol=1e-5)

    direction_rows = PolarBertDirectionCollator(config, feature_extractor=extractor_for(config), pack_length=160)(rows)
    torch.manual_seed(0)
    direction = PolarBertForDirection(config).eval()
    direction.set_attn_implementation(attn_implementation)
    with torch.no_grad():
        packed_direction = direction(**direction_rows)
        padded_direction = direction(**PolarBertDirectionCollator(config, feature_extractor=extractor_for(config))(rows))
    assert torch.allclose(packed_direction.direction, padded_direction.direction, atol=1e-5)
    assert torch.allclose(packed_direction.loss, padded_direction.loss, atol=1e-5)


def test_packed_batch_with_flex_attention_document_mask_gives_the_padded_outputs(tester):
    config = tester.get_config(sparse_prediction=True)
    rows = collator_rows(n_events=7, lengths=[3, 30, 1, 12, 90, 9, 20])
    with torch.no_grad():
        reference = compare_packed_with_padded(config, "sdpa", rows, 128)[0]
    # Each shape compiles on its own: the dynamic-shape CPU kernel of flex attention fails to build in torch 2.13.
    with torch._dynamo.config.patch(automatic_dynamic_shapes=False):
        packed_out = compare_packed_with_padded(config, "flex_attention", rows, 128)[1]
    for name in ("loss", "charge_prediction", "logits"):
        assert torch.allclose(getattr(packed_out, name), getattr(reference, name), atol=1e-5), name


def test_gradient_checkpointing_gives_the_same_gradients(tester):
    config = tester.get_config(sparse_prediction=True)
    batch = PolarBertPretrainingCollator(config, feature_extractor=extractor_for(config), seed=0)(collator_rows())
    torch.manual_seed(0)
    model = PolarBertForMaskedDOM(config).train()
    model.zero_grad()
    model(**batch).loss.backward()
    plain = {name: parameter.grad.clone() for name, parameter in model.named_parameters()}

    # transformers >= 5.2x names it activation checkpointing; gradient_checkpointing_enable is the older name
    enable = getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)
    enable()
    assert all(layer.gradient_checkpointing for layer in model.polarbert.layers)
    recomputed = []
    model.polarbert.layers[0].mlp.register_forward_pre_hook(lambda *args: recomputed.append(True))
    model.zero_grad()
    model(**batch).loss.backward()
    assert len(recomputed) == 2  # the layer ran again in the backward pass: its activations were not kept
    for name, parameter in model.named_parameters():
        assert torch.allclose(parameter.grad, plain[name], atol=1e-6), name


def test_compiled_training_step_equals_eager_and_does_not_recompile_per_batch_length(tester):
    """torch.compile (inductor) of forward + backward: after the first two shapes (the second one makes the
    varying sizes dynamic) batches of new lengths and new numbers of masked pulses reuse the compiled graphs."""
    config = PolarBertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                             sparse_prediction=True, check_inputs=False)
    collator = PolarBertPretrainingCollator(config, feature_extractor=extractor_for(config), seed=0, pad_to_multiple_of=8)  # lengths in buckets of 8
    batches = [collator(collator_rows(n_events=4, seed=seed, lengths=lengths))
               for seed, lengths in enumerate([[5, 3, 7, 2], [14, 3, 9, 1], [20, 22, 4, 6], [30, 1, 2, 3]])]
    assert len({batch["dom_ids"].shape[1] for batch in batches}) == 4
    torch.manual_seed(0)
    model = PolarBertForMaskedDOM(config).train()
    compiled = torch.compile(model, backend="inductor")

    def step(forward, batch):
        model.zero_grad()
        loss = forward(**batch).loss
        loss.backward()
        return loss.detach(), [parameter.grad.clone() for parameter in model.parameters()]

    torch._dynamo.reset()
    for number, batch in enumerate(batches):
        context = torch._dynamo.config.patch(error_on_recompile=True) if number >= 2 else contextlib.nullcontext()
        with context:  # a recompilation from here on raises
            loss, gradients = step(compiled, batch)
        eager_loss, eager_gradients = step(model, batch)
        assert torch.allclose(loss, eager_loss, atol=1e-5), number
        for compiled_gradient, eager_gradient in zip(gradients, eager_gradients):
            assert torch.allclose(compiled_gradient, eager_gradient, atol=1e-5), number


# ---------------------------------------------------------------------------------------------------------------
# Folders saved before the feature extractor owned its settings (config.json held them too)
# ---------------------------------------------------------------------------------------------------------------

SAVED_2026_12_07 = Path(__file__).resolve().parent / "fixtures" / "polarbert_saved_2026_12_07"


def test_a_folder_saved_when_the_config_held_the_extractors_settings_loads_and_predicts_as_then(tmp_path):
    """The fixture was saved by the code of 2026-12-07 (commit c7a7f82), with the directions that code computed:
    its config.json is converted on load, and the model predicts the same directions bit for bit; saved again, the
    folder is in today's format and predicts the same."""
    expected = json.loads((SAVED_2026_12_07 / "expected_outputs.json").read_text())
    model = PolarBertForDirection.from_pretrained(SAVED_2026_12_07).eval()
    extractor = PolarBertFeatureExtractor.from_pretrained(SAVED_2026_12_07)
    assert model.config.num_pulse_features == 4 and not hasattr(model.config, "time_scale")
    assert (extractor.time_scale, extractor.max_pulses, extractor.event_time_reference) == (
        20000.0, 50, "charge_weighted_mean")
    inputs = extractor(expected["events"], return_tensors="pt")
    with torch.no_grad():
        direction = model(**inputs).direction
    assert torch.equal(direction, torch.tensor(expected["direction"], dtype=torch.float32))

    model.save_pretrained(tmp_path)
    extractor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["num_pulse_features"] == 4 and not set(LEGACY_PREPROCESSING_SETTINGS) & set(saved)
    with torch.no_grad():
        assert torch.equal(PolarBertForDirection.from_pretrained(tmp_path).eval()(**inputs).direction, direction)


def test_the_models_door_names_a_feature_count_that_its_folders_extractor_does_not_write(tmp_path):
    shutil.copytree(SAVED_2026_12_07, tmp_path / "model")
    extractor_file = tmp_path / "model" / "preprocessor_config.json"
    extractor_file.write_text(json.dumps({**json.loads(extractor_file.read_text()), "event_time_reference": None}))
    with pytest.raises(ValueError, match=r"disagree \(num_pulse_features: preprocessor_config.json 3, config.json 4\)"):
        PolarBertForDirection.from_pretrained(tmp_path / "model")
