"""`polarbert evaluate` of an event-level regression or classification model (`PolarBertForSequenceClassification`),
each beside the simplest honest baseline on the same events, in every table and plot:

- regression (`problem_type="regression"`): per target, bias (median of predicted - true) and resolution (HALF the
  width of the central 68 % of the residuals, (q84 - q16) / 2, a Gaussian's sigma), overall and in bins of the true
  value, and a predicted-vs-true 2-D histogram; beside a least-squares straight line of the target on log10 of the
  event's total charge (all pulses);
- classification: accuracy, ROC AUC, confusion matrix and ROC curve, beside the majority class.

The baselines are fitted on the training events when `train_dataset` is given, else by 5-fold cross-validation on
the evaluation events (each event predicted by a fit on the other four folds); metrics.json says which.
"""

import json
from pathlib import Path

import numpy as np

from .labels import check_label_columns, encode_labels, source_columns, table_column_numpy
from .loading import load_prepared_dataset
from .prediction import load_sequence_model, predict_sequence_logits
from .pulse_dataset import as_pulse_dataset, log10_total_charge
from .task_metrics import class_probabilities, classification_summary, residual_summary, roc_auc, roc_curve

BASELINE_FOLDS = 5
TRUE_VALUE_BINS = 10


def dataset_log10_total_charge(dataset, chunk_events: int = 20_000) -> np.ndarray:
    """(N,) log10 of the summed charge of every pulse of each event, read chunk by chunk from the Arrow columns."""
    events = as_pulse_dataset(dataset)
    result = np.empty(len(events), dtype=np.float64)
    for start in range(0, len(events), chunk_events):
        stop = min(start + chunk_events, len(events))
        result[start:stop] = log10_total_charge(events.gather(np.arange(start, stop)))
    return result


def cross_validation_folds(n_events: int, folds: int = BASELINE_FOLDS, seed: int = 0) -> np.ndarray:
    """(N,) fold index of each event, a seeded random partition into `folds` near-equal parts."""
    return np.random.default_rng(seed).permutation(n_events) % folds


def fit_and_predict(fit, predict, x_eval, y_eval, train: tuple | None):
    """Baseline predictions for the evaluation events: fitted on `train` = (x, y) if given, else each fold's
    events predicted by a fit on the other folds."""
    if train is not None:
        return predict(fit(*train), x_eval)
    folds = cross_validation_folds(len(x_eval))
    predictions = None
    for fold in range(BASELINE_FOLDS):
        held_out = folds == fold
        if not held_out.any():
            continue
        fold_predictions = predict(fit(x_eval[~held_out], y_eval[~held_out]), x_eval[held_out])
        if predictions is None:
            predictions = np.empty((len(x_eval), *fold_predictions.shape[1:]), dtype=fold_predictions.dtype)
        predictions[held_out] = fold_predictions
    return predictions


