"""The benchmarks (modeling_polarbert.benchmarks: the throughput benchmark, the GPU benchmark, the reference
harness) run on CPU at a small size (the GPU figures are measured on a GPU, not in CI); scripts/benchmark.py and
scripts/gpu_benchmark.py are their doors."""

import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from modeling_polarbert import PolarBertConfig
from modeling_polarbert.benchmarks import gpu_benchmark, reference, throughput
from modeling_polarbert.benchmarks.measuring import model_flops
from modeling_polarbert.benchmarks.results import HEADER
from modeling_polarbert.collators import PolarBertPretrainingCollator
from script_loading import load_script  # tests/ is on sys.path under pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_COPY = ROOT / "reference"  # git-ignored; see modeling_polarbert/benchmarks/reference.py


def test_benchmark_measures_every_requested_variant_on_cpu(capsys):
    results = throughput.main([
        "--device", "cpu", "--model", "tiny", "--events", "300", "--batch-size", "32", "--steps", "2",
        "--warmup", "1", "--attention", "sdpa", "eager", "--batching", "padded", "grouped", "packed",
        "--pack-length", "256", "--workers", "0", "--trainer-workers", "0",
    ])
    measured = {(r.what, r.batching, r.attention): r for r in results}
    for what in ("pretraining step", "direction inference"):
        for batching in ("padded", "grouped", "packed"):
            for attention in ("sdpa", "eager"):
                result = measured[(what, batching, attention)]
                assert result.events_per_second > 0 and result.ms_per_step > 0, result
                assert 0 < result.mfu < 10, result
    assert measured[("collator, 0 workers", "random", "-")].events_per_second > 0
    trainer = measured[("Trainer pretraining, end to end", "grouped", "sdpa")]
    assert trainer.events_per_second > 0
    table = capsys.readouterr().out
    assert HEADER.splitlines()[0] in table and table.count("| pretraining step |") >= 6


def test_model_flops_count_real_tokens_and_masked_pulses_only():
    config = PolarBertConfig(hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                             num_doms=10)
    attention_mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])  # 3 and 1 pulses, + CLS: 4 and 2 tokens
    labels = torch.tensor([[5, -100, -100, -100], [-100, -100, -100, -100]])  # one masked pulse
    batch = {"attention_mask": attention_mask, "labels": labels}
    h, i = 8, 16
    per_layer = 2 * 6 * (4 * h * h + 2 * h * i) + 2 * 2 * (4**2 + 2**2) * h
    expected_forward = 2 * per_layer + 2 * 1 * h * 10
    assert model_flops(config, batch, training=False) == expected_forward
    assert model_flops(config, batch, training=True) == 3 * expected_forward
    assert math.isclose(model_flops(config, {"attention_mask": attention_mask}, training=False),
                        2 * per_layer + 2 * 2 * (h * 32 + 32 * 3))
    # The same two events packed in one row of 8 tokens: [CLS, 3 pulses, CLS, 1 pulse, padding, padding]
    packed = {"attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1, 0, 0]]), "cls_positions": torch.tensor([0, 4]),
              "labels": torch.tensor([[-100, 5, -100, -100, -100, -100, -100, -100]])}
    assert model_flops(config, packed, training=False) == expected_forward


def test_gpu_benchmark_runs_every_part_at_a_tiny_size_on_cpu(tmp_path):
    report = gpu_benchmark.main(["--tiny", "--device", "cpu", "--out", str(tmp_path), "--in-process",
                                 "--num-proc", "1", "--events", "400"])
    names = [name for name, _, _ in gpu_benchmark.plan(type("Args", (), {"tiny": True})())]
    assert [part["name"] for part in report["parts"]] == ["data", *names]
    assert all(part["status"] == "done" for part in report["parts"])
    assert {row["part"] for row in report["results"]} == set(names)  # every part measured something
    written = json.loads((tmp_path / "gpu_benchmark.json").read_text())
    assert len(written["results"]) == len(report["results"])
    checks = [row for row in written["results"] if row["what"].startswith("check:")]
    assert len(checks) == 3 and all(row["note"].startswith("passed") for row in checks), checks
    markdown = (tmp_path / "gpu_benchmark.md").read_text()
    assert "## Targets" in markdown and "| Trainer pretraining, events/s" in markdown
    assert markdown.count("| Trainer pretraining, end to end |") == 2  # padded and packed
    assert "gradient checkpointing" in markdown and "check_inputs on" in markdown
    assert (tmp_path / "gpu_benchmark.log").read_text().count("=====") == len(names)


