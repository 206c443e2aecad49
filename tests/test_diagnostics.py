"""Tests of modeling_polarbert.diagnostics: the measurements that tell a collapsed direction model from a learning one."""

import json

import numpy as np
import torch

from modeling_polarbert import PolarBertConfig, PolarBertForDirection
from modeling_polarbert.diagnostics import (
    backbone_vectors,
    gradient_norms,
    input_scales,
    linear_probe_angle,
    output_dependence,
    plot_diagnostics,
)

CONFIG = PolarBertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                         use_dom_positions=True, num_pulse_features=4)  # a time-within-event column


def random_batch(batch_size=16, length=10, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {
        "dom_ids": torch.randint(0, CONFIG.num_doms, (batch_size, length), generator=generator),
        "features": torch.randn(batch_size, length, CONFIG.num_pulse_features, generator=generator),
        "attention_mask": torch.ones(batch_size, length, dtype=torch.long),
    }


def test_a_constant_direction_model_reads_as_collapsed():
    torch.manual_seed(0)
    model = PolarBertForDirection(CONFIG)
    with torch.no_grad():  # the head ignores its input: one constant direction
        model.direction_head[-1].weight.zero_()
        model.direction_head[-1].bias.copy_(torch.tensor([0.0, 0.0, 2.0]))
    measured = output_dependence(model, random_batch())
    assert abs(measured["direction_resultant"] - 1.0) < 1e-6
    assert measured["time_sensitivity"] < 1e-3
    assert abs(measured["head_bias_share"] - 1.0) < 1e-5


def test_an_input_dependent_model_reads_as_alive():
    torch.manual_seed(0)
    measured = output_dependence(PolarBertForDirection(CONFIG), random_batch())
    assert measured["direction_resultant"] < 0.99 and measured["time_sensitivity"] > 0.01
    assert 0.0 <= measured["dead_head_units"] < 1.0 and measured["cls_spread"] > 0.01


def test_gradient_norms_cover_every_part_and_match_a_direct_computation():
    torch.manual_seed(0)
    model = PolarBertForDirection(CONFIG)
    batch = random_batch()
    labels = torch.nn.functional.normalize(torch.randn(16, 3), dim=-1)
    model(**batch, labels=labels).loss.backward()
    norms = gradient_norms(model)
    assert set(norms) == {"dom_embedding", "feature_embedding", "cls_token", "position_embedding", "layer_0", "layer_1",
                          "direction_head"}
    direct = torch.cat([p.grad.flatten() for p in model.polarbert.layers[1].parameters()]).norm()
    assert abs(norms["layer_1"] - float(direct)) < 1e-6


def test_input_scales_measure_the_embedding_parts_and_the_time_spread(tmp_path):
    batch = random_batch()
    scales = input_scales(PolarBertForDirection(CONFIG), batch)
    time = batch["features"][..., 0]
    assert abs(scales["time_between_events_std"] - float(time.mean(dim=1).std())) < 1e-5
    assert abs(scales["dom_embedding_rms"] - CONFIG.initializer_range) < 0.005  # N(0, 0.02) rows
    record = {"step": 1, "gradient_norms": {"layer_0": 0.1}, "direction_resultant": 1.0, "cls_spread": 0.1,
              "dead_head_units": 0.5}
    (tmp_path / "run.jsonl").write_text(json.dumps(record) + "\n")
    assert plot_diagnostics({"run": tmp_path / "run.jsonl"}, tmp_path / "plot.png").stat().st_size > 1000


def test_the_linear_probe_reads_a_direction_that_is_there_and_none_that_is_not():
    generator = np.random.default_rng(0)
    directions = generator.normal(size=(1200, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    # Vectors that hold the direction linearly (mixed into 8 dimensions, plus a little noise), and pure noise.
    holds = directions @ generator.normal(size=(3, 8)) + 0.05 * generator.normal(size=(1200, 8))
    noise = generator.normal(size=(1200, 8))
    assert linear_probe_angle(holds[:1000], directions[:1000], holds[1000:], directions[1000:]) < 0.1
    assert linear_probe_angle(noise[:1000], directions[:1000], noise[1000:], directions[1000:]) > 1.3


def test_backbone_vectors_are_the_cls_and_the_mean_of_the_real_pulses():
    torch.manual_seed(0)
    model = PolarBertForDirection(CONFIG).eval()
    batches = [random_batch(batch_size=3, length=6, seed=seed) for seed in range(2)]
    for batch in batches:
        batch["attention_mask"][:, 4:] = 0  # two padded pulses per event
        batch["labels"] = torch.nn.functional.normalize(torch.randn(3, 3), dim=-1)

    cls, mean, labels = backbone_vectors(model.polarbert, batches)
    outputs = [model.polarbert(batch["dom_ids"], batch["features"], batch["attention_mask"]) for batch in batches]
    assert np.allclose(cls, torch.cat([output.pooler_output for output in outputs]).detach().numpy(), atol=1e-6)
    pulses = torch.cat([output.last_hidden_state[:, 1:5].mean(1) for output in outputs])
    assert np.allclose(mean, pulses.detach().numpy(), atol=1e-6)
    assert np.array_equal(labels, torch.cat([batch["labels"] for batch in batches]).numpy())
