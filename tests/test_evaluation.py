"""Evaluation (modeling_polarbert.evaluation): metrics of a model beside LineFit, equal to a direct computation."""

import numpy as np
import pandas as pd
import pytest
import torch

from modeling_polarbert import PolarBertConfig, PolarBertForDirection
from modeling_polarbert.evaluation import evaluate_model
from modeling_polarbert.numpy_directions import angles_to_unit_vector, mean_opening_angle_from_angles, opening_angle
from modeling_polarbert.prediction import load_direction_model, predict_directions, predict_kaggle_dir


def test_evaluate_matches_a_direct_computation_and_predict(simulated, tmp_path):
    torch.manual_seed(0)
    config = PolarBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                             direction_loss="vmf")
    PolarBertForDirection(config).save_pretrained(tmp_path / "model")
    metrics = evaluate_model(str(tmp_path / "model"), str(simulated / "prepared"), str(tmp_path / "report"),
                             batch_size=64, progress=False)

    import datasets

    dataset = datasets.load_from_disk(str(simulated / "prepared"))
    predicted = predict_directions(load_direction_model(str(tmp_path / "model")), dataset, batch_size=37,
                                   progress=False)
    truth = angles_to_unit_vector(np.asarray(dataset["azimuth"]), np.asarray(dataset["zenith"]))
    assert metrics["overall"]["model"]["mean"] == pytest.approx(np.mean(opening_angle(truth, predicted["direction"])))
    assert metrics["overall"]["model"]["events"] == len(dataset)
    assert 0.5 < metrics["overall"]["linefit"]["mean"] < 1.5  # LineFit is far from random on the simulation
    assert {"track", "cascade", "up-going", "down-going"} <= metrics["breakdowns"].keys()
    assert "kappa_calibration" in metrics
    for name in ["metrics.json", "opening_angle_histogram.png", "opening_angle_by_pulse_count.png",
                 "kappa_calibration.png"]:
        assert (tmp_path / "report" / name).stat().st_size > 0, name

    # predict over the Kaggle files gives the same metric as evaluate, event by event in meta order.
    predict_kaggle_dir(str(tmp_path / "model"), str(simulated / "kaggle"), str(tmp_path / "submission.csv"),
                       split="train", batch_size=50, progress=False)
    submission = pd.read_csv(tmp_path / "submission.csv")
    meta = pd.read_parquet(simulated / "kaggle" / "train_meta.parquet")
    assert list(submission.columns) == ["event_id", "azimuth", "zenith"]
    assert submission["event_id"].tolist() == meta["event_id"].tolist()
    score = mean_opening_angle_from_angles(meta["azimuth"], meta["zenith"], submission["azimuth"], submission["zenith"])
    assert score == pytest.approx(metrics["overall"]["model"]["mean"], abs=1e-5)
