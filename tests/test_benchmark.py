"""scripts/benchmark.py runs on CPU at a small size (the GPU figures are measured on a GPU, not in CI)."""

import importlib.util
import math
from pathlib import Path

import torch

from modeling_polarbert import PolarBertConfig


def load_script(name: str):
    """A script of scripts/ as a module, loaded from its file (scripts/ is not put on sys.path)."""
    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


benchmark = load_script("benchmark")


def test_benchmark_measures_every_requested_variant_on_cpu(capsys):
    results = benchmark.main([
        "--device", "cpu", "--model", "tiny", "--events", "300", "--batch-size", "32", "--steps", "2",
        "--warmup", "1", "--attention", "sdpa", "eager", "--batching", "padded", "grouped", "--workers", "0",
        "--trainer-workers", "0",
    ])
    measured = {(r.what, r.batching, r.attention): r for r in results}
    for what in ("pretraining step", "direction inference"):
        for batching in ("padded", "grouped"):
            for attention in ("sdpa", "eager"):
                result = measured[(what, batching, attention)]
                assert result.events_per_second > 0 and result.ms_per_step > 0, result
                assert 0 < result.mfu < 10, result
    assert measured[("collator, 0 workers", "random", "-")].events_per_second > 0
    trainer = measured[("Trainer pretraining, end to end", "grouped", "sdpa")]
    assert trainer.events_per_second > 0
    table = capsys.readouterr().out
    assert benchmark.HEADER.splitlines()[0] in table and table.count("| pretraining step |") >= 4


def test_model_flops_count_real_tokens_and_masked_pulses_only():
    config = PolarBertConfig(hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                             num_doms=10)
    attention_mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])  # 3 and 1 pulses, + CLS: 4 and 2 tokens
    labels = torch.tensor([[5, -100, -100, -100], [-100, -100, -100, -100]])  # one masked pulse
    batch = {"attention_mask": attention_mask, "labels": labels}
    h, i = 8, 16
    per_layer = 2 * 6 * (4 * h * h + 2 * h * i) + 2 * 2 * (4**2 + 2**2) * h
    expected_forward = 2 * per_layer + 2 * 1 * h * 10
    assert benchmark.model_flops(config, batch, training=False) == expected_forward
    assert benchmark.model_flops(config, batch, training=True) == 3 * expected_forward
    assert math.isclose(benchmark.model_flops(config, {"attention_mask": attention_mask}, training=False),
                        2 * per_layer + 2 * 2 * (h * 32 + 32 * 3))
