"""Tests of modeling_polarbert.linefit: the fit on synthetic lines, conventions, degenerate events, the CLI."""

import numpy as np
import pandas as pd
import pytest

from modeling_polarbert import cli
from modeling_polarbert.geometry import load_sensor_geometry
from modeling_polarbert.linefit import FALLBACK_DIRECTION, line_fit, line_fit_velocity, linefit_kaggle_dir
from modeling_polarbert.numpy_directions import angles_to_unit_vector, opening_angle, unit_vector_to_angles
from modeling_polarbert.simulation import simulate_events, simulate_kaggle_dir


def _flatten(events):
    """[(sensor_id, time, charge, auxiliary), ...] -> flat arrays + offsets."""
    offsets = np.cumsum([0] + [len(e[0]) for e in events])
    columns = [np.concatenate([np.asarray(e[k]) for e in events]) if events else np.zeros(0) for k in range(4)]
    return (*columns, offsets)


def test_noiseless_line_recovers_direction_to_1e_3_rad():
    rng = np.random.default_rng(0)
    n_events, per_event = 20, 30
    came_from = angles_to_unit_vector(rng.uniform(0, 2 * np.pi, n_events), np.arccos(rng.uniform(-1, 1, n_events)))
    geometry = np.zeros((5160, 3))
    events = []
    for k in range(n_events):
        # Hits on the particle's path r = r0 + v t, moving along -came_from at 0.3 m/ns.
        times = np.sort(rng.uniform(0, 3000, per_event))
        sensors = np.arange(k * per_event, (k + 1) * per_event)
        geometry[sensors] = rng.normal(0, 100, 3) - 0.3 * times[:, None] * came_from[k]
        events.append((sensors, times, rng.uniform(0.2, 5, per_event), np.zeros(per_event, bool)))
    direction = line_fit(*_flatten(events), geometry=geometry)
    assert np.max(opening_angle(came_from, direction)) < 1e-3
    np.testing.assert_allclose(np.linalg.norm(direction, axis=1), 1.0)


def test_fitted_speed_is_that_of_a_track_and_slower_for_a_cascade():
    rng = np.random.default_rng(1)
    geometry = np.zeros((5160, 3))
    # A track: hits on a line at 0.3 m/ns. A cascade: light spreading from a point at 0.22 m/ns (c in ice), hit
    # on a sphere around it: no single direction of travel, so the fitted front is far slower.
    times = np.sort(rng.uniform(0, 2000, 40))
    geometry[:40] = np.array([0.0, 0.0, 0.3]) * times[:, None]
    radii = rng.uniform(20, 200, 40)
    directions = rng.normal(size=(40, 3))
    geometry[40:80] = directions / np.linalg.norm(directions, axis=1, keepdims=True) * radii[:, None]
    events = [(np.arange(40), times, np.ones(40), np.zeros(40, bool)),
              (np.arange(40, 80), radii / 0.22, np.ones(40), np.zeros(40, bool)),
              ([5], [100.0], [1.0], [False])]  # one pulse: nothing to fit
    speed = np.linalg.norm(line_fit_velocity(*_flatten(events), geometry=geometry), axis=1)
    np.testing.assert_allclose(speed[0], 0.3, rtol=1e-9)
    assert speed[1] < 0.1 and speed[2] == 0.0


def test_down_going_muon_along_a_string_gives_zenith_near_zero():
    geometry = load_sensor_geometry()
    sensors = np.arange(35 * 60, 36 * 60)  # string 36, DOM 0 (top) .. 59
    z = geometry[sensors, 2]
    times = 10_000 + (z.max() - z) / 0.2998  # light front moving down at c
    direction = line_fit(*_flatten([(sensors, times, np.ones(60), np.zeros(60, bool))]))
    _, zenith = unit_vector_to_angles(direction)
    assert zenith[0] < 1e-3


def test_simulated_bright_tracks_are_reconstructed_near_their_truth():
    """End to end: simulator direction convention and LineFit agree on clear, bright tracks."""
    pulses, meta = simulate_events(1500, seed=5)
    offsets = np.append(meta["first_pulse_index"].to_numpy(), len(pulses))
    direction = line_fit(pulses["sensor_id"], pulses["time"], pulses["charge"], pulses["auxiliary"], offsets)
    angle = opening_angle(angles_to_unit_vector(meta["azimuth"], meta["zenith"]), direction)
    bright_tracks = meta["is_track"].to_numpy() & (meta["energy"].to_numpy() > 1e4)
    assert bright_tracks.sum() >= 20
    assert np.median(angle[bright_tracks]) < 0.25
    assert angle[meta["is_track"].to_numpy()].mean() < angle[~meta["is_track"].to_numpy()].mean() - 0.3


def test_charge_weighted_least_squares_matches_a_per_event_reference():
    rng = np.random.default_rng(1)
    geometry = load_sensor_geometry()
    events = []
    for n in rng.integers(5, 60, 15):
        events.append((rng.integers(0, 5160, n), rng.uniform(0, 5000, n), rng.uniform(0.1, 10, n), rng.random(n) < 0.3))
    direction = line_fit(*_flatten(events), min_primary=4)
    for k, (sensor, t, q, aux) in enumerate(events):
        use = ~aux if (~aux).sum() >= 4 else np.ones(len(t), bool)
        w, t, r = q[use], t[use], geometry[sensor[use]]
        # weighted least squares of r = r0 + v t, solved as a 2-parameter linear system per coordinate
        design = np.stack([np.ones_like(t), t], axis=1) * np.sqrt(w)[:, None]
        v = np.linalg.lstsq(design, r * np.sqrt(w)[:, None], rcond=None)[0][1]
        np.testing.assert_allclose(direction[k], -v / np.linalg.norm(v), atol=1e-9)


