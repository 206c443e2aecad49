"""Direction conventions and the Kaggle metric in numpy (the torch versions live in modeling_polarbert.py, which
ships to the Hub and may import only torch and transformers; the functions of both share names and argument names).

Kaggle convention: (azimuth, zenith) name the direction the neutrino came FROM,
d = (cos(az) sin(zen), sin(az) sin(zen), cos(zen)); zenith 0 is a down-going event.
"""

import numpy as np


def angles_to_unit_vector(azimuth: np.ndarray, zenith: np.ndarray) -> np.ndarray:
    """(N,) azimuth and zenith in radians -> (N, 3) unit vectors."""
    azimuth, zenith = np.asarray(azimuth, dtype=np.float64), np.asarray(zenith, dtype=np.float64)
    sin_zenith = np.sin(zenith)
    return np.stack([np.cos(azimuth) * sin_zenith, np.sin(azimuth) * sin_zenith, np.cos(zenith)], axis=-1)


def unit_vector_to_angles(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) vectors (any length) -> azimuth in [0, 2 pi) and zenith in [0, pi]."""
    direction = np.asarray(direction, dtype=np.float64)
    direction = direction / np.linalg.norm(direction, axis=-1, keepdims=True)
    azimuth = np.mod(np.arctan2(direction[..., 1], direction[..., 0]), 2 * np.pi)
    zenith = np.arccos(np.clip(direction[..., 2], -1.0, 1.0))
    return azimuth, zenith


def opening_angle(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-event angle in radians between two (N, 3) arrays of directions (normalised here; symmetric in the two)."""
    a = np.asarray(predicted, dtype=np.float64)
    b = np.asarray(target, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.arccos(np.clip(np.sum(a * b, axis=-1), -1.0, 1.0))


def mean_opening_angle(predicted: np.ndarray, target: np.ndarray) -> float:
    """The competition metric: mean opening angle in radians (random guessing scores about pi / 2)."""
    return float(np.mean(opening_angle(predicted, target)))


def mean_opening_angle_from_angles(azimuth_true, zenith_true, azimuth_pred, zenith_pred) -> float:
    """The metric as Kaggle scores a submission: from (azimuth, zenith) pairs."""
    return mean_opening_angle(angles_to_unit_vector(azimuth_true, zenith_true), angles_to_unit_vector(azimuth_pred, zenith_pred))