def fit_line(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares (2, num_targets) intercept and slope of each target column of y against x."""
    design = np.stack([np.ones_like(x), x], axis=-1)
    return np.linalg.lstsq(design, y, rcond=None)[0]


def predict_line(coefficients: np.ndarray, x: np.ndarray) -> np.ndarray:
    return coefficients[0] + x[:, None] * coefficients[1]


def fit_majority(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The most frequent value of each label column of y (ties: the lowest); x is not used."""
    return np.array([np.bincount(column).argmax() for column in y.astype(np.int64).T])


def predict_majority(majority: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.broadcast_to(majority, (len(x), len(majority))).copy()


def regression_report(predicted: np.ndarray, truth: np.ndarray, baseline: np.ndarray, names: list[str]) -> dict:
    """Per target: bias and resolution of the model and the baseline, overall and in bins of the true value."""
    report = {}
    for index, name in enumerate(names):
        true = truth[:, index]
        edges = np.linspace(true.min(), true.max(), TRUE_VALUE_BINS + 1)
        which = np.clip(np.searchsorted(edges, true, side="right") - 1, 0, TRUE_VALUE_BINS - 1)
        bins = []
        for b in range(TRUE_VALUE_BINS):
            selected = which == b
            if selected.any():
                bins.append({
                    "true_low": float(edges[b]), "true_high": float(edges[b + 1]), "events": int(selected.sum()),
                    "model": residual_summary(predicted[selected, index], true[selected]),
                    "baseline": residual_summary(baseline[selected, index], true[selected]),
                })
        report[name] = {
            "overall": {"model": residual_summary(predicted[:, index], true),
                        "baseline": residual_summary(baseline[:, index], true)},
            "binned_by_true_value": bins,
        }
    return report


def classification_report(logits: np.ndarray, labels: np.ndarray, baseline: np.ndarray, config) -> dict:
    """The model's and the majority baseline's accuracy, ROC AUC and confusion matrix; multi-label: per label, as
    a two-class problem each."""
    names = [config.id2label[i] for i in range(config.num_labels)]
    probabilities = class_probabilities(logits, config.problem_type)
    if config.problem_type == "single_label_classification":
        one_hot = np.eye(config.num_labels)[baseline[:, 0]]
        majority = np.bincount(baseline[:, 0], minlength=config.num_labels).argmax()
        return {"classes": names, "model": classification_summary(probabilities, labels),
                "majority": {"class": names[majority], **classification_summary(one_hot, labels)}}
    report = {}
    for index, name in enumerate(names):
        truth = labels[:, index].astype(np.int64)
        model_probabilities = np.stack([1 - probabilities[:, index], probabilities[:, index]], axis=-1)
        report[name] = {"classes": ["False", "True"], "model": classification_summary(model_probabilities, truth),
                        "majority": {"class": str(bool(np.bincount(baseline[:, index], minlength=2).argmax())),
                                     **classification_summary(np.eye(2)[baseline[:, index]], truth)}}
    return report


def file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def plot_regression(out_dir: Path, predicted, truth, baseline, report: dict, names: list[str]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    written = []
    for index, name in enumerate(names):
        true = truth[:, index]
        limits = np.quantile(true, [0.005, 0.995])
        figure, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharex=True, sharey=True)
        for axis, values, title in [(axes[0], predicted[:, index], "PolarBERT"),
                                    (axes[1], baseline[:, index], "log10(total charge) fit")]:
            summary = report[name]["overall"]["model" if title == "PolarBERT" else "baseline"]
            axis.hist2d(true, values, bins=60, range=[limits, limits], norm=LogNorm(), cmap="viridis")
            axis.plot(limits, limits, color="red", ls="--", lw=1, label="predicted = true")
            axis.set(xlabel=f"true {name}", ylabel=f"predicted {name}",
                     title=f"{title}: bias {summary['bias']:.3g}, resolution {summary['resolution']:.3g}")
        written.append(out_dir / f"predicted_vs_true_{file_name(name)}.png")
        figure.tight_layout(), figure.savefig(written[-1], dpi=120), plt.close(figure)

        bins = report[name]["binned_by_true_value"]
        centres = [(row["true_low"] + row["true_high"]) / 2 for row in bins]
        figure, axes = plt.subplots(1, 2, figsize=(10, 4))
        for method, label, marker in [("model", "PolarBERT", "o-"), ("baseline", "log10(total charge) fit", "s--")]:
            axes[0].plot(centres, [row[method]["bias"] for row in bins], marker, label=label)
            axes[1].plot(centres, [row[method]["resolution"] for row in bins], marker, label=label)
        axes[0].axhline(0, color="grey", ls=":")
        axes[0].set(xlabel=f"true {name}", ylabel="bias (median residual)", title="Bias")
        axes[1].set(xlabel=f"true {name}", ylabel="resolution ((q84 - q16) / 2)", title="Resolution")
        axes[1].legend()
        written.append(out_dir / f"bias_resolution_vs_true_{file_name(name)}.png")
        figure.tight_layout(), figure.savefig(written[-1], dpi=120), plt.close(figure)
    return written


def plot_classification(out_dir: Path, logits, labels, report: dict, config) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probabilities = class_probabilities(logits, config.problem_type)
    names = [config.id2label[i] for i in range(config.num_labels)]
    if config.problem_type == "single_label_classification":
        positives = [1] if config.num_labels == 2 else list(range(config.num_labels))
        curves = [(f"{names[k]}" + (" vs rest" if config.num_labels > 2 else ""), labels == k, probabilities[:, k])
                  for k in positives]
        matrices = [("", report)]
    else:
        curves = [(name, labels[:, k].astype(bool), probabilities[:, k]) for k, name in enumerate(names)]
        matrices = [(f"{name}: ", report[name]) for name in names]

    written = []
    figure, axis = plt.subplots(figsize=(5, 5))
    for label, truth, scores in curves:
        fpr, tpr = roc_curve(truth, scores)
        axis.plot(fpr, tpr, lw=2, label=f"PolarBERT, {label} (AUC {roc_auc(truth, scores):.3f})")
    axis.plot([0, 1], [0, 1], color="grey", ls=":", label="majority class / random (AUC 0.5)")
    axis.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC curve")
    axis.legend(loc="lower right", fontsize=8)
    written.append(out_dir / "roc_curve.png")
    figure.tight_layout(), figure.savefig(written[-1], dpi=120), plt.close(figure)

    figure, axes = plt.subplots(1, len(matrices), figsize=(4.5 * len(matrices), 4), squeeze=False)
    for axis, (prefix, part) in zip(axes[0], matrices):
        counts = np.asarray(part["model"]["confusion_matrix"])
        fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        axis.imshow(fractions, vmin=0, vmax=1, cmap="Blues")
        for (row, column), count in np.ndenumerate(counts):
            axis.text(column, row, f"{count}\n{fractions[row, column]:.2f}", ha="center", va="center",
                      color="white" if fractions[row, column] > 0.5 else "black")
        ticks = range(len(part["classes"]))
        axis.set_xticks(ticks, part["classes"]), axis.set_yticks(ticks, part["classes"])
        axis.set(xlabel="predicted", ylabel="true",
                 title=f"{prefix}accuracy {part['model']['accuracy']:.3f} (majority {part['majority']['accuracy']:.3f})")
    written.append(out_dir / "confusion_matrix.png")
    figure.tight_layout(), figure.savefig(written[-1], dpi=120), plt.close(figure)
    return written


def format_sequence_table(metrics: dict) -> str:
    if "regression" in metrics:
        lines = ["| target | PolarBERT bias | PolarBERT resolution | charge-fit bias | charge-fit resolution |",
                 "|---|---|---|---|---|"]
        for name, part in metrics["regression"].items():
            model, baseline = part["overall"]["model"], part["overall"]["baseline"]
            lines.append(f"| {name} ({model['events']}) | {model['bias']:.4f} | {model['resolution']:.4f} | "
                         f"{baseline['bias']:.4f} | {baseline['resolution']:.4f} |")
        return "\n".join(lines)
    lines = ["| label | PolarBERT accuracy | PolarBERT ROC AUC | majority accuracy | majority ROC AUC |",
             "|---|---|---|---|---|"]
    parts = metrics["classification"]
    parts = {metrics["label_columns"][0]: parts} if "model" in parts else parts
    for name, part in parts.items():
        lines.append(f"| {name} | {part['model']['accuracy']:.4f} | {part['model']['roc_auc']:.4f} | "
                     f"{part['majority']['accuracy']:.4f} | {part['majority']['roc_auc']:.4f} |")
    return "\n".join(lines)


def evaluate_sequence_model(
    model_path: str, dataset_path: str, out_dir: str, batch_size: int = 256, max_events: int | None = None,
    all_pulses: bool = False, progress: bool = True, train_dataset: str | None = None,
) -> dict:
    """Evaluate a PolarBertForSequenceClassification folder on a prepared dataset holding its label columns, with
    the baseline of the module docstring; write metrics.json and plots."""
    model = load_sequence_model(model_path)
    config = model.config
    specs, problem_type = config.label_columns, config.problem_type
    dataset = load_prepared_dataset(dataset_path)
    if max_events is not None:
        dataset = dataset.select(range(min(max_events, len(dataset))))
    if len(dataset) == 0:
        raise ValueError(f"{dataset_path} holds no events")
    table = check_label_columns(dataset, specs, problem_type, dataset_path)
    labels = task_labels(table, config)
    logits = predict_sequence_logits(model, dataset, batch_size, all_pulses=all_pulses, progress=progress)

    train = None
    if train_dataset is not None:
        training = load_prepared_dataset(train_dataset)
        train_labels = task_labels(check_label_columns(training, specs, problem_type, train_dataset), config)
        train = (dataset_log10_total_charge(training), train_labels.reshape(len(training), -1))
    charge = dataset_log10_total_charge(dataset)
    regression = problem_type == "regression"
    baseline = fit_and_predict(fit_line if regression else fit_majority, predict_line if regression else
                               predict_majority, charge, labels.reshape(len(dataset), -1), train)
    metrics = {
        "model": str(model_path),
        "dataset": str(dataset_path),
        "task": problem_type,
        "label_columns": list(specs),
        "all_pulses": all_pulses,
        "baseline": {
            "kind": "least-squares line of each target on log10(total charge)" if regression else "majority class",
            "fitted_on": f"the {len(train[0]):,} training events of {train_dataset}" if train is not None else
            f"the evaluation events, by {BASELINE_FOLDS}-fold cross-validation",
        },
        "resolution_definition": "(q84 - q16) / 2 of predicted - true: half the central 68 % width" if regression
        else None,
    }
    names = [config.id2label[i] for i in range(config.num_labels)]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if regression:
        metrics["regression"] = regression_report(logits, labels, baseline, names)
        plots = plot_regression(out, logits, labels, baseline, metrics["regression"], names)
    else:
        metrics["classification"] = classification_report(logits, labels, baseline.astype(np.int64), config)
        plots = plot_classification(out, logits, labels, metrics["classification"], config)
    metrics = {key: value for key, value in metrics.items() if value is not None}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    metrics["plots"] = [str(path) for path in plots]
    print(format_sequence_table(metrics))
    print(f"baseline: {metrics['baseline']['kind']}, fitted on {metrics['baseline']['fitted_on']}; metrics and "
          f"plots in {out}")
    return metrics


def task_labels(table, config) -> np.ndarray:
    """The labels of every event of a label table, as the model's collator encodes them."""
    columns = {name: table_column_numpy(table, name) for name in source_columns(config.label_columns)}
    return encode_labels(columns, config, table_column_numpy(table, "event_id"))
