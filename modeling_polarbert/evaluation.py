"""`polarbert evaluate`: a fine-tuned model's metrics on a prepared, labelled dataset, each beside the simplest honest
baseline on the same events, in every table and plot. Writes metrics.json and PNG plots. The task comes from the
model's config:

- direction (`PolarBertForDirection`): opening angles, beside LineFit;
- regression (`PolarBertForSequenceClassification`, `problem_type="regression"`): per target, bias (median of
  predicted - true) and resolution (HALF the width of the central 68 % of the residuals, (q84 - q16) / 2, a
  Gaussian's sigma), overall and in bins of the true value, and a predicted-vs-true 2-D histogram; beside a
  least-squares straight line of the target on log10 of the event's total charge (all pulses);
- classification: accuracy, ROC AUC, confusion matrix and ROC curve, beside the majority class.

The baselines are fitted on the training events when `train_dataset` is given, else by 5-fold cross-validation on
the evaluation events (each event predicted by a fit on the other four folds); metrics.json says which.
"""

import json
import math
from pathlib import Path

import numpy as np

from .linefit import line_fit
from .loading import check_is_polarbert_folder, load_prepared_dataset
from .numpy_directions import angles_to_unit_vector, opening_angle
from .prediction import (
    SEQUENCE_CLASS,
    load_direction_model,
    load_sequence_model,
    predict_directions,
    predict_sequence_logits,
)
from .task_metrics import (
    angle_summary,
    class_probabilities,
    classification_summary,
    residual_summary,
    roc_auc,
    roc_curve,
)
from .pulse_dataset import as_pulse_dataset, log10_total_charge
from .tasks import check_label_columns, encode_labels, source_columns, table_column_numpy

RANDOM_GUESS = math.pi / 2  # mean opening angle of a random direction
PULSE_COUNT_BINS = (0, 20, 40, 60, 100, 200, 500, 1_000_000)


def breakdowns(table: dict[str, np.ndarray], model_angles: np.ndarray, linefit_angles: np.ndarray) -> dict:
    """The metrics of both methods on subsets: pulse-count bins (the energy proxy), up- vs down-going, and track vs
    cascade where the simulator's truth says which."""
    subsets = {}
    n_pulses = table["n_pulses"]
    for low, high in zip(PULSE_COUNT_BINS[:-1], PULSE_COUNT_BINS[1:]):
        subsets[f"n_pulses {low}-{high - 1}" if high < PULSE_COUNT_BINS[-1] else f"n_pulses >= {low}"] = (
            (n_pulses >= low) & (n_pulses < high)
        )
    # Zenith above pi/2: the neutrino came from below, through the Earth.
    subsets["up-going"] = table["zenith"] > math.pi / 2
    subsets["down-going"] = table["zenith"] <= math.pi / 2
    if "is_track" in table:
        subsets["track"] = table["is_track"].astype(bool)
        subsets["cascade"] = ~table["is_track"].astype(bool)
    return {
        name: {"model": angle_summary(model_angles[mask]), "linefit": angle_summary(linefit_angles[mask])}
        for name, mask in subsets.items()
        if mask.any()
    }


def kappa_calibration(kappa: np.ndarray, angles: np.ndarray, bins: int = 10) -> dict:
    """How well the vMF concentration predicts the error. For a 3-D vMF law with large kappa the angular error is
    Rayleigh-distributed with sigma = 1/sqrt(kappa), so its median is sqrt(2 ln 2 / kappa)."""
    edges = np.quantile(kappa, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, kappa, side="right") - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        selected = which == b
        if selected.any():
            median_kappa = float(np.median(kappa[selected]))
            rows.append({
                "median_kappa": median_kappa,
                "expected_median_angle": float(math.sqrt(2 * math.log(2) / median_kappa)),
                "measured_median_angle": float(np.median(angles[selected])),
                "events": int(selected.sum()),
            })
    rank_kappa, rank_angle = np.argsort(np.argsort(kappa)), np.argsort(np.argsort(angles))
    spearman = float(np.corrcoef(rank_kappa, rank_angle)[0, 1]) if len(kappa) > 1 else float("nan")
    return {"bins": rows, "spearman_kappa_vs_angle": spearman}


