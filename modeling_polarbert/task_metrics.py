"""The metrics of every task, in one place: what Trainer's `compute_metrics` reports during training (masked-DOM
pretraining, direction, the event-level regression and classification tasks) and the summaries `polarbert evaluate`
builds its report from. In numpy, but for `preprocess_pretraining_logits`, which reduces each evaluation batch on the
device: the opening-angle summary, the residual's bias and resolution, accuracy, ROC curve and AUC, confusion matrix,
class probabilities."""

import numpy as np
import torch

from .numpy_directions import opening_angle


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


def accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """The fraction of predicted classes (or multi-label flags) equal to the truth."""
    return float(np.mean(predicted == truth))


def classification_summary(probabilities: np.ndarray, classes: np.ndarray) -> dict:
    """Accuracy, ROC AUC and confusion matrix of single-label class probabilities (N, num_classes)."""
    predicted = probabilities.argmax(axis=-1)
    return {
        "accuracy": accuracy(predicted, classes),
        "roc_auc": class_auc(probabilities, classes),
        "confusion_matrix": confusion_matrix(classes, predicted, probabilities.shape[-1]).tolist(),
    }


def angle_summary(angles: np.ndarray) -> dict:
    """The Kaggle metric (mean) and the robust figures physicists quote, in radians."""
    if len(angles) == 0:
        return {"events": 0}
    return {
        "events": int(len(angles)),
        "mean": float(np.mean(angles)),
        "median": float(np.median(angles)),
        "quantile_68": float(np.quantile(angles, 0.68)),
    }


# ---- Trainer's preprocess_logits_for_metrics + compute_metrics, per task ---------------------------------------


def preprocess_pretraining_logits(outputs, labels):
    """Reduce each eval batch to what the metrics need, per event: the summed cross-entropy and hits of its
    masked pulses, their number, and the charge prediction. Keeping the (pulses x 5,160) logits for the whole eval
    set would not fit in memory. Per event, because Trainer gathers these across processes along the first
    dimension: every rank's tensors must have the batch's shape (a per-pulse tensor differs in length between
    ranks), and the events that even batching repeats at the end of an epoch are dropped by that dimension."""
    logits, charge_prediction = outputs[0], outputs[1]
    dom_labels = labels[0] if isinstance(labels, (tuple, list)) else labels
    masked = dom_labels != -100  # (batch, seq_len)
    masked_logits = logits if logits.dim() == 2 else logits[masked]  # sparse_prediction gives masked rows only
    targets = dom_labels[masked]
    event_of_pulse = masked.nonzero()[:, 0]  # row-major, the order of the masked rows
    cross_entropy = torch.nn.functional.cross_entropy(masked_logits.float(), targets, reduction="none")
    hits = (masked_logits.argmax(dim=-1) == targets).float()
    per_event = torch.zeros(dom_labels.shape[0], device=cross_entropy.device)
    return (per_event.index_add(0, event_of_pulse, cross_entropy), per_event.index_add(0, event_of_pulse, hits),
            masked.sum(dim=1).float(), charge_prediction)


def compute_pretraining_metrics(eval_prediction) -> dict:
    cross_entropy, hits, n_masked, charge_prediction = eval_prediction.predictions
    labels = eval_prediction.label_ids
    total = float(np.sum(n_masked)) or float("nan")  # no masked pulse at all (every pulse auxiliary): undefined
    metrics = {
        "masked_dom_cross_entropy": float(np.sum(cross_entropy)) / total,
        "masked_dom_accuracy": float(np.sum(hits)) / total,
    }
    if isinstance(labels, (tuple, list)) and len(labels) > 1:  # label_names = ["labels", "total_charge"]
        metrics["charge_mse"] = float(np.mean((charge_prediction - labels[1]) ** 2))
    return metrics


def compute_direction_metrics(eval_prediction) -> dict:
    predictions = eval_prediction.predictions
    direction = predictions[0] if isinstance(predictions, (tuple, list)) else predictions
    summary = angle_summary(opening_angle(eval_prediction.label_ids, direction))
    return {
        "mean_opening_angle": summary.get("mean", float("nan")),
        "median_opening_angle": summary.get("median", float("nan")),
    }


def metric_name(spec: str) -> str:
    """A label spec as a metric-name part: 'log10:energy' -> 'log10_energy'."""
    return spec.replace(":", "_")


def compute_sequence_metrics(config):
    """Trainer's compute_metrics for `PolarBertForSequenceClassification` under `config`'s problem type:
    regression: per target bias (median residual), resolution (half 16-84 % width) and RMSE, in the target's
    units; classification: accuracy and ROC AUC (multi-label: their means over the labels)."""
    problem_type, names = config.problem_type, [config.id2label[i] for i in range(config.num_labels)]

    def compute(eval_prediction) -> dict:
        predictions = eval_prediction.predictions
        logits = np.asarray(predictions[0] if isinstance(predictions, (tuple, list)) else predictions)
        labels = np.asarray(eval_prediction.label_ids)
        metrics = {}
        if problem_type == "regression":
            labels = labels.reshape(len(logits), -1)
            for index, name in enumerate(names):
                summary = residual_summary(logits[:, index], labels[:, index])
                for key in ("bias", "resolution", "rmse"):
                    metrics[f"{metric_name(name)}_{key}"] = summary[key]
            return metrics
        probabilities = class_probabilities(logits, problem_type)
        if problem_type == "single_label_classification":
            classes = labels.reshape(-1).astype(np.int64)
            metrics["accuracy"] = accuracy(probabilities.argmax(axis=-1), classes)
            metrics["roc_auc"] = class_auc(probabilities, classes)
            return metrics
        truth = labels.astype(bool)
        metrics["accuracy"] = accuracy(probabilities > 0.5, truth)
        metrics["roc_auc"] = float(np.nanmean([class_auc(np.stack([1 - p, p], -1), t.astype(np.int64))
                                               for p, t in zip(probabilities.T, truth.T)]))
        return metrics

    return compute