def test_primary_pulses_are_used_when_an_event_has_enough():
    geometry = load_sensor_geometry()
    line = np.arange(35 * 60, 35 * 60 + 10)  # down a string: down-going
    t_line = 10_000 + (geometry[line, 2].max() - geometry[line, 2]) / 0.3
    noise = np.array([5, 1000, 2000, 3000, 4000])  # far-away auxiliary pulses, timed to pull the fit up-going
    t_noise = 10_000 + (geometry[noise, 2] - geometry[noise, 2].min()) / 0.01
    sensors, times = np.concatenate([line, noise]), np.concatenate([t_line, t_noise])
    aux = np.concatenate([np.zeros(10, bool), np.ones(5, bool)])
    charge = np.concatenate([np.ones(10), np.full(5, 50.0)])
    flat = _flatten([(sensors, times, charge, aux)])
    assert unit_vector_to_angles(line_fit(*flat))[1][0] < 1e-3
    assert unit_vector_to_angles(line_fit(*flat, min_primary=11))[1][0] > 0.1  # too few primaries: all pulses


def test_degenerate_and_empty_events_fall_back_without_nan():
    events = [
        ([10, 20, 30], [500, 500, 500], [1, 2, 3], [False] * 3),  # all at one time
        ([10], [700], [1.0], [False]),  # one pulse
        ([], [], [], []),  # no pulse at all
        ([10, 20], [0, 100], [0.0, 0.0], [False, False]),  # no charge
    ]
    direction = line_fit(*_flatten(events))
    assert np.isfinite(direction).all()
    np.testing.assert_array_equal(direction, np.tile(FALLBACK_DIRECTION, (4, 1)))


def test_bad_offsets_raise_value_error():
    sensor, time, charge, aux, offsets = _flatten([([1, 2, 3], [0, 1, 2], [1, 1, 1], [False] * 3)])
    with pytest.raises(ValueError, match="offsets"):
        line_fit(sensor, time, charge, aux, np.array([0, 2]))
    with pytest.raises(ValueError, match="one length"):
        line_fit(sensor, time[:2], charge, aux, offsets)


# ---------------------------------------------------------------------------------------------------------------
# A Kaggle-layout directory and the CLI
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("lf")
    simulate_kaggle_dir(out, n_events=300, seed=2, batch_size=120, progress=False)
    return out


def test_cli_writes_one_row_per_meta_event_and_scores(small_dir, tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    assert cli.main(["linefit", str(small_dir), "--out", str(out)]) == 0
    predictions = pd.read_csv(out)
    meta = pd.read_parquet(small_dir / "train_meta.parquet")
    assert list(predictions.columns) == ["event_id", "azimuth", "zenith"]
    np.testing.assert_array_equal(predictions["event_id"], meta["event_id"])
    assert predictions["azimuth"].between(0, 2 * np.pi).all() and predictions["zenith"].between(0, np.pi).all()
    assert "mean opening angle" in capsys.readouterr().out


def test_metrics_by_kind_are_far_from_random(small_dir):
    metrics = linefit_kaggle_dir(small_dir, verbose=False)
    assert metrics["n_events"] == 300
    assert 0.8 < metrics["mean_opening_angle"] < 1.45
    assert metrics["mean_opening_angle_tracks"] < metrics["mean_opening_angle_cascades"]


def test_test_split_is_scored_from_the_truth_file(tmp_path):
    simulate_kaggle_dir(tmp_path, n_events=60, seed=4, split="test", progress=False)
    metrics = linefit_kaggle_dir(tmp_path, split="test", verbose=False)
    assert metrics["n_events"] == 60 and "mean_opening_angle" in metrics
    (tmp_path / "test_truth.parquet").unlink()
    assert "mean_opening_angle" not in linefit_kaggle_dir(tmp_path, split="test", verbose=False)


def test_missing_batch_file_is_a_clear_error(small_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "train").mkdir()
    (broken / "train_meta.parquet").write_bytes((small_dir / "train_meta.parquet").read_bytes())
    (broken / "train" / "batch_1.parquet").write_bytes((small_dir / "train" / "batch_1.parquet").read_bytes())
    with pytest.raises(FileNotFoundError, match="batch_2.parquet"):
        linefit_kaggle_dir(broken, verbose=False)
    assert cli.main(["linefit", str(broken)]) == 2
    assert "batch_2.parquet not found" in capsys.readouterr().err


def test_missing_meta_and_mismatched_offsets_are_clear_errors(small_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="train_meta.parquet"):
        linefit_kaggle_dir(tmp_path, verbose=False)
    meta = pd.read_parquet(small_dir / "train_meta.parquet")
    meta.loc[0, "last_pulse_index"] += 1
    bad = tmp_path / "bad"
    (bad / "train").mkdir(parents=True)
    meta.to_parquet(bad / "train_meta.parquet", index=False)
    for b in meta["batch_id"].unique():
        (bad / "train" / f"batch_{b}.parquet").write_bytes((small_dir / "train" / f"batch_{b}.parquet").read_bytes())
    with pytest.raises(ValueError, match="batch_1.parquet"):
        linefit_kaggle_dir(bad, verbose=False)
