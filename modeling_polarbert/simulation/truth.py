"""The truth of simulated events: energies on the Kaggle spectrum, kinds, directions, vertices, muon lines and the
per-event nuisance parameters."""

from __future__ import annotations

import numpy as np

from ..numpy_directions import angles_to_unit_vector
from .config import DEFAULT_CONFIG, SimulatorConfig


def _power_law_integral(index, low, high):
    return np.log(high / low) if index == 1.0 else (high ** (1 - index) - low ** (1 - index)) / (1 - index)


def _power_law_inverse(index, low, area):
    """E such that the integral of E'^-index from low to E equals area."""
    return low * np.exp(area) if index == 1.0 else (low ** (1 - index) + area * (1 - index)) ** (1 / (1 - index))


def sample_energies(rng: np.random.Generator, n: int, config: SimulatorConfig = DEFAULT_CONFIG) -> np.ndarray:
    """Neutrino energies (GeV) on the Kaggle broken power law: E^-1.5 to 1 PeV, E^-1 above (continuous at 1 PeV)."""
    g1, g2 = config.spectral_index_low, config.spectral_index_high
    e0, eb, e1 = config.energy_min_gev, config.energy_break_gev, config.energy_max_gev
    scale_high = eb ** (g2 - g1)  # makes the two pieces meet at the break
    area_low = _power_law_integral(g1, e0, eb)
    area = rng.random(n) * (area_low + scale_high * _power_law_integral(g2, eb, e1))
    low = area < area_low
    energy = np.empty(n)
    energy[low] = _power_law_inverse(g1, e0, area[low])
    energy[~low] = _power_law_inverse(g2, eb, (area[~low] - area_low) / scale_high)
    return energy


def _isotropic_angles(rng, n):
    return rng.uniform(0.0, 2 * np.pi, n), np.arccos(rng.uniform(-1.0, 1.0, n))


def _perpendicular_basis(u):
    """Two unit vectors perpendicular to each row of u (N, 3) and to each other."""
    helper = np.where(np.abs(u[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    e1 = np.cross(u, helper)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    return e1, np.cross(u, e1)


def _muon_range_m(energy, config):
    a, b = config.muon_loss_a_gev_per_m, config.muon_loss_b_per_m
    return np.log1p(energy * b / a) / b


def _muon_energy_after(energy, distance, config):
    """Muon energy after `distance` metres of continuous losses dE/dx = -(a + b E); 0 once stopped."""
    a, b = config.muon_loss_a_gev_per_m, config.muon_loss_b_per_m
    return np.maximum((energy + a / b) * np.exp(-b * distance) - a / b, 0.0)


def sample_truth(rng, n, config):
    """Per-event truth and nuisance parameters of n candidate events, as a dict of (n,) / (n, 3) arrays."""
    energy = sample_energies(rng, n, config)
    azimuth, zenith = _isotropic_angles(rng, n)
    travel = -angles_to_unit_vector(azimuth, zenith)  # the particle moves opposite to where it came from
    is_track = rng.random(n) < config.track_fraction
    inelasticity = rng.random(n) ** 2  # mean 1/3, a rough stand-in for the DIS y distribution at TeV energies

    # Cascades: nu_e / nu_tau CC deposit (almost) all of E, NC only the hadronic part y E.
    neutral_current = rng.random(n) < config.nc_fraction_of_cascades
    cascade_energy = np.where(neutral_current, inelasticity * energy * config.hadronic_light_fraction, energy)
    # Tracks: the hadronic cascade y E at the vertex plus a muon with (1 - y) E.
    cascade_energy = np.where(is_track, inelasticity * energy * config.hadronic_light_fraction, cascade_energy)
    muon_energy = np.where(is_track, (1.0 - inelasticity) * energy, 0.0)

    growth = config.volume_growth_m_per_decade * np.maximum(np.log10(energy / 1e3), 0.0)
    vertex = _uniform_in_cylinder(rng, n, config.volume_radius_m + growth, config.volume_half_height_m + growth)
    muon_direction, muon_vertex = _sample_muon_lines(rng, travel, muon_energy, config.track_impact_radius_m + growth, config)
    vertex = np.where(is_track[:, None], muon_vertex, vertex)
    muon_range = np.where(is_track, _muon_range_m(muon_energy, config), 0.0)
    # The muon's light per metre follows its energy where it passes the detector centre.
    distance_to_centre = np.maximum(-np.sum(vertex * muon_direction, axis=1), 0.0)
    muon_energy_centre = _muon_energy_after(muon_energy, distance_to_centre, config)
    muon_light = np.exp(rng.normal(0.0, config.muon_light_spread, n)) * np.where(
        is_track, config.muon_loss_a_gev_per_m + config.muon_loss_b_per_m * muon_energy_centre, 0.0
    )  # equivalent shower GeV per metre

    spread = config.ice_nuisance_sigma
    return dict(
        azimuth=azimuth, zenith=zenith, energy=energy, is_track=is_track, vertex=vertex,
        cascade_direction=travel, muon_direction=muon_direction, cascade_energy=cascade_energy,
        muon_range=muon_range, muon_light=muon_light,
        absorption_scale=np.exp(rng.normal(0.0, spread, n)),
        scattering_scale=np.exp(rng.normal(0.0, spread, n)),
        dom_efficiency=np.clip(rng.normal(1.0, config.dom_efficiency_sigma, n), 0.5, 1.5),
        noise_rate_hz=rng.uniform(*config.noise_rate_hz, n),
        first_light_ns=rng.uniform(*config.first_light_ns, n),
    )


def _uniform_in_cylinder(rng, n, radius, half_height):
    r = radius * np.sqrt(rng.random(n))
    phi = rng.uniform(0.0, 2 * np.pi, n)
    return np.stack([r * np.cos(phi), r * np.sin(phi), rng.uniform(-half_height, half_height, n)], axis=1)


def _sample_muon_lines(rng, travel, muon_energy, impact_radius, config):
    """Muon direction (neutrino direction + kinematic angle) and start point: starting or entering tracks.

    The line crosses a disk of radius `impact_radius` (per event) around the detector centre; the vertex sits
    anywhere from `max_upstream_m` (at most the muon range) before that crossing to the detector's far side,
    so high-energy muons mostly enter from outside, as in IceCube.
    """
    n = len(travel)
    median_angle = np.deg2rad(config.muon_kinematic_angle_deg_at_1tev) * np.maximum(muon_energy / 1e3, 1e-3) ** -0.7
    angle = median_angle / np.sqrt(2 * np.log(2)) * np.sqrt(-2 * np.log1p(-rng.random(n)))  # Rayleigh, given median
    e1, e2 = _perpendicular_basis(travel)
    phi = rng.uniform(0.0, 2 * np.pi, n)[:, None]
    side = np.cos(phi) * e1 + np.sin(phi) * e2
    direction = np.cos(angle)[:, None] * travel + np.sin(angle)[:, None] * side

    d1, d2 = _perpendicular_basis(direction)
    impact = (impact_radius * np.sqrt(rng.random(n)))[:, None]
    phi = rng.uniform(0.0, 2 * np.pi, n)[:, None]
    crossing = impact * (np.cos(phi) * d1 + np.sin(phi) * d2)
    upstream = np.minimum(_muon_range_m(muon_energy, config), config.max_upstream_m)
    along = rng.uniform(-upstream, config.volume_half_height_m)[:, None]
    return direction, crossing + along * direction
