"""Prediction (modeling_polarbert.prediction): every-pulse batching, submissions, bad input, and the refusal of
models that would predict garbage (through `polarbert predict` and `polarbert evaluate`, which load the same way)."""

import shutil

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from modeling_polarbert import (
    PolarBertConfig,
    PolarBertFeatureExtractor,
    PolarBertForDirection,
    PolarBertForMaskedDOM,
    PolarBertForSequenceClassification,
    PolarBertModel,
)
from modeling_polarbert.cli import main as polarbert_cli
from modeling_polarbert.loading import load_prepared_dataset
from modeling_polarbert.prediction import predict_directions, predict_kaggle_dir, predict_sequence_logits


def test_every_pulse_prediction_is_batched_by_length_yet_returned_in_dataset_order(simulated, tmp_path):
    import datasets

    config = PolarBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    model = PolarBertForDirection(config).eval()
    dataset = datasets.load_from_disk(str(simulated / "prepared")).select(range(60))
    max_pulses = PolarBertFeatureExtractor().max_pulses  # what for_model(config) gives a model saved without one
    assert max(dataset["n_pulses"]) > max_pulses  # some events are longer than the down-sampled 127
    batched = predict_directions(model, dataset, batch_size=4, all_pulses=True, progress=False)["direction"]
    one_by_one = np.concatenate([
        predict_directions(model, dataset.select([i]), batch_size=1, all_pulses=True, progress=False)["direction"]
        for i in range(len(dataset))
    ])
    np.testing.assert_allclose(batched, one_by_one, atol=2e-5)
    down_sampled = predict_directions(model, dataset, batch_size=4, progress=False)["direction"]
    long_events = np.asarray(dataset["n_pulses"]) > max_pulses
    assert not np.allclose(batched[long_events], down_sampled[long_events], atol=1e-4)
    np.testing.assert_allclose(batched[~long_events], down_sampled[~long_events], atol=2e-5)


def test_predict_rejects_missing_batches_and_writes_nothing(simulated, tmp_path):
    PolarBertForDirection(PolarBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=64)).save_pretrained(tmp_path / "model")
    broken = tmp_path / "kaggle"
    shutil.copytree(simulated / "kaggle", broken)
    victim = sorted((broken / "train").glob("batch_*.parquet"))[-1]
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=victim.name):
        predict_kaggle_dir(str(tmp_path / "model"), str(broken), str(tmp_path / "out.csv"), split="train",
                           progress=False)
    assert not list(tmp_path.glob("out.csv*"))


TINY_CONFIG = PolarBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


def run_cli_on_model(command: str, model, simulated, tmp_path, capsys) -> tuple[int, str]:
    """`polarbert predict|evaluate MODEL ...` in this process: (exit status, stderr); asserts nothing was written."""
    out = tmp_path / ("submission.csv" if command == "predict" else "report")
    data = [str(simulated / "kaggle"), "--split", "train"] if command == "predict" else [str(simulated / "prepared")]
    capsys.readouterr()  # drop what building the test's folders printed
    status = polarbert_cli([command, str(model), *data, "--out", str(out)])
    assert not list(tmp_path.glob(out.name + "*")), "output left behind"
    return status, capsys.readouterr().err


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_predict_and_evaluate_refuse_a_model_whose_direction_head_was_never_trained(simulated, tmp_path, capsys,
                                                                                    command):
    PolarBertForMaskedDOM(TINY_CONFIG).save_pretrained(tmp_path / "pretrained")
    PolarBertModel(TINY_CONFIG).save_pretrained(tmp_path / "backbone")
    # A direction checkpoint whose weights lost the head: config.architectures alone would not tell.
    PolarBertForDirection(TINY_CONFIG).save_pretrained(tmp_path / "headless")
    weights = load_file(tmp_path / "headless" / "model.safetensors")
    save_file({name: tensor for name, tensor in weights.items() if not name.startswith("direction_head.")},
              tmp_path / "headless" / "model.safetensors", metadata={"format": "pt"})
    for folder, message in [
        ("pretrained", "holds a PolarBertForMaskedDOM checkpoint, not a direction model: its direction head was "
                       "never trained. Fine-tune a direction model first: python scripts/finetune.py"),
        ("backbone", "holds a PolarBertModel checkpoint, not a direction model"),
        ("headless", "its weights hold no direction_head tensors: the direction head was never trained."),
    ]:
        status, stderr = run_cli_on_model(command, tmp_path / folder, simulated, tmp_path, capsys)
        assert status == 2 and message in stderr and "scripts/finetune.py" in stderr, stderr
        assert stderr.count("\n") == 1 and stderr.startswith(f"polarbert {command}: error: "), stderr


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_corrupt_or_truncated_model_file_is_one_line_naming_it(simulated, tmp_path, capsys, command):
    PolarBertForDirection(TINY_CONFIG).save_pretrained(tmp_path / "model")
    weights = tmp_path / "model" / "model.safetensors"
    intact = weights.read_bytes()
    for damaged in (intact[: len(intact) // 2], b"not a safetensors file at all"):
        weights.write_bytes(damaged)
        status, stderr = run_cli_on_model(command, tmp_path / "model", simulated, tmp_path, capsys)
        assert status == 2 and stderr.count("\n") == 1, stderr
        assert f"{weights} is not a readable safetensors file" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_model_path_that_is_neither_a_folder_nor_a_hub_id_is_no_such_model_folder(simulated, tmp_path, capsys,
                                                                                    monkeypatch, command):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network in tests
    for path in (tmp_path / "missing" / "model", "nobody/no-such-polarbert"):
        status, stderr = run_cli_on_model(command, path, simulated, tmp_path, capsys)
        assert status == 2 and stderr.count("\n") == 1, stderr
        assert f"no such model folder: {path} (nor a model id reachable on the Hugging Face Hub)" in stderr


def test_predict_refuses_a_saved_feature_extractor_that_disagrees_with_the_model(simulated, tmp_path, capsys):
    PolarBertForDirection(TINY_CONFIG).save_pretrained(tmp_path / "model")
    PolarBertFeatureExtractor(charge_scale=1.0).save_pretrained(tmp_path / "model")
    status, stderr = run_cli_on_model("predict", tmp_path / "model", simulated, tmp_path, capsys)
    assert status == 2 and "preprocessor_config.json and config.json disagree" in stderr
    assert "charge_scale: preprocessor_config.json 1.0, config.json 3.0" in stderr  # the model's door, the one check


def test_an_event_level_model_predicts_events_without_their_label_columns(simulated):
    config = PolarBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                             problem_type="regression", label_columns=["log10:energy"], id2label={0: "log10:energy"},
                             label2id={"log10:energy": 0}, target_mean=[3.0], target_std=[0.7])
    model = PolarBertForSequenceClassification(config).eval()
    labelled = load_prepared_dataset(str(simulated / "prepared")).select(range(40))
    unlabelled = labelled.remove_columns(["energy"])  # a test split: no truth
    np.testing.assert_array_equal(predict_sequence_logits(model, unlabelled, batch_size=16, progress=False),
                                  predict_sequence_logits(model, labelled, batch_size=16, progress=False))
