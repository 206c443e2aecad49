"""The sample-efficiency study (modeling_polarbert.studies) as the quickstart runs it, at a small size, with a
shipped backbone; its table; how the quickstart finds a backbone."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModel

from modeling_polarbert import PolarBertConfig, PolarBertForMaskedDOM
from modeling_polarbert.hub import save_backbone
from modeling_polarbert.studies import results_table
from script_loading import load_script  # tests/ is on sys.path under pytest

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_pipeline_at_a_small_size_with_a_frozen_shipped_backbone(tmp_path):
    torch.manual_seed(0)
    config = PolarBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    PolarBertForMaskedDOM(config).save_pretrained(tmp_path / "pretrained")
    backbone = save_backbone(tmp_path / "pretrained", tmp_path / "polarbert-tiny-sim", training_data="a test backbone")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/quickstart.py"), "--small", "--out", str(tmp_path / "runs"),
         "--data-dir", str(tmp_path / "data"), "--backbone", str(backbone), "--freeze-backbone"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "runs" / "results.json").read_text())
    row = results["rows"][0]
    for name in ("pretrained", "scratch", "backbone", "linefit"):
        assert 0 < row[name] < math.pi, name
    assert row["linefit"] < 1.4  # LineFit on the simulation is far from random
    assert results["backbone"] == str(backbone)
    assert "| labelled events | pretrained | from scratch | shipped backbone | LineFit | random |" in result.stdout
    assert f"Fine-tuned from the shipped backbone ({backbone})" in " ".join(result.stdout.split())  # wrapped
    # Frozen: the fine-tuned model carries the shipped (bf16) backbone unchanged, in float32, and a trained head.
    tuned = load_file(tmp_path / "runs" / "backbone_300" / "model.safetensors")
    for name, tensor in load_file(backbone / "model.safetensors").items():
        assert torch.equal(tuned[f"polarbert.{name}"], tensor.float()), name
    assert tuned["direction_head.0.weight"].dtype == torch.float32
    assert (tmp_path / "runs" / "sample_efficiency.png").stat().st_size > 0
    model = tmp_path / "runs" / "pretrained_300"
    assert type(AutoModel.from_pretrained(model)).__name__ == "PolarBertModel"
    assert "library_name: transformers" in (model / "README.md").read_text()
    submission = pd.read_csv(tmp_path / "runs" / "submission.csv")
    meta = pd.read_parquet(tmp_path / "data" / "kaggle_test" / "test_meta.parquet")
    assert submission["event_id"].tolist() == meta["event_id"].tolist()
    # The tiny configs (and the README's commands after the main job) train on the datasets the quickstart leaves.
    for config in ("pretrain_tiny.yaml", "finetune_tiny.yaml"):
        for value in yaml.safe_load((ROOT / "configs" / config).read_text()).values():
            if str(value).startswith("data/quickstart/"):
                folder = tmp_path / "data" / Path(value).relative_to("data/quickstart")
                assert (folder / "dataset_info.json").is_file(), value


def test_the_table_has_a_column_per_method_and_linefit_and_random():
    results = {"random": math.pi / 2, "rows": [
        {"labelled_events": 10_000, "pretrained": 1.2, "scratch": 1.5, "linefit": 1.3},
        {"labelled_events": 100_000, "pretrained": 1.1, "scratch": 1.4, "linefit": 1.3, "backbone": 1.0,
         "pretrained_track": 0.9, "scratch_track": 1.3, "backbone_track": 0.8, "linefit_track": 0.7}]}
    lines = results_table(results).splitlines()
    assert lines[0] == "| labelled events | pretrained | from scratch | shipped backbone | LineFit | random |"
    assert lines[1] == "|---|---|---|---|---|---|"
    assert lines[2] == "| 10,000 | 1.200 | 1.500 | - | 1.300 | 1.571 |"
    assert lines[3] == "| 100,000 | 1.100 | 1.400 | 1.000 | 1.300 | 1.571 |"
    assert lines[4] == "| tracks only | 0.900 | 1.300 | 0.800 | 0.700 | 1.571 |"
    for key in ("backbone", "backbone_track"):
        del results["rows"][1][key]
    assert "shipped backbone" not in results_table(results)


def test_quickstart_says_in_one_line_that_no_backbone_is_shipped(tmp_path, capsys):
    quickstart = load_script("quickstart")
    assert quickstart.shipped_backbone(tmp_path / "missing") is None
    assert capsys.readouterr().out.strip().splitlines() == [
        f"No pretrained backbone at {tmp_path / 'missing'}: fine-tuning from it is skipped."]
    (tmp_path / "backbone").mkdir()
    (tmp_path / "backbone" / "config.json").write_text("{}")
    assert quickstart.shipped_backbone(tmp_path / "backbone") == tmp_path / "backbone"


def test_task_study_at_a_small_size_shares_the_pretraining_and_reports_against_the_baseline(tmp_path):
    study = load_script("sample_efficiency")
    common = ["--out", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data"), "--pretrain-events", "400",
              "--labelled-sizes", "200", "--eval-events", "120", "--pretrain-args=--max_steps 3 --eval_events 50",
              "--finetune-args=--max_steps 3 --eval_strategy no --save_strategy no"]
    regression = study.main([*common, "--task", "regression", "--label-columns", "log10:energy"])
    pretraining = (tmp_path / "runs" / "pretrained" / "model.safetensors").stat().st_mtime_ns
    classification = study.main([*common, "--task", "classification", "--label-columns", "is_track"])
    # One pretraining serves both tasks; each task's runs, reports and results have their own names.
    assert (tmp_path / "runs" / "pretrained" / "model.safetensors").stat().st_mtime_ns == pretraining
    for stem, results in (("log10_energy", regression), ("is_track", classification)):
        for start in ("pretrained", "scratch"):
            assert (tmp_path / "runs" / f"{stem}_{start}_200" / "model.safetensors").is_file()
        assert json.loads((tmp_path / "runs" / f"results_{stem}.json").read_text()) == results
        assert (tmp_path / "runs" / f"sample_efficiency_{stem}.png").stat().st_size > 0
    # The figures are those evaluate wrote for each model, with the baseline beside them.
    energy = json.loads((tmp_path / "runs" / "report_log10_energy_pretrained_200" / "metrics.json").read_text())
    figures = regression["rows"][0]["figures"]["resolution log10:energy"]
    assert figures["pretrained"] == energy["regression"]["log10:energy"]["overall"]["model"]["resolution"]
    assert figures["baseline"] == energy["regression"]["log10:energy"]["overall"]["baseline"]["resolution"]
    track = json.loads((tmp_path / "runs" / "report_is_track_scratch_200" / "metrics.json").read_text())
    assert classification["rows"][0]["figures"]["roc_auc is_track"]["scratch"] == track["classification"]["model"]["roc_auc"]
    assert classification["rows"][0]["figures"]["roc_auc is_track"]["baseline"] == 0.5  # the majority class
    table = (tmp_path / "runs" / "results_is_track.md").read_text()
    assert table.startswith("| labelled events | figure | pretrained | from scratch | baseline |")


def test_a_simulated_set_of_another_size_is_refused_not_reused(tmp_path):
    from modeling_polarbert.studies import simulated_dataset

    first = simulated_dataset(tmp_path, "eval", 30, seed=3)
    assert simulated_dataset(tmp_path, "eval", 30, seed=3) == first  # resumed: the same folder
    with pytest.raises(ValueError, match="holds 30 events, not the 40 asked for"):
        simulated_dataset(tmp_path, "eval", 40, seed=3)
