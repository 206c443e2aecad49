"""Evaluation (modeling_polarbert.evaluation): metrics of a model beside its baseline (LineFit for direction, a
log10(total charge) fit for regression, the majority class for classification), equal to a direct computation;
its plots and refusals."""

import json

import datasets
import numpy as np
import pandas as pd
import pytest
import torch

from modeling_polarbert import PolarBertConfig, PolarBertForDirection, PolarBertForSequenceClassification
from modeling_polarbert.evaluation import evaluate_model
from modeling_polarbert.numpy_directions import angles_to_unit_vector, mean_opening_angle_from_angles, opening_angle
from modeling_polarbert.prediction import (
    load_direction_model,
    load_sequence_model,
    predict_directions,
    predict_kaggle_dir,
    predict_sequence_logits,
)
from modeling_polarbert.preparation import prepare_kaggle
from modeling_polarbert.sequence_evaluation import cross_validation_folds
from modeling_polarbert.simulation import simulate_kaggle_dir


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
                 "kappa_calibration.png", "opening_angle_by_energy.png"]:
        assert (tmp_path / "report" / name).stat().st_size > 0, name
    # The error against the true energy: each half-decade bin is the direct computation on its events.
    model_angles = opening_angle(truth, predicted["direction"])
    log_energy, is_track = np.log10(np.asarray(dataset["energy"])), np.asarray(dataset["is_track"], bool)
    tracks = metrics["by_energy"]["track"]
    assert tracks and {"all", "track", "cascade"} <= metrics["by_energy"].keys()
    for row in tracks:
        selected = is_track & (np.abs(log_energy - row["log10_energy"]) < 0.25)
        assert row["model"]["events"] == selected.sum()
        assert row["model"]["mean"] == pytest.approx(np.mean(model_angles[selected]), abs=1e-5)

    # predict over the Kaggle files gives the same metric as evaluate, event by event in meta order.
    predict_kaggle_dir(str(tmp_path / "model"), str(simulated / "kaggle"), str(tmp_path / "submission.csv"),
                       split="train", batch_size=50, progress=False)
    submission = pd.read_csv(tmp_path / "submission.csv")
    meta = pd.read_parquet(simulated / "kaggle" / "train_meta.parquet")
    assert list(submission.columns) == ["event_id", "azimuth", "zenith"]
    assert submission["event_id"].tolist() == meta["event_id"].tolist()
    score = mean_opening_angle_from_angles(meta["azimuth"], meta["zenith"], submission["azimuth"], submission["zenith"])
    assert score == pytest.approx(metrics["overall"]["model"]["mean"], abs=1e-5)


TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Two prepared simulated datasets with the simulator's truth columns: 'train' and 'eval'."""
    root = tmp_path_factory.mktemp("evaluation")
    for name, n_events, seed in [("train", 300, 21), ("eval", 240, 22)]:
        simulate_kaggle_dir(root / f"kaggle_{name}", n_events=n_events, seed=seed, batch_size=200)
        prepare_kaggle(root / f"kaggle_{name}", root / name, progress=False)
    return root


def save_model(folder, **task) -> None:
    torch.manual_seed(0)
    PolarBertForSequenceClassification(PolarBertConfig(**TINY, **task)).save_pretrained(folder)


def direct_log10_charge(dataset) -> np.ndarray:
    return np.array([np.log10(np.sum(np.asarray(charges, dtype=np.float64))) for charges in dataset["charge"]])


def half_width(residuals) -> float:
    return (np.percentile(residuals, 84) - np.percentile(residuals, 16)) / 2


REGRESSION = dict(problem_type="regression", label_columns=["log10:energy", "vertex_z"],
                  id2label={0: "log10:energy", 1: "vertex_z"}, label2id={"log10:energy": 0, "vertex_z": 1},
                  target_mean=[3.5, 0.0], target_std=[1.0, 500.0])
CLASSIFICATION = dict(problem_type="single_label_classification", label_columns=["is_track"],
                      id2label={0: "False", 1: "True"}, label2id={"False": 0, "True": 1})


def test_regression_metrics_equal_a_direct_computation(prepared, tmp_path):
    save_model(tmp_path / "model", **REGRESSION)
    metrics = evaluate_model(str(tmp_path / "model"), str(prepared / "eval"), str(tmp_path / "report"),
                             batch_size=64, progress=False, train_dataset=str(prepared / "train"))
    evaluation, train = datasets.load_from_disk(str(prepared / "eval")), datasets.load_from_disk(str(prepared / "train"))
    predicted = predict_sequence_logits(load_sequence_model(str(tmp_path / "model")), evaluation, batch_size=17,
                                        progress=False)
    truth = np.stack([np.log10(evaluation["energy"]), evaluation["vertex_z"]], axis=-1)
    train_truth = np.stack([np.log10(train["energy"]), train["vertex_z"]], axis=-1)
    charge, train_charge = direct_log10_charge(evaluation), direct_log10_charge(train)
    for index, name in enumerate(["log10:energy", "vertex_z"]):
        part = metrics["regression"][name]
        residuals = predicted[:, index] - truth[:, index]
        model = part["overall"]["model"]
        assert model["events"] == len(evaluation)
        assert model["bias"] == pytest.approx(np.median(residuals), rel=1e-4, abs=1e-5)
        assert model["resolution"] == pytest.approx(half_width(residuals), rel=1e-4)
        # The baseline: a straight line in log10(total charge), fitted on the training events.
        slope, intercept = np.polyfit(train_charge, train_truth[:, index], 1)
        baseline = intercept + slope * charge - truth[:, index]
        assert part["overall"]["baseline"]["resolution"] == pytest.approx(half_width(baseline), rel=1e-4)
        assert part["overall"]["baseline"]["bias"] == pytest.approx(np.median(baseline), rel=1e-4, abs=1e-5)
        # Bins of the true value: equal widths from its minimum to its maximum, every event in one.
        bins = part["binned_by_true_value"]
        assert sum(row["events"] for row in bins) == len(evaluation)
        row = max(bins, key=lambda row: row["events"])
        inside = (truth[:, index] >= row["true_low"]) & (truth[:, index] < row["true_high"])
        assert row["events"] == inside.sum()
        assert row["model"]["resolution"] == pytest.approx(half_width(residuals[inside]), rel=1e-4)
    # The total charge predicts the energy: the fit beats the constant guess; it knows nothing of the vertex.
    assert metrics["regression"]["log10:energy"]["overall"]["baseline"]["resolution"] < 0.8 * half_width(
        truth[:, 0] - np.median(truth[:, 0]))
    assert "training events" in metrics["baseline"]["fitted_on"]
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert saved["regression"]["vertex_z"]["overall"] == metrics["regression"]["vertex_z"]["overall"]
    for name in ["predicted_vs_true_log10_energy.png", "bias_resolution_vs_true_log10_energy.png",
                 "predicted_vs_true_vertex_z.png", "bias_resolution_vs_true_vertex_z.png"]:
        assert (tmp_path / "report" / name).stat().st_size > 0, name


