"""`polarbert evaluate` of a direction model (`PolarBertForDirection`): opening angles beside LineFit, the fit with
no learning, on the same events and every pulse of them, overall and by pulse count, up- vs down-going, track vs
cascade and true energy where the simulator wrote them, and the vMF uncertainty's calibration; metrics.json and PNG
plots. evaluation.py picks this or sequence_evaluation.py by the head a folder holds (tasks.py).
"""

import json
import math
from pathlib import Path

import numpy as np

from .linefit import line_fit
from .loading import load_prepared_dataset
from .numpy_directions import angles_to_unit_vector, opening_angle
from .prediction import load_direction_model, predict_directions
from .pulse_dataset import as_pulse_dataset
from .task_metrics import angle_summary

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


def evaluate_direction_model(
    model_path: str, dataset_path: str, out_dir: str, batch_size: int = 256, max_events: int | None = None,
    all_pulses: bool = False, progress: bool = True, train_dataset: str | None = None,
) -> dict:
    """Evaluate a fine-tuned direction folder on a labelled prepared dataset beside LineFit; write metrics.json and
    plots. `train_dataset` is refused: LineFit is fitted on nothing."""
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
