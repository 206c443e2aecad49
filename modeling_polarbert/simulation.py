"""A physics-based IceCube event simulator that writes the Kaggle "IceCube - Neutrinos in Deep Ice" layout.

The Kaggle data (about 100 GB) cannot be fetched everywhere, so the project makes its own: neutrino events drawn
from the competition's energy spectrum, light propagated through a depth-dependent ice model to the 5160 DOMs of
the real detector geometry, photo-electrons grouped into pulses, DOM noise, the hard-local-coincidence (HLC)
`auxiliary` flag and a trigger. What is modelled, each constant's source and what is left out are written down
in docs/simulator.md; the constants themselves live in `SimulatorConfig`.

Pipeline of one chunk of `CHUNK_EVENTS` candidate events (all vectorised numpy, no loop per photon or pulse):

    sample truth -> (event, DOM) pairs near the light -> expected photo-electrons -> Poisson
    -> photon arrival times (direct + Pandel scattering delay + PMT jitter) -> pulses (time bins, charge)
    -> absolute times + DOM noise over the readout window -> HLC flags -> trigger (>= 8 HLC pulses)

Reproducibility: chunk k draws from `SeedSequence([seed, split, k])`, and chunk boundaries do not depend on the
batch size or the number of processes, so the same seed gives the same events whatever `--batch-size` or
`--num-proc`. Candidate event ids are `chunk * CHUNK_EVENTS + position`; events that fail the trigger are not
written and their ids stay as gaps, as in the Kaggle files.

Direction convention (Kaggle): (azimuth, zenith) name the direction the neutrino CAME FROM, d; the particle
travels along -d.

Public functions: `simulate_events` (in memory), `simulate_kaggle_dir` (files), `hlc_auxiliary` (the HLC rule
on flat pulse arrays).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from .geometry import DOMS_PER_STRING, NUM_DOMS, SENSOR_GEOMETRY_PATH, load_sensor_geometry
from .numpy_directions import angles_to_unit_vector

# Candidate events per RNG chunk. Fixed (not derived from batch size or process count) so that files are
# reproducible whatever the batching; 512 keeps the (event, DOM) pair arrays of a chunk at a few MB.
CHUNK_EVENTS = 512
SPLITS = ("train", "test")
# Test events get ids far above any train id, so a train and a test split written into one directory never
# share an event id (Kaggle's ids are unique across its splits too).
TEST_EVENT_ID_OFFSET = 1_000_000_000
SPEED_OF_LIGHT_M_PER_NS = 0.299792458
NUM_STRINGS = NUM_DOMS // DOMS_PER_STRING
FIRST_DEEPCORE_SENSOR = 78 * DOMS_PER_STRING  # strings 79-86 (1-based) are DeepCore

PULSE_COLUMNS = ("sensor_id", "time", "charge", "auxiliary")
TRUTH_COLUMNS = ("azimuth", "zenith", "energy", "is_track", "vertex_x", "vertex_y", "vertex_z")


@dataclass(frozen=True)
class SimulatorConfig:
    """Every physical constant of the simulator, with its source (see docs/simulator.md for the references).

    Values marked "tuned" were set so that the simulator's pulse-count and auxiliary statistics land near the
    Kaggle data's (median about 60 pulses per event), not taken from a measurement.
    """

    # --- event mix and spectrum (Kaggle top-3 paper, sect. 2.1) ---
    track_fraction: float = 0.44  # nu_mu CC among generated events; ~1/3 of the *written* events are tracks
    nc_fraction_of_cascades: float = 0.3  # NC share of cascade-like events (sigma_NC / sigma_CC ~ 0.4)
    energy_min_gev: float = 1e2
    energy_break_gev: float = 1e6  # E^-1.5 from 100 GeV to 1 PeV, E^-1 above, to 100 PeV
    energy_max_gev: float = 1e8
    spectral_index_low: float = 1.5
    spectral_index_high: float = 1.0
    hadronic_light_fraction: float = 0.8  # hadronic showers give ~80 % of the light of EM showers (IceCube 2014, JINST 9 P03009)

    # --- where interactions happen (chosen: a margin of ~100 m around the instrumented volume) ---
    volume_radius_m: float = 650.0
    volume_half_height_m: float = 650.0
    track_impact_radius_m: float = 650.0  # muon lines cross a disk of this radius around the detector centre
    # Bright events are seen from far away: above 1 TeV the volume (and the muons' disk) grows by this much per
    # decade of energy, so that, as in IceCube's own simulation, many high-energy events are dim edge events.
    volume_growth_m_per_decade: float = 200.0
    max_upstream_m: float = 10000.0  # muons may start this far before the detector (entering tracks)

    # --- muons (PDG; Chirkin & Rhode 2004, ice: a = 0.24 GeV/m, b = 3.3e-4 /m) ---
    muon_loss_a_gev_per_m: float = 0.24
    muon_loss_b_per_m: float = 3.3e-4
    muon_kinematic_angle_deg_at_1tev: float = 0.7  # median nu-mu angle ~ 0.7 deg (E/TeV)^-0.7 (Learned & Mannheim 2000)
    muon_light_spread: float = 0.4  # log-normal sigma of the stochastic-loss light of a muon (chosen)

    # --- light (Cherenkov angle from n_phase = 1.32, group index 1.35: Price & Bergstrom 1997 / IceCube) ---
    cherenkov_angle_deg: float = 41.0
    group_index: float = 1.35
    photons_per_gev: float = 1.2e5  # Cherenkov photons (300-600 nm) per GeV of EM shower (IceCube 2014, JINST 9 P03009)
    dom_photon_area_m2: float = 0.0012  # tuned: 10" PMT area x QE x glass/gel transmission x this model's geometry
    cascade_anisotropy: float = 0.85  # weight of the Cherenkov-peaked part of a shower's emission profile (chosen)
    cascade_profile_width: float = 0.3  # width in cos(angle) of that peak (chosen; showers are smeared by ~20 deg)
    source_core_m: float = 3.0  # softening radius: no 1/r^2 divergence at a DOM inside the light source

    # --- ice (depth profile of IceCube's ice models: Ackermann et al. 2006; Aartsen et al. 2013, SPICE) ---
    # Effective attenuation (propagation) length sqrt(l_abs * l_eff_scat / 3) and effective scattering length,
    # in three layers: above the dust layer, the dust layer (z = -150..-50 m here), the clear ice below it.
    attenuation_m: tuple = (40.0, 12.0, 65.0)
    scattering_m: tuple = (35.0, 10.0, 60.0)
    dust_top_z_m: float = -50.0
    dust_bottom_z_m: float = -150.0
    layer_edge_m: float = 10.0  # smooth the layer edges over ~10 m
    ice_nuisance_sigma: float = 0.10  # per-event log-normal spread of absorption and scattering (~10 % systematics)
    dom_efficiency_sigma: float = 0.10  # per-event spread of the optical efficiency (IceCube's +-10 % DOM efficiency)
    deepcore_efficiency: float = 1.35  # HQE PMTs: ~35 % higher QE (Abbasi et al. 2012, Astropart. Phys. 35, 615)
    pmt_face_acceptance: float = 0.6  # share of the DOM acceptance that depends on the photon's arrival angle (chosen)

    # --- photon timing (Pandel function, AMANDA: Ahrens et al. 2004, NIM A 524, 169) ---
    pandel_tau_ns: float = 557.0
    pandel_absorption_m: float = 98.0
    pmt_jitter_ns: float = 2.0  # PMT transit-time spread (Abbasi et al. 2010, NIM A 618, 139)

    # --- pulses (Kaggle: charges are multiples of 0.025 p.e.) ---
    pulse_bin_ns: float = 20.0  # photons of one DOM within one 20 ns bin become one pulse (chosen, ~unfolding resolution)
    max_photons_per_dom: int = 16  # brighter DOMs: 16 "macro-photons" carrying the charge (bounds the cost)
    charge_step_pe: float = 0.025
    max_pulse_charge_pe: float = 3000.0  # PMT saturation: the 10" PMT leaves its linear range at a few 1000 p.e. (Abbasi et al. 2010)
    spe_sigma: float = 0.3  # single photo-electron charge: Gaussian(1, 0.3) ...
    spe_low_fraction: float = 0.15  # ... plus an exponential low-charge part (IceCube SPE template, 2020 JINST 15 P06032)
    spe_low_mean_pe: float = 0.25

    # --- DOM noise and readout (Aartsen et al. 2017, JINST 12 P03012: ~560 Hz standard, ~780 Hz HQE DOMs) ---
    noise_rate_hz: tuple = (500.0, 650.0)  # per-event uniform range for standard DOMs
    deepcore_noise_factor: float = 1.39
    pre_trigger_ns: float = 4000.0  # readout window: 4 us before the first light ... (IceCube SMT8 readout -4/+6 us)
    post_trigger_ns: float = 6000.0  # ... to 6 us after the last
    first_light_ns: tuple = (9500.0, 10500.0)  # absolute time of the first signal photon (Kaggle-like ~10,000 ns)

    # --- HLC and trigger (IceCube instrumentation paper: HLC = neighbour within 2 DOMs, 1 us; SMT8) ---
    hlc_window_ns: float = 1000.0
    hlc_max_dom_step: int = 2
    trigger_min_hlc_pulses: int = 8
    trigger_min_hlc_doms: int = 1  # also demand this many distinct DOMs with HLC pulses (1: the pulse count alone decides)
    min_expected_pe: float = 0.03  # DOMs expected to see fewer photo-electrons than this are skipped (speed)


DEFAULT_CONFIG = SimulatorConfig()


# ----------------------------------------------------------------------------------------------------------------
# Detector and ice tables (computed once per process)
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Detector:
    positions: np.ndarray  # (5160, 3) metres
    string_xy: np.ndarray  # (86, 2) mean x, y of each string
    efficiency: np.ndarray  # (5160,) relative quantum efficiency
    noise_weight: np.ndarray  # (5160,) relative dark rate
    dom_in_string: np.ndarray  # (5160,) 0..59
    z_grid: np.ndarray  # depth grid of the ice tables
    att_integral: np.ndarray  # int 1/attenuation dz on z_grid
    inv_attenuation_dom: np.ndarray  # (5160,) 1 / attenuation length at each DOM
    att_integral_dom: np.ndarray  # (5160,)
    inv_scattering_dom: np.ndarray  # (5160,)
    scat_integral: np.ndarray
    scat_integral_dom: np.ndarray


def _layered_length(z: np.ndarray, values: tuple, config: SimulatorConfig) -> np.ndarray:
    """A length (m) that takes values[0] above the dust layer, values[1] inside it, values[2] below, smoothly."""
    above, dust, below = values
    w = config.layer_edge_m
    in_or_below_top = 1.0 / (1.0 + np.exp((z - config.dust_top_z_m) / w))  # 1 below the layer's top edge
    below_bottom = 1.0 / (1.0 + np.exp((z - config.dust_bottom_z_m) / w))  # 1 below the layer's bottom edge
    return above + (dust - above) * in_or_below_top + (below - dust) * below_bottom


@lru_cache(maxsize=4)
def _detector(config: SimulatorConfig = DEFAULT_CONFIG) -> _Detector:
    positions = np.asarray(load_sensor_geometry(), dtype=np.float64)
    sensor = np.arange(NUM_DOMS)
    deepcore = sensor >= FIRST_DEEPCORE_SENSOR
    z_grid = np.arange(-1500.0, 1500.0 + 0.5, 1.0)

    def integral(values):
        inverse = 1.0 / _layered_length(z_grid, values, config)
        steps = 0.5 * (inverse[1:] + inverse[:-1]) * np.diff(z_grid)
        return np.concatenate([[0.0], np.cumsum(steps)])

    att_integral, scat_integral = integral(config.attenuation_m), integral(config.scattering_m)
    z = positions[:, 2]
    return _Detector(
        positions=positions,
        string_xy=positions[:, :2].reshape(NUM_STRINGS, DOMS_PER_STRING, 2).mean(axis=1),
        efficiency=np.where(deepcore, config.deepcore_efficiency, 1.0),
        noise_weight=np.where(deepcore, config.deepcore_noise_factor, 1.0),
        dom_in_string=sensor % DOMS_PER_STRING,
        z_grid=z_grid,
        att_integral=att_integral,
        inv_attenuation_dom=1.0 / _layered_length(z, config.attenuation_m, config),
        att_integral_dom=np.interp(z, z_grid, att_integral),
        inv_scattering_dom=1.0 / _layered_length(z, config.scattering_m, config),
        scat_integral=scat_integral,
        scat_integral_dom=np.interp(z, z_grid, scat_integral),
    )


@lru_cache(maxsize=4)
def _detector_float32(config: SimulatorConfig = DEFAULT_CONFIG) -> _Detector:
    """The detector tables in float32: the (event, DOM) pair arithmetic runs ~1.5x faster, and float32's
    7 digits are ample for metres and nanoseconds at these scales."""
    detector = _detector(config)
    return _Detector(**{name: value.astype(np.float32) if value.dtype == np.float64 else value
                        for name, value in vars(detector).items()})


def _float32_truth(truth: dict) -> dict:
    return {name: value.astype(np.float32) if value.dtype == np.float64 else value for name, value in truth.items()}


def _path_mean_inverse(integral_src, integral_dom, inverse_dom, dz, flat):
    """Mean of 1/length along a straight path rising by dz = z_dom - z_src: (F(z_dom) - F(z_src)) / dz.

    Near-horizontal paths (`flat`: |dz| < 1 m) take the value at the DOM, avoiding 0/0.
    """
    return np.where(flat, inverse_dom, (integral_dom - integral_src) / np.where(flat, 1.0, dz))


# ----------------------------------------------------------------------------------------------------------------
# Truth: energies, kinds, directions, vertices, nuisance parameters
# ----------------------------------------------------------------------------------------------------------------


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


def _sample_truth(rng, n, config):
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


# ----------------------------------------------------------------------------------------------------------------
# Expected photo-electrons per (event, DOM) pair
# ----------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _cascade_profile_mean(config: SimulatorConfig) -> float:
    cos_grid = np.linspace(-1.0, 1.0, 20001)
    return float(np.mean(_cherenkov_peak(cos_grid, config)))


def _cherenkov_peak(cos_angle, config):
    cos_c = np.cos(np.deg2rad(config.cherenkov_angle_deg))
    return np.exp(-0.5 * ((cos_angle - cos_c) / config.cascade_profile_width) ** 2)


def _emission_profile(cos_angle, config):
    """Angular emission of a shower, mean 1 over the sphere, peaked at the Cherenkov angle."""
    a = config.cascade_anisotropy
    return (1.0 - a) + a * _cherenkov_peak(cos_angle, config) / _cascade_profile_mean(config)


def _dom_acceptance(photon_z, directness, config):
    """Relative DOM acceptance (mean 1): the PMT looks down, so photons moving upward (photon_z > 0) count more.

    `directness` in [0, 1] says how much the photon still remembers its direction; scattered light arrives from
    all sides, and then the acceptance is its mean.
    """
    k = config.pmt_face_acceptance
    facing = (1.0 - k) + k * (0.5 * (1.0 + photon_z)) ** 2
    mean = (1.0 - k) + k / 3.0
    return 1.0 + directness * (facing / mean - 1.0)


def _geometric_factor(r_eff, inv_scat, line, config):
    """Share of the source's photons per m^2 at distance r_eff, before absorption and angular factors.

    Straight-line spreading (1 / (4 pi r^2) around a shower, 1 / (2 pi rho) around a muon's Cherenkov cone),
    raised by diffusion: beyond a scattering length, scattered light piles up around the source.
    """
    if line:
        return np.sqrt(1.0 + r_eff * inv_scat) / (2 * np.pi * r_eff * np.sin(np.deg2rad(config.cherenkov_angle_deg)))
    return (1.0 + r_eff * inv_scat) / (4 * np.pi * r_eff**2)


def _light_reach(photons, truth, line, config, efficiency):
    """(E,) distance beyond which a DOM expects fewer than `min_expected_pe` from a source of `photons`.

    An upper bound of the light model: the clearest ice layer (with the event's nuisance), the peak of the
    emission profile and the largest DOM acceptance and efficiency. Clear ice gives the most light at any
    distance (the dust's extra diffusion never makes up for its absorption), so the DOMs left out expect less
    than `min_expected_pe` each. Solved by bisection (the bound falls monotonically with distance).
    """
    clearest = int(np.argmax(config.attenuation_m))
    lam_att = config.attenuation_m[clearest] * truth["absorption_scale"]
    inv_scat = 1.0 / (config.scattering_m[clearest] * truth["scattering_scale"])
    peak = 1.0 if line else _emission_profile(np.cos(np.deg2rad(config.cherenkov_angle_deg)), config)
    k = config.pmt_face_acceptance
    best_dom = config.dom_photon_area_m2 * efficiency * truth["dom_efficiency"] / ((1.0 - k) + k / 3.0)
    scale = photons * best_dom * peak

    def bright_enough(r):
        r_eff = np.sqrt(r**2 + config.source_core_m**2)
        return scale * _geometric_factor(r_eff, inv_scat, line, config) * np.exp(-r / lam_att) >= config.min_expected_pe

    low, high = np.zeros(len(photons)), np.full(len(photons), 4000.0)
    for _ in range(14):  # 4000 m / 2^14 = 0.25 m; `high` is kept, so the reach errs on the far side
        middle = 0.5 * (low + high)
        bright = bright_enough(middle)
        low, high = np.where(bright, middle, low), np.where(bright, high, middle)
    return np.where(bright_enough(np.zeros(len(photons))), high, -1.0)  # -1: no DOM at all


@lru_cache(maxsize=1)
def _string_sorted_depth_key() -> np.ndarray:
    """(5160,) key string * 10^4 - z, ascending in sensor_id: DOM 0 of each string is its top one."""
    z = load_sensor_geometry()[:, 2]
    key = np.arange(NUM_DOMS) // DOMS_PER_STRING * 1e4 - z
    if np.any(np.diff(key) <= 0):
        raise ValueError("sensor geometry: DOMs of a string must be ordered from top to bottom")
    return key


def _muon_z_interval(to_string, vertex_z, u, reach):
    """(E, 86) range of z on each vertical string within `reach` (E, 86) of the muon's line (empty: low > high).

    The squared distance from the point (string x, y, z) to the line is a quadratic a z^2 + b z + c.
    """
    wx, wy = -to_string[..., 0], -to_string[..., 1]  # vertex minus string, horizontal part
    ux, uy, uz = (u[:, None, k] for k in range(3))
    # w(z) = (-wx, -wy, z - vz) ; d^2 = |w|^2 - (w.u)^2
    p = -(wx * ux + wy * uy) - vertex_z[:, None] * uz  # w.u = p + z uz
    q = wx * wx + wy * wy  # horizontal |w|^2
    a = 1.0 - uz * uz
    b = -2.0 * vertex_z[:, None] - 2.0 * p * uz
    c = q + vertex_z[:, None] ** 2 - p * p - reach**2
    vertical = a < 1e-9
    disc = b * b - 4 * a * c
    root = np.sqrt(np.maximum(disc, 0.0))
    safe_a = np.where(vertical, 1.0, a)
    low = np.where(vertical, np.where(c <= 0, -np.inf, np.inf), (-b - root) / (2 * safe_a))
    high = np.where(vertical, np.where(c <= 0, np.inf, -np.inf), (-b + root) / (2 * safe_a))
    empty = (~vertical) & (disc < 0)
    return np.where(empty, np.inf, low), np.where(empty, -np.inf, high)


def _candidate_pairs(truth, config, detector):
    """(event, DOM) pairs whose DOM can expect at least `min_expected_pe` (by the bound of `_light_reach`).

    Per (event, string), the DOMs in the z range within reach of the shower or of the muon's line (the union
    of the two ranges is covered by one interval). Returns (event, dom), sorted by event then DOM.
    """
    vertex = truth["vertex"]
    to_string = detector.string_xy[None, :, :] - vertex[:, None, :2]  # (E, 86, 2)
    horizontal = np.hypot(to_string[..., 0], to_string[..., 1])
    deepcore_string = np.arange(NUM_STRINGS) * DOMS_PER_STRING >= FIRST_DEEPCORE_SENSOR

    def reach_per_string(photons, truth, line):  # (E, 86): DeepCore's better DOMs see farther
        standard, deepcore = (_light_reach(photons, truth, line, config, eff) for eff in (1.0, config.deepcore_efficiency))
        return np.where(deepcore_string, deepcore[:, None], standard[:, None])

    reach = reach_per_string(truth["cascade_energy"] * config.photons_per_gev, truth, False)
    half = np.sqrt(np.maximum(reach**2 - horizontal**2, 0.0))
    inside = horizontal <= reach
    low = np.where(inside, vertex[:, None, 2] - half, np.inf)
    high = np.where(inside, vertex[:, None, 2] + half, -np.inf)
    tracks = np.flatnonzero(truth["is_track"])
    muon_reach = reach_per_string(truth["muon_light"][tracks] * config.photons_per_gev, _subset(truth, tracks), True)
    muon_low, muon_high = _muon_z_interval(to_string[tracks], vertex[tracks, 2], truth["muon_direction"][tracks], muon_reach)
    low[tracks] = np.minimum(low[tracks], muon_low)
    high[tracks] = np.maximum(high[tracks], muon_high)

    event, string = np.nonzero(low <= high)
    key = _string_sorted_depth_key()
    first = np.searchsorted(key, string * 1e4 - high[event, string], side="left")
    stop = np.searchsorted(key, string * 1e4 - low[event, string], side="right")
    count = stop - first
    pair_event = np.repeat(event, count)
    within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return pair_event, np.repeat(first, count) + within


def _subset(truth, index):
    return {key: value[index] for key, value in truth.items()}


def _interp_uniform(z, grid_start, table):
    """Linear interpolation of `table` on the 1 m grid starting at grid_start (faster than np.interp)."""
    position = np.clip(z - grid_start, 0.0, len(table) - 1.001)
    index = position.astype(np.int64)
    fraction = position - index
    return table[index] * (1.0 - fraction) + table[index + 1] * fraction


def _ice_integrals(z, detector):
    """The depth integrals of 1/attenuation and 1/scattering length at heights z."""
    z0 = detector.z_grid[0]
    return _interp_uniform(z, z0, detector.att_integral), _interp_uniform(z, z0, detector.scat_integral)


def _expected_pe(pe_scale, distance, r_eff, cos_angle, dz, integrals_src, event, dom, line, config, detector, truth):
    """Mean photo-electrons at (event, DOM) pairs, and the mean 1/scattering length along each path.

    pe_scale: (P,) photons of the source (per metre for a muon) x DOM area x the event's DOM efficiency;
    distance (r_eff: softened), cos_angle (to the particle's travel direction) and dz (the path's rise, DOM
    minus source) describe the path, whose start has the ice integrals `integrals_src` (see `_ice_integrals`).
    """
    flat = np.abs(dz) < 1.0
    inv_att = _path_mean_inverse(
        integrals_src[0], detector.att_integral_dom[dom], detector.inv_attenuation_dom[dom], dz, flat
    ) * truth["inverse_absorption_scale"][event]
    inv_scat = _path_mean_inverse(
        integrals_src[1], detector.scat_integral_dom[dom], detector.inv_scattering_dom[dom], dz, flat
    ) * truth["inverse_scattering_scale"][event]
    photon_z = dz / r_eff
    directness = np.exp(-distance * inv_scat)  # how much of the light still goes straight
    emission = _emission_profile(cos_angle, config)
    if line:  # DOMs on a muon's Cherenkov cone see the full cone; off-cone DOMs (beyond the track's ends) less
        emission = emission / _emission_profile(np.cos(np.deg2rad(config.cherenkov_angle_deg)), config)
    profile = 1.0 + directness * (emission - 1.0)  # scattered light forgets the emission angle
    acceptance = _dom_acceptance(photon_z, directness, config)
    geometric = _geometric_factor(r_eff, inv_scat, line, config)
    light = pe_scale * detector.efficiency[dom] * profile * acceptance * geometric
    return light * np.exp(-distance * inv_att), inv_scat


def _shower_light(event, dom, truth, config, detector):
    """A shower as a point source at the vertex: (mean p.e., direct arrival time after the vertex time, path
    length, mean 1/scattering length) per (event, DOM) pair."""
    pos = detector.positions
    vertex, u = truth["vertex"], truth["cascade_direction"]
    dx, dy, dz = (pos[dom, k] - vertex[event, k] for k in range(3))
    distance = np.sqrt(dx * dx + dy * dy + dz * dz)
    r_eff = np.sqrt(distance**2 + config.source_core_m**2)
    cos_angle = (dx * u[event, 0] + dy * u[event, 1] + dz * u[event, 2]) / r_eff
    integrals = tuple(value[event] for value in _ice_integrals(vertex[:, 2], detector))  # per event, then per pair
    mean_pe, inv_scat = _expected_pe(
        truth["shower_pe_scale"][event], distance, r_eff, cos_angle, dz, integrals, event, dom, False, config,
        detector, truth,
    )
    return mean_pe, distance * config.group_index / SPEED_OF_LIGHT_M_PER_NS, distance, inv_scat


def _muon_light(event, dom, truth, config, detector):
    """A muon as a line source from the vertex over its range, seen on its Cherenkov cone; same outputs as
    `_shower_light`."""
    pos = detector.positions
    vertex, u = truth["vertex"], truth["muon_direction"]
    ux, uy, uz = (u[event, k] for k in range(3))
    wx, wy, wz = (pos[dom, k] - vertex[event, k] for k in range(3))
    along = wx * ux + wy * uy + wz * uz
    rho = np.sqrt(np.maximum(wx * wx + wy * wy + wz * wz - along**2, 0.0))
    # Light reaching the DOM left the muon at (closest approach - rho / tan theta_c), clamped to the muon's
    # path [0, range]: beyond its ends the DOM sees only off-cone light.
    emit = np.clip(along - rho / np.tan(np.deg2rad(config.cherenkov_angle_deg)), 0.0, truth["muon_range"][event])
    dx, dy, dz = wx - emit * ux, wy - emit * uy, wz - emit * uz
    distance = np.sqrt(dx * dx + dy * dy + dz * dz)
    r_eff = np.sqrt(distance**2 + config.source_core_m**2)
    cos_angle = (dx * ux + dy * uy + dz * uz) / r_eff
    z_emit = vertex[event, 2] + emit * uz
    mean_pe, inv_scat = _expected_pe(
        truth["muon_pe_scale"][event], distance, r_eff, cos_angle, dz, _ice_integrals(z_emit, detector), event, dom,
        True, config, detector, truth,
    )
    # The muon moves at c from the vertex to the emission point; the photon then travels at c / n_group.
    arrival = (emit + distance * config.group_index) / SPEED_OF_LIGHT_M_PER_NS
    return mean_pe, arrival, distance, inv_scat


# ----------------------------------------------------------------------------------------------------------------
# Photons -> pulses
# ----------------------------------------------------------------------------------------------------------------


def _poisson(rng, mean):
    """Poisson draws of photo-electron counts, exact, and several times faster than rng.poisson when (as here)
    most means are tiny: those go by inverse-CDF sampling, which touches each value beyond the first draw only
    while its uniform number lies above the running CDF."""
    count = np.zeros(len(mean), dtype=np.int64)
    large = mean > 1.0
    count[large] = rng.poisson(mean[large])
    small = np.flatnonzero(~large)
    mu = mean[small].astype(np.float64)
    uniform = rng.random(len(small))
    term = np.exp(-mu)  # P(N = k), k = 0 first
    cdf = term.copy()
    alive = np.arange(len(small))
    for k in range(1, 60):  # mu <= 1: P(N >= 60) is far below float precision
        alive = alive[uniform[alive] > cdf[alive]]
        if len(alive) == 0:
            break
        count[small[alive]] += 1
        term[alive] *= mu[alive] / k
        cdf[alive] += term[alive]
    return count


def _photon_times_and_charges(rng, n_pe, arrival, distance, inv_scat, config):
    """Arrival time and charge of every (macro-)photon of the hit DOMs; returns (hit index, time, charge).

    A DOM with more than `max_photons_per_dom` p.e. gets that many macro-photons sharing its charge, so the
    cost stays bounded for PeV events while the charge is exact.
    """
    n_macro = np.minimum(n_pe, config.max_photons_per_dom)
    hit = np.repeat(np.arange(len(n_pe)), n_macro)
    weight = (n_pe / n_macro)[hit]
    # Pandel: scattering delay ~ Gamma(shape = d / lambda_scat, scale = 1 / (1/tau + c_ice / lambda_abs)).
    c_ice = SPEED_OF_LIGHT_M_PER_NS / config.group_index
    scale_ns = 1.0 / (1.0 / config.pandel_tau_ns + c_ice / config.pandel_absorption_m)
    # The Pandel length (33 m in AMANDA's ice) is taken as the local effective scattering length of the profile.
    shape = (distance * inv_scat)[hit]
    delay = rng.gamma(np.maximum(shape, 1e-6), scale_ns)
    time = arrival[hit] + delay + rng.normal(0.0, config.pmt_jitter_ns, len(hit))
    # A macro-photon of weight w carries the sum of w single-p.e. charges: mean w * <q>, spread sqrt(w) * sigma_q.
    single = _single_pe_charges(rng, len(hit), config)
    mean = 1.0 - config.spe_low_fraction * (1.0 - config.spe_low_mean_pe)
    charge = np.maximum(weight * mean + np.sqrt(weight) * (single - mean), config.charge_step_pe)
    return hit, time, charge


def _single_pe_charges(rng, n, config):
    """Charge of one photo-electron: Gaussian(1, spe_sigma) plus an exponential low-charge part."""
    low = rng.random(n) < config.spe_low_fraction
    charge = np.where(low, rng.exponential(config.spe_low_mean_pe, n), rng.normal(1.0, config.spe_sigma, n))
    return np.maximum(charge, config.charge_step_pe)


def _group_into_pulses(event, dom, time, charge, config):
    """Photons of one DOM within one `pulse_bin_ns` bin (from the DOM's first photon) become one pulse.

    Returns (event, dom, time of the pulse's first photon, summed charge), sorted by (event, dom, time).
    """
    order = np.lexsort((time, event * NUM_DOMS + dom))  # one combined (event, DOM) key sorts faster than two
    event, dom, time, charge = event[order], dom[order], time[order], charge[order]
    new_dom = np.ones(len(time), dtype=bool)
    new_dom[1:] = (event[1:] != event[:-1]) | (dom[1:] != dom[:-1])
    dom_start = np.flatnonzero(new_dom)
    first_time = np.repeat(time[dom_start], np.diff(np.append(dom_start, len(time))))
    time_bin = np.floor((time - first_time) / config.pulse_bin_ns).astype(np.int64)
    new_pulse = new_dom.copy()
    new_pulse[1:] |= time_bin[1:] != time_bin[:-1]
    start = np.flatnonzero(new_pulse)
    return event[start], dom[start], time[start], np.add.reduceat(charge, start)


def _quantise_charge(charge, config):
    """Kaggle charges are multiples of 0.025 p.e. (at least one step, at most the PMT's saturation)."""
    steps = np.clip(np.round(charge / config.charge_step_pe), 1.0, round(config.max_pulse_charge_pe / config.charge_step_pe))
    return steps / round(1.0 / config.charge_step_pe)


# ----------------------------------------------------------------------------------------------------------------
# The HLC rule and the trigger
# ----------------------------------------------------------------------------------------------------------------

_TIME_BITS = 24  # the HLC search packs (DOM group, time) into one int64: times up to 2^24 ns (16.7 ms) per call


def hlc_auxiliary(sensor_id, time, event_index, window_ns: float = 1000.0, max_dom_step: int = 2) -> np.ndarray:
    """The `auxiliary` flag of each pulse from the hard-local-coincidence rule, over flat pulse arrays.

    A pulse is HLC (auxiliary False) if a DOM 1..`max_dom_step` positions above or below it on the same string
    has a pulse of the same event within `window_ns` (|dt| <= window_ns); otherwise auxiliary is True.
    Pulses on the same DOM do not count. Times are rounded to whole ns.

    Args:
        sensor_id: (P,) DOM index 0..5159 (string = sensor_id // 60, position = sensor_id % 60).
        time: (P,) pulse times in ns.
        event_index: (P,) any integer label of the event each pulse belongs to (need not be sorted).
    Returns:
        (P,) bool, True = auxiliary (not HLC).
    """
    sensor = np.asarray(sensor_id, dtype=np.int64)
    event = np.asarray(event_index, dtype=np.int64)
    t = np.rint(np.asarray(time, dtype=np.float64)).astype(np.int64)
    if not (len(sensor) == len(t) == len(event)):
        raise ValueError(f"hlc_auxiliary: sensor_id, time, event_index lengths differ: {len(sensor)}, {len(t)}, {len(event)}")
    if len(t) == 0:
        return np.zeros(0, dtype=bool)
    if sensor.min() < 0 or sensor.max() >= NUM_DOMS:
        raise ValueError(f"hlc_auxiliary: sensor_id must lie in 0..{NUM_DOMS - 1}")
    t = t - t.min()
    window = int(round(window_ns))
    if t.max() + window >= 2**_TIME_BITS:
        raise ValueError("hlc_auxiliary: pulse times span more than 16.7 ms; call it per event chunk")

    # Work in (event, DOM, time) order: the searches below then get sorted queries, which is several times
    # faster than random ones.
    group = event * NUM_DOMS + sensor  # one group per (event, DOM)
    order = np.lexsort((t, group))
    group = group[order]
    t_sorted = t[order]
    new_group = np.ones(len(group), dtype=bool)
    new_group[1:] = group[1:] != group[:-1]
    groups = group[new_group]  # ascending
    sorted_key = ((np.cumsum(new_group) - 1) << _TIME_BITS) | t_sorted  # ascending
    position = group % NUM_DOMS % DOMS_PER_STRING
    hlc_sorted = np.zeros(len(t), dtype=bool)
    for step in [s for s in range(-max_dom_step, max_dom_step + 1) if s != 0]:
        neighbour = group + step
        rank = np.minimum(np.searchsorted(groups, neighbour), len(groups) - 1)
        exists = (groups[rank] == neighbour) & (position + step >= 0) & (position + step < DOMS_PER_STRING)
        low = (rank << _TIME_BITS) | np.maximum(t_sorted - window, 0)
        high = (rank << _TIME_BITS) | np.minimum(t_sorted + window, 2**_TIME_BITS - 1)
        found = np.minimum(np.searchsorted(sorted_key, low), len(sorted_key) - 1)
        hlc_sorted |= exists & (sorted_key[found] >= low) & (sorted_key[found] <= high)
    is_hlc = np.empty(len(t), dtype=bool)
    is_hlc[order] = hlc_sorted
    return ~is_hlc


def _passes_trigger(event, dom, auxiliary, n_events, config) -> np.ndarray:
    """(n_events,) bool: at least `trigger_min_hlc_doms` distinct DOMs with an HLC pulse (IceCube's SMT8,
    without its 5 us time window: events here last a few us anyway)."""
    hlc_dom_keys = np.unique(event[~auxiliary] * NUM_DOMS + dom[~auxiliary])
    hlc_doms = np.bincount(hlc_dom_keys // NUM_DOMS, minlength=n_events)
    hlc_pulses = np.bincount(event, weights=~auxiliary, minlength=n_events)
    return (hlc_doms >= config.trigger_min_hlc_doms) & (hlc_pulses >= config.trigger_min_hlc_pulses)


# ----------------------------------------------------------------------------------------------------------------
# One chunk of events
# ----------------------------------------------------------------------------------------------------------------


def _chunk_rng(seed: int, split: str, chunk: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLITS.index(split), int(chunk)]))


def _per_event_light_factors(truth, config):
    """Per-event products used by every (event, DOM) pair, computed once per event rather than per pair."""
    dom_area = config.dom_photon_area_m2 * truth["dom_efficiency"]
    return dict(
        truth,
        shower_pe_scale=truth["cascade_energy"] * config.photons_per_gev * dom_area,
        muon_pe_scale=truth["muon_light"] * config.photons_per_gev * dom_area,
        inverse_absorption_scale=1.0 / truth["absorption_scale"],
        inverse_scattering_scale=1.0 / truth["scattering_scale"],
    )


def _signal_pulses(rng, truth, config, detector):
    """Signal pulses of all events of a chunk, times relative to each event's vertex time."""
    event, dom = _candidate_pairs(truth, config, detector)
    truth, detector = _float32_truth(_per_event_light_factors(truth, config)), _detector_float32(config)
    tracks = truth["is_track"][event]
    parts = [_shower_light(event, dom, truth, config, detector), _muon_light(event[tracks], dom[tracks], truth, config, detector)]
    pair_event, pair_dom = [event, event[tracks]], [dom, dom[tracks]]

    hit_event, hit_dom, photon_time, photon_charge = [], [], [], []
    for (mean_pe, arrival, distance, inv_scat), ev, dm in zip(parts, pair_event, pair_dom):
        n_pe = _poisson(rng, mean_pe)
        hit = n_pe > 0
        idx, t, q = _photon_times_and_charges(rng, n_pe[hit], arrival[hit], distance[hit], inv_scat[hit], config)
        hit_event.append(ev[hit][idx])
        hit_dom.append(dm[hit][idx])
        photon_time.append(t)
        photon_charge.append(q)
    return _group_into_pulses(
        np.concatenate(hit_event), np.concatenate(hit_dom), np.concatenate(photon_time), np.concatenate(photon_charge), config
    )


def _noise_pulses(rng, window_start, window_end, noise_rate_hz, config, detector):
    """Uncorrelated dark-noise pulses (Poisson in time) over each event's readout window."""
    weight = detector.noise_weight
    expected = noise_rate_hz * 1e-9 * (window_end - window_start) * weight.sum()
    n = rng.poisson(expected)
    event = np.repeat(np.arange(len(n)), n)
    dom = rng.choice(NUM_DOMS, size=len(event), p=weight / weight.sum())
    time = rng.uniform(window_start[event], window_end[event])
    return event, dom, time, _single_pe_charges(rng, len(event), config)


def _per_event_min_max(event, values, n_events):
    """Per-event min and max of values, for event indices sorted ascending (inf / -inf where no values)."""
    first, last = np.full(n_events, np.inf), np.full(n_events, -np.inf)
    if len(values):
        start = np.flatnonzero(np.diff(event, prepend=-1))
        first[event[start]] = np.minimum.reduceat(values, start)
        last[event[start]] = np.maximum.reduceat(values, start)
    return first, last


def simulate_chunk(chunk: int, seed: int = 0, split: str = "train", config: SimulatorConfig = DEFAULT_CONFIG) -> dict:
    """Simulate the `CHUNK_EVENTS` candidate events of one chunk; return those that pass the trigger.

    Returns a dict of flat numpy arrays: per event `event_id`, `num_pulses` and the truth columns
    (`azimuth`, `zenith`, `energy`, `is_track`, `vertex_x/y/z`); per pulse `sensor_id` (int16), `time` (int64),
    `charge` (float64), `auxiliary` (bool), grouped by event (ascending id) and time-sorted inside an event.
    """
    rng = _chunk_rng(seed, split, chunk)
    detector = _detector(config)
    n = CHUNK_EVENTS
    truth = _sample_truth(rng, n, config)

    event, dom, time, charge = _signal_pulses(rng, truth, config, detector)
    # Events with fewer signal pulses than the trigger needs HLC pulses are dropped here, before their noise:
    # only noise coincidences could save them, and 500-800 Hz noise almost never makes HLC pairs.
    has_light = np.bincount(event, minlength=n) >= config.trigger_min_hlc_pulses
    keep_signal = has_light[event]
    event, dom, time, charge = event[keep_signal], dom[keep_signal], time[keep_signal], charge[keep_signal]
    # Absolute times: the first signal photon at ~10,000 ns, readout from 4 us before it to 6 us after the last.
    first, last = _per_event_min_max(event, time, n)
    shift = np.where(has_light, truth["first_light_ns"] - first, 0.0)
    time = time + shift[event]
    window_start = np.where(has_light, truth["first_light_ns"] - config.pre_trigger_ns, 0.0)
    window_end = np.where(has_light, last + shift + config.post_trigger_ns, 0.0)
    noise = _noise_pulses(rng, window_start, window_end, truth["noise_rate_hz"] * has_light, config, detector)

    event = np.concatenate([event, noise[0]])
    dom = np.concatenate([dom, noise[1]])
    time = np.rint(np.concatenate([time, noise[2]])).astype(np.int64)
    charge = _quantise_charge(np.concatenate([charge, noise[3]]), config)
    # Sort by (event, time, DOM) with one int64 key: event | time since the window start | DOM.
    time_in_window = time - np.rint(window_start).astype(np.int64)[event]
    order = np.argsort((event << 40) | (time_in_window << 13) | dom, kind="stable")
    event, dom, time, charge = event[order], dom[order], time[order], charge[order]
    auxiliary = hlc_auxiliary(dom, time, event, config.hlc_window_ns, config.hlc_max_dom_step)

    passed = _passes_trigger(event, dom, auxiliary, n, config)
    keep = passed[event]
    return dict(
        event_id=chunk * CHUNK_EVENTS + np.flatnonzero(passed) + (TEST_EVENT_ID_OFFSET if split == "test" else 0),
        num_pulses=np.bincount(event, minlength=n)[passed],
        azimuth=truth["azimuth"][passed],
        zenith=truth["zenith"][passed],
        energy=truth["energy"][passed],
        is_track=truth["is_track"][passed],
        vertex_x=truth["vertex"][passed, 0],
        vertex_y=truth["vertex"][passed, 1],
        vertex_z=truth["vertex"][passed, 2],
        sensor_id=dom[keep].astype(np.int16),
        time=time[keep],
        charge=charge[keep],
        auxiliary=auxiliary[keep],
    )


def _take_events(result: dict, count: int) -> dict:
    """The first `count` events of a chunk result (and their pulses)."""
    n_pulses = int(result["num_pulses"][:count].sum())
    return {key: value[:n_pulses] if key in PULSE_COLUMNS else value[:count] for key, value in result.items()}


def _simulate_chunk_star(args):
    return simulate_chunk(*args)


def iter_simulated_chunks(n_events: int, seed: int = 0, split: str = "train", num_proc: int = 1,
                          config: SimulatorConfig = DEFAULT_CONFIG, progress: bool = False):
    """Yield chunk results (see `simulate_chunk`) in chunk order until `n_events` triggered events are out.

    The last chunk is cut so that exactly `n_events` events come out. With `num_proc` > 1, chunks are simulated
    in a process pool, in waves, and still yielded in order: the output does not depend on `num_proc`.
    """
    _check_simulation_args(n_events, seed, split, num_proc)
    remaining = n_events
    bar = tqdm(total=n_events, unit="event", desc=f"simulate {split}", disable=not progress)
    pool = multiprocessing.get_context("fork").Pool(num_proc) if num_proc > 1 else None
    try:
        chunk = 0
        while remaining > 0:
            wave = range(chunk, chunk + (4 * num_proc if pool else 1))
            jobs = [(k, seed, split, config) for k in wave]
            results = pool.imap(_simulate_chunk_star, jobs) if pool else map(_simulate_chunk_star, jobs)
            for result in results:
                if remaining <= 0:
                    break
                result = _take_events(result, remaining)
                remaining -= len(result["event_id"])
                bar.update(len(result["event_id"]))
                yield result
            chunk = wave.stop
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()


def _check_simulation_args(n_events, seed, split, num_proc):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if int(n_events) < 1:
        raise ValueError(f"the number of events must be at least 1, got {n_events}")
    if int(num_proc) < 1:
        raise ValueError(f"num_proc must be at least 1, got {num_proc}")
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")


def _concatenate(results: list[dict]) -> dict:
    return {key: np.concatenate([r[key] for r in results]) for key in results[0]}


def simulate_events(n_events: int, seed: int = 0, split: str = "train", num_proc: int = 1,
                    config: SimulatorConfig = DEFAULT_CONFIG, progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate `n_events` triggered events in memory.

    Returns:
        pulses: DataFrame indexed by `event_id` (int64) with columns sensor_id (int16), time (int64),
            charge (float64), auxiliary (bool), grouped by event in meta order, time-sorted within an event.
        meta: DataFrame with event_id, first_pulse_index, last_pulse_index (inclusive rows of `pulses`),
            azimuth, zenith (Kaggle convention), energy (GeV), is_track, vertex_x, vertex_y, vertex_z (m).
    """
    data = _concatenate(list(iter_simulated_chunks(n_events, seed, split, num_proc, config, progress)))
    return _pulse_frame(data), _meta_frame(data, first_row=0)


def _pulse_frame(data: dict) -> pd.DataFrame:
    event_id = np.repeat(data["event_id"], data["num_pulses"]).astype(np.int64)
    frame = pd.DataFrame({name: data[name] for name in PULSE_COLUMNS}, index=pd.Index(event_id, name="event_id"))
    return frame


def _meta_frame(data: dict, first_row: int) -> pd.DataFrame:
    last = first_row + np.cumsum(data["num_pulses"]).astype(np.int64) - 1
    first = last - data["num_pulses"] + 1
    meta = pd.DataFrame({"event_id": data["event_id"].astype(np.int64), "first_pulse_index": first, "last_pulse_index": last})
    for name in TRUTH_COLUMNS:
        meta[name] = data[name]
    return meta


# ----------------------------------------------------------------------------------------------------------------
# The Kaggle directory
# ----------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def batch_schema() -> pa.Schema:
    """The arrow schema of a Kaggle batch file, pandas metadata included (event_id is the pandas index)."""
    empty = pd.DataFrame(
        {"sensor_id": np.zeros(0, np.int16), "time": np.zeros(0, np.int64), "charge": np.zeros(0, np.float64),
         "auxiliary": np.zeros(0, bool)},
        index=pd.Index(np.zeros(0, np.int64), name="event_id"),
    )
    return pa.Schema.from_pandas(empty, preserve_index=True)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


class _BatchWriter:
    """Streams events into {split}/batch_{b}.parquet files of `batch_size` events, each written atomically."""

    ROW_GROUP_ROWS = 1 << 20

    def __init__(self, split_dir: Path, batch_size: int):
        self.split_dir, self.batch_size = split_dir, batch_size
        self.batch_id, self.events_in_batch, self.rows_in_batch = 1, 0, 0
        self.buffer, self.writer, self.meta = [], None, []

    def add(self, data: dict):
        while len(data["event_id"]):
            room = self.batch_size - self.events_in_batch
            head = _take_events(data, room)
            n_head, rows_head = len(head["event_id"]), int(head["num_pulses"].sum())
            meta = _meta_frame(head, first_row=self.rows_in_batch)
            meta.insert(0, "batch_id", np.int64(self.batch_id))
            self.meta.append(meta)
            self.buffer.append(head)
            self.events_in_batch += n_head
            self.rows_in_batch += rows_head
            if sum(len(b["time"]) for b in self.buffer) >= self.ROW_GROUP_ROWS:
                self._flush()
            if self.events_in_batch == self.batch_size:
                self._close_batch()
            data = {k: (v[rows_head:] if k in PULSE_COLUMNS else v[n_head:]) for k, v in data.items()}

    def _flush(self):
        if not self.buffer:
            return
        data = _concatenate(self.buffer)
        self.buffer = []
        event_id = np.repeat(data["event_id"], data["num_pulses"]).astype(np.int64)
        columns = [pa.array(data[name]) for name in PULSE_COLUMNS] + [pa.array(event_id)]
        table = pa.Table.from_arrays(columns, schema=batch_schema())
        if self.writer is None:
            self.writer = pq.ParquetWriter(_temporary(self._path()), batch_schema())
        self.writer.write_table(table)

    def _path(self) -> Path:
        return self.split_dir / f"batch_{self.batch_id}.parquet"

    def _close_batch(self):
        self._flush()
        if self.writer is not None:
            self.writer.close()
            os.replace(_temporary(self._path()), self._path())
        self.writer = None
        self.batch_id += 1
        self.events_in_batch = self.rows_in_batch = 0

    def finish(self) -> pd.DataFrame:
        if self.events_in_batch:
            self._close_batch()
        return pd.concat(self.meta, ignore_index=True)

    def abort(self):
        if self.writer is not None:
            self.writer.close()
            _temporary(self._path()).unlink(missing_ok=True)


def _write_parquet_atomically(frame: pd.DataFrame, path: Path):
    temporary = _temporary(path)
    frame.to_parquet(temporary, index=False)
    os.replace(temporary, path)


def _check_output_dir(out_dir: Path, split: str):
    existing = sorted((out_dir / split).glob("batch_*.parquet")) if (out_dir / split).is_dir() else []
    if (out_dir / f"{split}_meta.parquet").exists() or existing:
        raise ValueError(
            f"{out_dir} already holds a {split} split ({split}_meta.parquet or {split}/batch_*.parquet); "
            "write to a new directory or delete those files first"
        )


def simulate_kaggle_dir(out_dir, n_events: int, seed: int = 0, batch_size: int = 200_000, split: str = "train",
                        num_proc: int = 1, config: SimulatorConfig = DEFAULT_CONFIG, progress: bool = True) -> pd.DataFrame:
    """Write `n_events` simulated events to `out_dir` in the Kaggle layout; return the meta table written.

    Files: sensor_geometry.csv (the shipped copy), {split}/batch_{b}.parquet (b = 1, 2, ...; `batch_size` events
    each, pandas-written, event_id index), {split}_meta.parquet. For split="train" the meta file carries
    azimuth, zenith and the truth columns (energy, is_track, vertex_x/y/z); for split="test" it has only
    batch_id, event_id, first/last_pulse_index (as Kaggle's), and the truth goes to test_truth.parquet.
    Every file is written under a temporary name and renamed when complete.
    """
    _check_simulation_args(n_events, seed, split, num_proc)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    out_dir = Path(out_dir)
    _check_output_dir(out_dir, split)
    (out_dir / split).mkdir(parents=True, exist_ok=True)
    geometry_path = out_dir / "sensor_geometry.csv"
    shutil.copyfile(SENSOR_GEOMETRY_PATH, _temporary(geometry_path))
    os.replace(_temporary(geometry_path), geometry_path)

    writer = _BatchWriter(out_dir / split, int(batch_size))
    try:
        for result in iter_simulated_chunks(int(n_events), seed, split, num_proc, config, progress):
            writer.add(result)
        meta = writer.finish()
    except BaseException:
        writer.abort()
        raise
    if split == "train":
        _write_parquet_atomically(meta, out_dir / "train_meta.parquet")
    else:
        kaggle_columns = ["batch_id", "event_id", "first_pulse_index", "last_pulse_index"]
        _write_parquet_atomically(meta[kaggle_columns], out_dir / "test_meta.parquet")
        _write_parquet_atomically(meta[["event_id", *TRUTH_COLUMNS]], out_dir / "test_truth.parquet")
    return meta