def energy_breakdown(table: dict[str, np.ndarray], model_angles: np.ndarray, linefit_angles: np.ndarray) -> dict:
    """Mean and median error of both methods in half-decade bins of the true neutrino energy (GeV; the simulator
    writes it, real test data has none), for all events and, with `is_track`, tracks and cascades apart."""
    log_energy = np.log10(table["energy"])
    edges = np.arange(np.floor(2 * log_energy.min()) / 2, np.ceil(2 * log_energy.max()) / 2 + 0.25, 0.5)
    kinds = {"all": np.ones(len(log_energy), bool)}
    if "is_track" in table:
        kinds.update(track=table["is_track"].astype(bool), cascade=~table["is_track"].astype(bool))
    result = {"log10_energy_edges": edges.tolist()}
    for kind, selected in kinds.items():
        rows = []
        for low, high in zip(edges[:-1], edges[1:]):
            mask = selected & (log_energy >= low) & (log_energy < high)
            if mask.sum() >= 10:  # fewer events make a mean too noisy to plot
                rows.append({"log10_energy": float((low + high) / 2), "model": angle_summary(model_angles[mask]),
                             "linefit": angle_summary(linefit_angles[mask])})
        result[kind] = rows
    return result


def plot_report(out_dir: Path, model_angles, linefit_angles, metrics: dict) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    # Linear over the whole range, and logarithmic to resolve the well-reconstructed events below 0.2 rad.
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, bins, scale in [(axes[0], np.linspace(0, math.pi, 46), "linear"),
                              (axes[1], np.geomspace(1e-3, math.pi, 46), "log")]:
        axis.hist(model_angles, bins=bins, histtype="step", lw=2, label=f"PolarBERT (mean {np.mean(model_angles):.3f})")
        axis.hist(linefit_angles, bins=bins, histtype="step", lw=2, label=f"LineFit (mean {np.mean(linefit_angles):.3f})")
        axis.axvline(RANDOM_GUESS, color="grey", ls=":", label="random guess (mean)")
        axis.set_xscale(scale)
        axis.set(xlabel="opening angle [rad]" + (", log scale" if scale == "log" else ""), ylabel="events")
    axes[0].set_title("Direction error")
    axes[1].axvline(0.2, color="black", lw=0.8, ls="--")
    axes[1].set_title("the same, log scale (dashed: 0.2 rad)")
    axes[0].legend(loc="upper right", fontsize=8)
    written.append(out_dir / "opening_angle_histogram.png")
    figure.tight_layout(), figure.savefig(written[-1], dpi=120), plt.close(figure)

    rows = [(name, parts) for name, parts in metrics["breakdowns"].items() if name.startswith("n_pulses")]
    figure, axis = plt.subplots(figsize=(8, 4))
    positions = np.arange(len(rows))
    for offset, method, label in [(-0.2, "model", "PolarBERT"), (0.2, "linefit", "LineFit")]:
        axis.bar(positions + offset, [parts[method]["mean"] for _, parts in rows], width=0.4, label=label)
    axis.axhline(RANDOM_GUESS, color="grey", ls=":", label="random guess")
    axis.set_xticks(positions, [name.replace("n_pulses ", "") for name, _ in rows], rotation=30)
    axis.set(xlabel="pulses in the event", ylabel="mean opening angle [rad]", title="Error against pulse count")
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside the axes: no bar hidden under it
    written.append(out_dir / "opening_angle_by_pulse_count.png")
    figure.tight_layout(), figure.savefig(written[-1], dpi=120), plt.close(figure)

    if "by_energy" in metrics:
        written.append(plot_error_by_energy(out_dir, metrics["by_energy"], plt))

    if "kappa_calibration" in metrics:
        calibration = metrics["kappa_calibration"]["bins"]
        figure, axis = plt.subplots(figsize=(5, 4))
        expected = [row["expected_median_angle"] for row in calibration]
        axis.plot(expected, [row["measured_median_angle"] for row in calibration], "o-", label="measured")
        limit = max(expected + [row["measured_median_angle"] for row in calibration])
        axis.plot([0, limit], [0, limit], color="grey", ls=":", label="perfect calibration")
        axis.set(xlabel="median angle expected from kappa [rad]", ylabel="measured median angle [rad]",
                 title="vMF uncertainty calibration")
        axis.legend()
        written.append(out_dir / "kappa_calibration.png")
        figure.tight_layout(), figure.savefig(written[-1], dpi=120), plt.close(figure)
    return written


