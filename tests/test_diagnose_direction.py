"""scripts/diagnose_direction.py: the run it records evaluates from its own folder."""

import json

from modeling_polarbert.evaluation import evaluate_model

from script_loading import load_script  # tests/ is on sys.path

TINY = ("hidden_size=16,num_hidden_layers=1,num_attention_heads=2,intermediate_size=32,use_dom_positions=true,"
        "event_position_reference=charge_weighted_mean,use_dom_embeddings=false")


def test_a_diagnosed_run_saves_the_inputs_it_trained_with_and_reports_its_own_figures(simulated, tmp_path):
    # The time within the event is the extractor's setting (a fourth pulse feature): a saved folder without the
    # extractor's file would be read with three features and refused.
    prepared = str(simulated / "prepared")
    out = tmp_path / "diagnosed"
    summary = load_script("diagnose_direction").main([
        "--out", str(out), "--train", prepared, "--eval", prepared, "--max-train-events", "96", "--epochs", "1",
        "--batch-size", "32", "--every", "1",
        "--config-overrides", f"{TINY},event_time_reference=charge_weighted_mean"])
    assert json.loads((out / "model" / "preprocessor_config.json").read_text())["event_time_reference"] == (
        "charge_weighted_mean")
    metrics = evaluate_model(str(out / "model"), prepared, str(tmp_path / "again"), progress=False)
    assert abs(summary["model"] - metrics["overall"]["model"]["mean"]) < 1e-6
    records = [json.loads(line) for line in (out / "diagnostics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records] == [1, 2, 3]
