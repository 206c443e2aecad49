"""scripts/track_cascade_features.py: the one-line physics yardsticks of a track/cascade classifier."""

import json

import numpy as np
import pytest

from modeling_polarbert.linefit import line_fit_velocity
from modeling_polarbert.loading import load_prepared_dataset
from modeling_polarbert.pulse_dataset import as_pulse_dataset
from modeling_polarbert.task_metrics import roc_auc
from script_loading import load_script  # tests/ is on sys.path under pytest


def test_feature_aucs_are_those_of_the_features_computed_directly(simulated, tmp_path):
    results = load_script("track_cascade_features").main([str(simulated / "prepared"), "--out", str(tmp_path / "out")])
    dataset = load_prepared_dataset(str(simulated / "prepared"))
    is_track = np.asarray(dataset["is_track"], dtype=bool)
    pulses = as_pulse_dataset(dataset).gather(np.arange(len(dataset)))
    speed = np.linalg.norm(line_fit_velocity(pulses["sensor_id"], pulses["time"], pulses["charge"],
                                             pulses["auxiliary"], pulses["pulse_offsets"]), axis=1)
    assert results["roc_auc"]["LineFit speed"] == pytest.approx(roc_auc(is_track, speed))
    # On the simulator a track's fitted front is faster than a cascade's: the feature separates, higher = track.
    assert results["orientation"]["LineFit speed"] == "higher = track" and results["roc_auc"]["LineFit speed"] > 0.6
    charge = np.log10(np.bincount(np.repeat(np.arange(len(dataset)), np.diff(pulses["pulse_offsets"])),
                                  weights=pulses["charge"].astype(np.float64)))
    auc = roc_auc(is_track, charge)
    assert results["roc_auc"]["log10 total charge"] == pytest.approx(max(auc, 1 - auc))
    assert all(value >= 0.5 for value in results["roc_auc"].values())
    assert json.loads((tmp_path / "out" / "features.json").read_text()) == results
    assert (tmp_path / "out" / "roc_features.png").stat().st_size > 0


def test_a_dataset_without_is_track_is_refused(tmp_path):
    import datasets

    folder = tmp_path / "no_labels"
    datasets.Dataset.from_dict({"event_id": [1], "sensor_id": [[1]], "time": [[1]], "charge": [[1.0]],
                                "auxiliary": [[False]]}).save_to_disk(str(folder))
    with pytest.raises(SystemExit) as exit_info:
        load_script("track_cascade_features").main([str(folder), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and not (tmp_path / "out").exists()


def test_time_swap_changes_only_the_time_features(simulated, tmp_path):
    import torch

    from modeling_polarbert import PolarBertConfig, PolarBertFeatureExtractor, PolarBertForSequenceClassification
    from modeling_polarbert.prediction import predict_sequence_logits
    from modeling_polarbert.task_metrics import class_probabilities

    torch.manual_seed(0)
    config = PolarBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                             use_dom_positions=True, num_pulse_features=4,
                             problem_type="single_label_classification", label_columns=["is_track"],
                             id2label={0: "False", 1: "True"}, label2id={"False": 0, "True": 1})
    # Saved with its feature extractor, which owns the time-within-event column the model reads as its fourth.
    PolarBertForSequenceClassification(config).save_pretrained(tmp_path / "model")
    PolarBertFeatureExtractor(event_time_reference="charge_weighted_mean").save_pretrained(tmp_path / "model")
    model = PolarBertForSequenceClassification.from_pretrained(tmp_path / "model").eval()
    dataset = load_prepared_dataset(str(simulated / "prepared")).select(range(200))
    is_track = np.asarray(dataset["is_track"], dtype=bool)
    own = roc_auc(is_track, class_probabilities(predict_sequence_logits(model, dataset, progress=False),
                                                config.problem_type)[:, 1])
    script = load_script("track_cascade_features")
    # A batch of one event has no other event to take times from: the model's own AUC, to rounding.
    assert script.auc_with_time_of_other_events(model, dataset, is_track, batch_size=1) == pytest.approx(own, abs=1e-6)
    assert script.auc_with_time_of_other_events(model, dataset, is_track) != pytest.approx(own, abs=1e-3)