def plot_error_by_energy(out_dir: Path, by_energy: dict, plt) -> Path:
    """Mean opening angle against the true neutrino energy, PolarBERT and LineFit, one panel per event kind."""
    kinds = [kind for kind in ("all", "track", "cascade") if by_energy.get(kind)]
    figure, axes = plt.subplots(1, len(kinds), figsize=(4.5 * len(kinds), 4), sharey=True, squeeze=False)
    for axis, kind in zip(axes[0], kinds):
        energy = [row["log10_energy"] for row in by_energy[kind]]
        for method, style, label in [("model", "o-", "PolarBERT"), ("linefit", "^--", "LineFit")]:
            axis.plot(energy, [row[method]["mean"] for row in by_energy[kind]], style, label=label)
        axis.axhline(RANDOM_GUESS, color="grey", ls=":", label="random guess")
        axis.set(xlabel="log10(neutrino energy / GeV)", title=f"{kind} events" if kind != "all" else "all events")
    axes[0][0].set_ylabel("mean opening angle [rad]")
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    path = out_dir / "opening_angle_by_energy.png"
    figure.tight_layout(), figure.savefig(path, dpi=120), plt.close(figure)
    return path


def format_table(metrics: dict) -> str:
    lines = ["| events | PolarBERT mean | LineFit mean | PolarBERT median | LineFit median |", "|---|---|---|---|---|"]
    for name, parts in {"all": metrics["overall"], **metrics["breakdowns"]}.items():
        model, linefit = parts["model"], parts["linefit"]
        lines.append(f"| {name} ({model['events']}) | {model['mean']:.3f} | {linefit['mean']:.3f} | "
                     f"{model['median']:.3f} | {linefit['median']:.3f} |")
    return "\n".join(lines)


def evaluate_model(
    model_path: str, dataset_path: str, out_dir: str, batch_size: int = 256, max_events: int | None = None,
    all_pulses: bool = False, progress: bool = True, train_dataset: str | None = None,
) -> dict:
    """Evaluate a fine-tuned folder on a labelled prepared dataset; write metrics.json and plots. A
    PolarBertForSequenceClassification goes to `evaluate_sequence_model` (`train_dataset`: where its baseline is
    fitted); anything else is evaluated as a direction model."""
    if SEQUENCE_CLASS in (check_is_polarbert_folder(model_path).get("architectures") or []):
        return evaluate_sequence_model(model_path, dataset_path, out_dir, batch_size, max_events, all_pulses,
                                       progress, train_dataset)
    if train_dataset is not None:
        raise ValueError("a training dataset is for a regression/classification model's baseline fit; the "
                         "direction baseline, LineFit, needs no training")
    dataset = load_prepared_dataset(dataset_path, require_labels=True)
    if max_events is not None:
        dataset = dataset.select(range(min(max_events, len(dataset))))
    if len(dataset) == 0:
        raise ValueError(f"{dataset_path} holds no events")
    model = load_direction_model(model_path)
    predictions = predict_directions(model, dataset, batch_size, all_pulses=all_pulses, progress=progress)

    columns = ["event_id", "n_pulses", "azimuth", "zenith"]
    columns += [name for name in ("is_track", "energy") if name in dataset.column_names]  # simulated truth only
    table = {name: np.asarray(dataset.with_format("numpy")[name]) for name in columns}
    truth = angles_to_unit_vector(table["azimuth"], table["zenith"])
    model_angles = opening_angle(truth, predictions["direction"])
    # LineFit on every pulse of the same events, gathered as flat arrays by the Arrow fast path.
    pulses = as_pulse_dataset(dataset).gather(np.arange(len(dataset)))
    linefit_angles = opening_angle(truth, line_fit(
        pulses["sensor_id"], pulses["time"], pulses["charge"], pulses["auxiliary"], pulses["pulse_offsets"]
    ))

    metrics = {
        "model": str(model_path),
        "dataset": str(dataset_path),
        "all_pulses": all_pulses,
        "random_guess_mean": RANDOM_GUESS,
        "overall": {"model": angle_summary(model_angles), "linefit": angle_summary(linefit_angles)},
        "breakdowns": breakdowns(table, model_angles, linefit_angles),
    }
    if "energy" in table:
        metrics["by_energy"] = energy_breakdown(table, model_angles, linefit_angles)
    if predictions["kappa"] is not None:
        metrics["kappa_calibration"] = kappa_calibration(predictions["kappa"], model_angles)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    metrics["plots"] = [str(path) for path in plot_report(out, model_angles, linefit_angles, metrics)]
    print(format_table(metrics))
    print(f"random guess: {RANDOM_GUESS:.3f} rad; metrics and plots in {out}")
    return metrics


# ----------------------------------------------------------------------------------------------------------------
# Event-level regression and classification (PolarBertForSequenceClassification)
# ----------------------------------------------------------------------------------------------------------------

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
