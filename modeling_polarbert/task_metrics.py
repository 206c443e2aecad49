"""Metrics of the event-level regression and classification tasks (`PolarBertForSequenceClassification`), in
numpy: the residual's bias and resolution, ROC curve and AUC, confusion matrix, class probabilities."""

import numpy as np


def resolution(residuals: np.ndarray) -> float:
    """Half the width of the central 68 % of the residuals, (q84 - q16) / 2: a Gaussian's sigma, robust to tails."""
    q16, q84 = np.quantile(np.asarray(residuals, dtype=np.float64), [0.16, 0.84])
    return float((q84 - q16) / 2)


def residual_summary(predicted: np.ndarray, true: np.ndarray) -> dict:
    """Bias (median of predicted - true), resolution (half 16-84 % width), mean residual and RMS of one target."""
    residuals = np.asarray(predicted, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    if len(residuals) == 0:
        return {"events": 0}
    return {
        "events": int(len(residuals)),
        "bias": float(np.median(residuals)),
        "resolution": resolution(residuals),
        "mean_residual": float(np.mean(residuals)),
        "rmse": float(np.sqrt(np.mean(residuals**2))),
    }


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates of every score threshold, from (0, 0) to (1, 1); tied scores move together."""
    labels, scores = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    labels, scores = labels[order], scores[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(labels)[last_of_tie]
    false_positives = (last_of_tie + 1) - true_positives
    tpr = np.r_[0.0, true_positives / max(labels.sum(), 1)]
    fpr = np.r_[0.0, false_positives / max((~labels).sum(), 1)]
    return fpr, tpr


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random negative, ties
    counting half (the Mann-Whitney U statistic from average ranks)."""
    labels, scores = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=np.float64)
    n_positive, n_negative = int(labels.sum()), int((~labels).sum())
    if n_positive == 0 or n_negative == 0:
        return float("nan")
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # Average rank (1-based) over each run of tied scores.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    u = ranks[labels].sum() - n_positive * (n_positive + 1) / 2
    return float(u / (n_positive * n_negative))


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts, rows the true class, columns the predicted one."""
    index = np.asarray(true, dtype=np.int64) * num_classes + np.asarray(predicted, dtype=np.int64)
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def class_probabilities(logits: np.ndarray, problem_type: str) -> np.ndarray:
    """Logits -> probabilities: softmax over classes (single-label) or a sigmoid per label (multi-label)."""
    logits = np.asarray(logits, dtype=np.float64)
    if problem_type == "multi_label_classification":
        return 1.0 / (1.0 + np.exp(-logits))
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def class_auc(probabilities: np.ndarray, classes: np.ndarray) -> float:
    """ROC AUC of single-label predictions: of class 1's probability for two classes, else the mean of the
    one-vs-rest AUCs over the classes present."""
    num_classes = probabilities.shape[-1]
    if num_classes == 2:
        return roc_auc(classes == 1, probabilities[:, 1])
    aucs = [roc_auc(classes == k, probabilities[:, k]) for k in range(num_classes)]
    aucs = [auc for auc in aucs if np.isfinite(auc)]
    return float(np.mean(aucs)) if aucs else float("nan")