def test_a_part_past_its_time_limit_is_cut_and_reported(tmp_path):
    start = time.perf_counter()
    status, seconds = gpu_benchmark.run_part("slow", [sys.executable, "-c", "import time; time.sleep(60)"], 1.0,
                                             tmp_path / "slow.log")
    assert status == "cut at its time limit of 1 s" and seconds < 10 and time.perf_counter() - start < 10


def test_reference_batches_follow_the_reference_data_layout():
    config = PolarBertConfig()
    rng = np.random.default_rng(0)
    rows = [{"event_id": i, "sensor_id": rng.integers(0, 5160, n).tolist(), "time": list(range(6000, 6000 + n)),
             "charge": [1.0] * n, "auxiliary": [False] * n} for i, n in enumerate([5, 2, 9])]
    batch = PolarBertPretrainingCollator(config, seed=0)(rows)
    (x, lengths), (_, charge) = reference.reference_batch(batch, batch["total_charge"], 127)
    assert x.shape == (3, 127, 4) and x.dtype == torch.float32
    assert lengths.tolist() == [5, 2, 9]
    for event, row in enumerate(rows):
        n = len(row["sensor_id"])
        # its DOM ids are ours + 1 with 0 as padding, unmasked (it masks by itself)
        assert x[event, :n, 3].long().tolist() == [s + 1 for s in row["sensor_id"]]
        assert (x[event, n:] == 0).all()
        assert torch.allclose(x[event, :n, :3], batch["features"][event, :n])
    assert torch.allclose(charge, torch.tensor([5.0, 2.0, 9.0]))
    as_dict = reference.reference_batch(batch, batch["total_charge"], 127, dict_inputs=True)[0][0]
    assert as_dict["features"].shape == (3, 127, 3) and torch.equal(as_dict["dom_id"], x[..., 3].long())
    assert reference.reference_config(config)["model"]["embedding_dim"] == config.hidden_size


@pytest.mark.skipif(not (REFERENCE_COPY / "src" / "polarbert").is_dir()
                    or importlib.util.find_spec("pytorch_lightning") is None,
                    reason="needs the git-ignored copy of timinar/PolarBERT in reference/ and pytorch_lightning")
def test_the_reference_trains_on_our_batches():
    config = PolarBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    model = reference.build_reference(config, REFERENCE_COPY)
    rng = np.random.default_rng(0)
    batches = []
    for seed in range(3):
        rows = [{"event_id": i, "sensor_id": rng.integers(0, 5160, n).tolist(), "time": list(range(6000, 6000 + n)),
                 "charge": [1.0] * n, "auxiliary": (rng.random(n) < 0.3).tolist()} for i, n in enumerate([30, 12])]
        batch = PolarBertPretrainingCollator(config, seed=seed)(rows)
        batches.append(reference.reference_batch(batch, batch["total_charge"], 127))
    before = [p.detach().clone() for p in model.parameters()]
    seconds, events = reference.time_reference_steps(model, batches, torch.device("cpu"), 1, torch.float32)
    assert seconds > 0 and events == 4
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # its optimizer stepped


def test_the_scripts_are_doors_to_the_package():
    assert load_script("benchmark").main is throughput.main
    assert load_script("gpu_benchmark").main is gpu_benchmark.main
