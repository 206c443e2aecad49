"""Prediction (modeling_polarbert.prediction): every-pulse batching, submissions, bad input."""

import shutil

import numpy as np
import pytest

from modeling_polarbert import PolarBertConfig, PolarBertForDirection
from modeling_polarbert.prediction import predict_directions, predict_kaggle_dir


def test_every_pulse_prediction_is_batched_by_length_yet_returned_in_dataset_order(simulated, tmp_path):
    import datasets

    config = PolarBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    model = PolarBertForDirection(config).eval()
    dataset = datasets.load_from_disk(str(simulated / "prepared")).select(range(60))
    assert max(dataset["n_pulses"]) > config.max_pulses  # some events are longer than the down-sampled 127
    batched = predict_directions(model, dataset, batch_size=4, all_pulses=True, progress=False)["direction"]
    one_by_one = np.concatenate([
        predict_directions(model, dataset.select([i]), batch_size=1, all_pulses=True, progress=False)["direction"]
        for i in range(len(dataset))
    ])
    np.testing.assert_allclose(batched, one_by_one, atol=2e-5)
    down_sampled = predict_directions(model, dataset, batch_size=4, progress=False)["direction"]
    long_events = np.asarray(dataset["n_pulses"]) > config.max_pulses
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
