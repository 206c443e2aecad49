"""The numpy direction maths (modeling_polarbert.numpy_directions) against the torch functions of the modeling file:
the same names take the same arguments and give the same values."""

import inspect

import numpy as np
import torch

from modeling_polarbert import modeling_polarbert as torch_directions
from modeling_polarbert import numpy_directions


def test_the_numpy_and_torch_direction_functions_take_the_same_arguments():
    for name in ("angles_to_unit_vector", "unit_vector_to_angles", "opening_angle"):
        numpy_parameters = list(inspect.signature(getattr(numpy_directions, name)).parameters)
        torch_parameters = list(inspect.signature(getattr(torch_directions, name)).parameters)
        assert torch_parameters[:len(numpy_parameters)] == numpy_parameters, name


def test_the_numpy_and_torch_direction_functions_agree():
    rng = np.random.default_rng(0)
    azimuth, zenith = rng.uniform(0, 2 * np.pi, 100), rng.uniform(0, np.pi, 100)
    vectors = numpy_directions.angles_to_unit_vector(azimuth, zenith)
    np.testing.assert_allclose(vectors, torch_directions.angles_to_unit_vector(
        torch.from_numpy(azimuth), torch.from_numpy(zenith)).numpy(), atol=1e-12)
    back = numpy_directions.unit_vector_to_angles(3.0 * vectors)
    np.testing.assert_allclose(back, (azimuth, zenith), atol=1e-9)
    other = numpy_directions.angles_to_unit_vector(rng.uniform(0, 2 * np.pi, 100), rng.uniform(0, np.pi, 100))
    angles = numpy_directions.opening_angle(predicted=vectors, target=other)
    np.testing.assert_allclose(angles, torch_directions.opening_angle(
        torch.from_numpy(vectors), torch.from_numpy(other)).numpy(), atol=1e-5)
    assert numpy_directions.mean_opening_angle(vectors, other) == np.mean(angles)
