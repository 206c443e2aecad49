#!/usr/bin/env python
"""How well do one-line physics features tell tracks from cascades? The yardstick for a track/cascade classifier
beyond the majority class.

    python scripts/track_cascade_features.py data/tasks/prepared_eval --out runs/track_features \
        --models runs/tasks/is_track_pretrained_60000 runs/tasks/is_track_scratch_60000

For each event of a prepared dataset with an `is_track` column: the LineFit speed (a track's light front crosses
the detector near the speed of light; light spreading from a cascade's point fits a slower front), the
charge-weighted spatial extent of the primary pulses, and log10 of the total charge. Each feature's ROC AUC on
its own (oriented so that AUC >= 0.5), with `--models` the fine-tuned classifiers' beside them, go to
features.json and roc_features.png. For each model also its AUC when every event gets the time features of
another event (the one before it in the batch, where both have pulses): how much the classifier relies on timing.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from modeling_polarbert.collators import PolarBertSequenceClassificationCollator
from modeling_polarbert.diagnostics import with_time_of_other_events
from modeling_polarbert.geometry import load_sensor_geometry
from modeling_polarbert.linefit import line_fit_velocity
from modeling_polarbert.loading import load_prepared_dataset
from modeling_polarbert.prediction import feature_extractor_of, load_sequence_model, predict_sequence_logits
from modeling_polarbert.pulse_dataset import as_pulse_dataset
from modeling_polarbert.task_metrics import class_probabilities, roc_auc, roc_curve


def physics_features(pulses: dict) -> dict[str, np.ndarray]:
    """(N,) LineFit speed (m/ns), spatial extent (m) and log10 total charge of the events of a PulseBatch."""
    offsets = pulses["pulse_offsets"]
    n_events = len(offsets) - 1
    event = np.repeat(np.arange(n_events), np.diff(offsets))

    def per_event(values):
        return np.bincount(event, weights=values, minlength=n_events)

    charge = pulses["charge"].astype(np.float64)
    velocity = line_fit_velocity(pulses["sensor_id"], pulses["time"], charge, pulses["auxiliary"], offsets)
    weight = charge * ~pulses["auxiliary"]
    total = np.maximum(per_event(weight), 1e-12)  # an all-auxiliary event has extent 0
    xyz = load_sensor_geometry()[pulses["sensor_id"].astype(np.int64)]
    centre = np.stack([per_event(weight * xyz[:, k]) for k in range(3)], axis=1) / total[:, None]
    extent = np.sqrt(per_event(weight * ((xyz - centre[event]) ** 2).sum(axis=1)) / total)
    return {"LineFit speed": np.linalg.norm(velocity, axis=1), "spatial extent": extent,
            "log10 total charge": np.log10(per_event(charge))}  # float64: the collator's float32 would tie events


def oriented_auc(is_track: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(AUC >= 0.5, +1 or -1): the feature's AUC in the direction that separates, and that direction."""
    auc = roc_auc(is_track, scores)
    return (auc, 1.0) if auc >= 0.5 else (1.0 - auc, -1.0)


@torch.no_grad()
def auc_with_time_of_other_events(model, dataset, is_track: np.ndarray, batch_size: int = 256) -> float:
    """ROC AUC of an is_track classifier when each event's time features come from the event before it in its batch
    (the pulses keep their DOMs and charges; where only one of the two has a pulse, its own time stays)."""
    collator = PolarBertSequenceClassificationCollator(model.config, deterministic=True,
                                                       feature_extractor=feature_extractor_of(model))
    events = as_pulse_dataset(dataset)
    probabilities = []
    for start in range(0, len(dataset), batch_size):
        batch = collator(events.gather(np.arange(start, min(start + batch_size, len(dataset)))))
        features = with_time_of_other_events(batch["features"], batch["attention_mask"])
        logits = model(dom_ids=batch["dom_ids"], features=features, attention_mask=batch["attention_mask"]).logits
        probabilities.append(class_probabilities(logits.numpy(), model.config.problem_type))
    return roc_auc(is_track, np.concatenate(probabilities)[:, model.config.label2id["True"]])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a prepared dataset with an is_track column")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", nargs="*", default=[], help="fine-tuned is_track classifiers to put beside them")
    args = parser.parse_args(argv)

    dataset = load_prepared_dataset(args.dataset)
    if "is_track" not in dataset.column_names:
        parser.error(f"{args.dataset} has no is_track column")
    is_track = np.asarray(dataset.with_format("numpy")["is_track"], dtype=bool)
    pulses = as_pulse_dataset(dataset).gather(np.arange(len(dataset)))
    scores = {name: (values, *oriented_auc(is_track, values)) for name, values in physics_features(pulses).items()}
    time_swapped = {}
    for path in args.models:
        model = load_sequence_model(path, "cpu")
        if model.config.label_columns != ["is_track"]:
            parser.error(f"{path} is not an is_track classifier (label_columns {model.config.label_columns})")
        probability = class_probabilities(predict_sequence_logits(model, dataset, progress=False),
                                          model.config.problem_type)[:, model.config.label2id["True"]]
        scores[f"PolarBERT {Path(path).name}"] = (probability, roc_auc(is_track, probability), 1.0)
        time_swapped[f"PolarBERT {Path(path).name}"] = auc_with_time_of_other_events(model, dataset, is_track)

    results = {"dataset": args.dataset, "events": len(dataset), "track_fraction": float(is_track.mean()),
               "roc_auc": {name: auc for name, (_, auc, _) in scores.items()},
               "orientation": {name: "higher = track" if sign > 0 else "lower = track"
                               for name, (_, _, sign) in scores.items()},
               "roc_auc_with_the_time_of_other_events": time_swapped}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "features.json").write_text(json.dumps(results, indent=2))
    plot_roc(scores, is_track, args.out / "roc_features.png")
    print("| score | ROC AUC | orientation | ROC AUC, time of other events |\n|---|---|---|---|")
    for name, auc in results["roc_auc"].items():
        swapped = f"{time_swapped[name]:.3f}" if name in time_swapped else "-"
        print(f"| {name} | {auc:.3f} | {results['orientation'][name]} | {swapped} |")
    print(f"{len(dataset):,} events, {results['track_fraction']:.1%} tracks; table and plot in {args.out}")
    return results


def plot_roc(scores: dict, is_track: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 5))
    for name, (values, auc, sign) in scores.items():
        fpr, tpr = roc_curve(is_track, sign * values)
        axis.plot(fpr, tpr, lw=2 if name.startswith("PolarBERT") else 1.2,
                  ls="-" if name.startswith("PolarBERT") else "--", label=f"{name} (AUC {auc:.3f})")
    axis.plot([0, 1], [0, 1], color="grey", ls=":", label="majority class / random (AUC 0.5)")
    axis.set(xlabel="false-positive rate (cascades called tracks)", ylabel="true-positive rate (tracks found)",
             title="track / cascade: PolarBERT beside one-line features")
    axis.legend(loc="lower right", fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
