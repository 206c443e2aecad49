"""Light: the expected photo-electrons of every (event, DOM) pair near the light of a shower or a muon, with the
ice model, the emission profile and the DOM acceptance."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..geometry import DOMS_PER_STRING, NUM_DOMS, load_sensor_geometry
from .config import FIRST_DEEPCORE_SENSOR, NUM_STRINGS, SPEED_OF_LIGHT_M_PER_NS, SimulatorConfig
from .detector import path_mean_inverse


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


def candidate_pairs(truth, config, detector):
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
    inv_att = path_mean_inverse(
        integrals_src[0], detector.att_integral_dom[dom], detector.inv_attenuation_dom[dom], dz, flat
    ) * truth["inverse_absorption_scale"][event]
    inv_scat = path_mean_inverse(
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


def shower_light(event, dom, truth, config, detector):
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


def muon_track_light(event, dom, truth, config, detector):
    """A muon as a line source from the vertex over its range, seen on its Cherenkov cone; same outputs as
    `shower_light`."""
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