def test_baseline_without_training_events_is_cross_validated(prepared, tmp_path):
    save_model(tmp_path / "model", **{**REGRESSION, "label_columns": ["log10:energy"], "id2label": {0: "log10:energy"},
                                      "label2id": {"log10:energy": 0}, "target_mean": [3.5], "target_std": [1.0]})
    metrics = evaluate_model(str(tmp_path / "model"), str(prepared / "eval"), str(tmp_path / "report"),
                             progress=False)
    evaluation = datasets.load_from_disk(str(prepared / "eval"))
    truth, charge = np.log10(evaluation["energy"]), direct_log10_charge(evaluation)
    folds = cross_validation_folds(len(evaluation))
    baseline = np.empty(len(evaluation))
    for fold in np.unique(folds):
        slope, intercept = np.polyfit(charge[folds != fold], truth[folds != fold], 1)  # never its own events
        baseline[folds == fold] = intercept + slope * charge[folds == fold]
    assert metrics["regression"]["log10:energy"]["overall"]["baseline"]["resolution"] == pytest.approx(
        half_width(baseline - truth), rel=1e-4)
    assert "5-fold cross-validation" in metrics["baseline"]["fitted_on"]


def pairwise_auc(labels, scores) -> float:
    positives, negatives = scores[labels], scores[~labels]
    return ((positives[:, None] > negatives).sum() + 0.5 * (positives[:, None] == negatives).sum()) / (
        len(positives) * len(negatives))


def test_classification_metrics_equal_a_direct_computation(prepared, tmp_path):
    save_model(tmp_path / "model", **CLASSIFICATION)
    metrics = evaluate_model(str(tmp_path / "model"), str(prepared / "eval"), str(tmp_path / "report"),
                             batch_size=64, progress=False, train_dataset=str(prepared / "train"))
    evaluation, train = datasets.load_from_disk(str(prepared / "eval")), datasets.load_from_disk(str(prepared / "train"))
    # An untrained model's scores differ by tiny amounts: the same batches as evaluate's, and float64 softmax, or
    # rounding would reorder them.
    logits = predict_sequence_logits(load_sequence_model(str(tmp_path / "model")), evaluation, batch_size=64,
                                     progress=False)
    probability = torch.softmax(torch.tensor(logits, dtype=torch.float64), dim=-1).numpy()
    is_track = np.asarray(evaluation["is_track"])
    predicted = probability.argmax(axis=1)
    report = metrics["classification"]
    assert report["classes"] == ["False", "True"]
    assert report["model"]["accuracy"] == pytest.approx(np.mean(predicted == is_track))
    assert report["model"]["roc_auc"] == pytest.approx(pairwise_auc(is_track, probability[:, 1]), rel=1e-5)
    expected = [[np.sum((is_track == t) & (predicted == p)) for p in (0, 1)] for t in (False, True)]
    assert report["model"]["confusion_matrix"] == expected
    # The majority class of the training events, guessed for every event.
    majority = bool(np.mean(train["is_track"]) > 0.5)
    assert report["majority"]["class"] == str(majority)
    assert report["majority"]["accuracy"] == pytest.approx(np.mean(is_track == majority))
    assert report["majority"]["roc_auc"] == 0.5
    for name in ["metrics.json", "roc_curve.png", "confusion_matrix.png"]:
        assert (tmp_path / "report" / name).stat().st_size > 0, name


def test_evaluate_refuses_a_dataset_without_the_label_column(prepared, tmp_path):
    save_model(tmp_path / "model", **{**CLASSIFICATION, "label_columns": ["interaction"]})
    with pytest.raises(ValueError, match="no column 'interaction' for the labels"):
        evaluate_model(str(tmp_path / "model"), str(prepared / "eval"), str(tmp_path / "report"), progress=False)
    assert not (tmp_path / "report").exists()
    # Nor is it taken for a direction model by `polarbert predict`.
    with pytest.raises(ValueError, match="holds a PolarBertForSequenceClassification checkpoint, not a direction "
                                         "model: its direction head was never trained"):
        load_direction_model(str(tmp_path / "model"))
