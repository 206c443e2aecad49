"""Photons -> pulses (arrival times, charges, time bins, saturation, the 0.025 p.e. grid), the HLC rule and the
trigger."""

from __future__ import annotations

import numpy as np

from ..geometry import DOMS_PER_STRING, NUM_DOMS
from .config import SPEED_OF_LIGHT_M_PER_NS


def poisson_counts(rng, mean):
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


def photon_times_and_charges(rng, n_pe, arrival, distance, inv_scat, config):
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
    single = single_pe_charges(rng, len(hit), config)
    mean = 1.0 - config.spe_low_fraction * (1.0 - config.spe_low_mean_pe)
    charge = np.maximum(weight * mean + np.sqrt(weight) * (single - mean), config.charge_step_pe)
    return hit, time, charge


def single_pe_charges(rng, n, config):
    """Charge of one photo-electron: Gaussian(1, spe_sigma) plus an exponential low-charge part."""
    low = rng.random(n) < config.spe_low_fraction
    charge = np.where(low, rng.exponential(config.spe_low_mean_pe, n), rng.normal(1.0, config.spe_sigma, n))
    return np.maximum(charge, config.charge_step_pe)


def group_into_pulses(event, dom, time, charge, config):
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


def quantise_charge(charge, config):
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


def passes_trigger(event, dom, auxiliary, n_events, config) -> np.ndarray:
    """(n_events,) bool: at least `trigger_min_hlc_doms` distinct DOMs with an HLC pulse (IceCube's SMT8,
    without its 5 us time window: events here last a few us anyway)."""
    hlc_dom_keys = np.unique(event[~auxiliary] * NUM_DOMS + dom[~auxiliary])
    hlc_doms = np.bincount(hlc_dom_keys // NUM_DOMS, minlength=n_events)
    hlc_pulses = np.bincount(event, weights=~auxiliary, minlength=n_events)
    return (hlc_doms >= config.trigger_min_hlc_doms) & (hlc_pulses >= config.trigger_min_hlc_pulses)
