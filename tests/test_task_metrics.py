"""The metrics of task_metrics.py: the event-level ones (resolution, ROC curve and AUC, confusion matrix) against
direct, slow computations from their definitions, and the pretraining metrics that Trainer gathers per event."""

import numpy as np
import pytest
import torch
from transformers import EvalPrediction

from modeling_polarbert.task_metrics import (
    class_auc,
    class_probabilities,
    compute_pretraining_metrics,
    confusion_matrix,
    preprocess_pretraining_logits,
    resolution,
    residual_summary,
    roc_auc,
    roc_curve,
)


def pairwise_auc(labels, scores) -> float:
    """The definition: P(score of a positive > score of a negative), ties counting half, over all pairs."""
    positives, negatives = scores[labels], scores[~labels]
    greater = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return (greater + 0.5 * ties) / (len(positives) * len(negatives))


def test_roc_auc_is_the_pairwise_probability_with_ties_counting_half():
    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.3
    scores = np.round(rng.normal(size=300) + labels, 1)  # rounded: many ties, also across classes
    assert roc_auc(labels, scores) == pytest.approx(pairwise_auc(labels, scores), abs=1e-12)
    assert roc_auc(labels, labels.astype(float)) == 1.0
    assert roc_auc(labels, -labels.astype(float)) == 0.0
    assert roc_auc(labels, np.zeros(300)) == 0.5
    assert np.isnan(roc_auc(np.ones(4, bool), np.arange(4.0)))


def test_roc_curve_integrates_to_the_auc():
    rng = np.random.default_rng(1)
    labels = rng.random(500) < 0.4
    scores = np.round(rng.normal(size=500) + labels, 1)
    fpr, tpr = roc_curve(labels, scores)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    # Trapezoids: a tied group is one straight segment, which is exactly the "ties count half" rule.
    assert np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2) == pytest.approx(pairwise_auc(labels, scores), abs=1e-12)
    # Each point is the rates above a threshold, counted directly.
    threshold = np.unique(scores)[-5]
    index = np.searchsorted(-np.unique(scores)[::-1], -threshold) + 1
    assert tpr[index] == pytest.approx(np.mean(scores[labels] >= threshold))
    assert fpr[index] == pytest.approx(np.mean(scores[~labels] >= threshold))


def test_resolution_is_half_the_central_68_percent_width():
    rng = np.random.default_rng(2)
    residuals = rng.normal(0.3, 2.0, 200_000)
    assert resolution(residuals) == pytest.approx(2.0, rel=0.01)  # a Gaussian's sigma
    summary = residual_summary(residuals + 5.0, np.full(len(residuals), 5.0))
    assert summary["bias"] == pytest.approx(0.3, abs=0.02) and summary["events"] == len(residuals)
    assert summary["rmse"] == pytest.approx(np.sqrt(0.3**2 + 4.0), rel=0.01)
    # Robust: a tail of 5 % wild outliers barely moves it, while the RMS explodes.
    spoiled = residuals.copy()
    spoiled[:10_000] = 1e4
    assert resolution(spoiled) == pytest.approx(2.0, rel=0.1)


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    true = np.array([0, 0, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 2, 0, 2])
    expected = np.zeros((3, 3), int)
    for t, p in zip(true, predicted):
        expected[t, p] += 1
    assert confusion_matrix(true, predicted, 3).tolist() == expected.tolist()


def test_class_probabilities_and_auc_of_two_and_more_classes():
    logits = np.array([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0]])
    probabilities = class_probabilities(logits, "single_label_classification")
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_allclose(probabilities[0, 1], 1 / (1 + np.exp(-1.0)))
    np.testing.assert_allclose(class_probabilities(logits, "multi_label_classification"), 1 / (1 + np.exp(-logits)))
    classes = np.array([1, 0, 1])
    assert class_auc(probabilities, classes) == pytest.approx(pairwise_auc(classes == 1, probabilities[:, 1]))
    rng = np.random.default_rng(3)
    three = class_probabilities(rng.normal(size=(60, 3)), "single_label_classification")
    classes = rng.integers(0, 3, 60)
    expected = np.mean([pairwise_auc(classes == k, three[:, k]) for k in range(3)])
    assert class_auc(three, classes) == pytest.approx(expected)


def test_pretraining_metrics_count_masked_pulses_only():
    labels = torch.tensor([[3, -100, 1], [-100, 2, -100]])
    logits = torch.full((2, 3, 5), -10.0)
    logits[0, 0, 3] = 10.0  # right
    logits[0, 2, 4] = 10.0  # wrong (label 1)
    logits[1, 1, 2] = 10.0  # right
    logits[1, 0, 0] = 10.0  # unmasked: must not count
    charge = torch.tensor([1.0, 2.0])
    per_event = preprocess_pretraining_logits((logits, charge), (labels, torch.tensor([1.5, 2.0])))
    metrics = compute_pretraining_metrics(EvalPrediction(
        predictions=tuple(part.numpy() for part in per_event), label_ids=(labels.numpy(), np.array([1.5, 2.0])),
    ))
    assert metrics["masked_dom_accuracy"] == pytest.approx(2 / 3)
    assert metrics["charge_mse"] == pytest.approx(0.125)
    expected = torch.nn.functional.cross_entropy(logits[labels != -100], labels[labels != -100])
    assert metrics["masked_dom_cross_entropy"] == pytest.approx(expected.item(), rel=1e-5)


def test_pretraining_eval_outputs_are_per_event_so_processes_can_gather_them():
    # Trainer gathers eval outputs across processes along dim 0 and drops the events that even batching repeats:
    # every output must have one row per event, however many pulses each event masks.
    labels = torch.tensor([[7, 8, 9, -100], [-100, -100, -100, -100], [-100, 4, -100, -100]])
    sparse_logits = torch.randn(4, 10)  # sparse_prediction: the 4 masked pulses' rows, row-major
    cross_entropy, hits, n_masked, charge = preprocess_pretraining_logits((sparse_logits, torch.zeros(3)), labels)
    assert [tuple(part.shape) for part in (cross_entropy, hits, n_masked, charge)] == [(3,)] * 4
    assert n_masked.tolist() == [3, 0, 1]
    each = torch.nn.functional.cross_entropy(sparse_logits, labels[labels != -100], reduction="none")
    torch.testing.assert_close(cross_entropy, torch.stack([each[:3].sum(), torch.tensor(0.0), each[3]]))
