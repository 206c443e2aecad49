"""One chunk of simulated events (signal, noise, HLC flags, trigger), the reproducible chunk stream, and the
events in memory."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..geometry import NUM_DOMS
from ..kaggle_layout import PULSE_COLUMNS
from .config import CHUNK_EVENTS, DEFAULT_CONFIG, SPLITS, TEST_EVENT_ID_OFFSET, TRUTH_COLUMNS, SimulatorConfig
from .detector import detector_tables, detector_tables_float32, float32_truth
from .light import candidate_pairs, muon_track_light, shower_light
from .pulses import (
    group_into_pulses,
    hlc_auxiliary,
    passes_trigger,
    photon_times_and_charges,
    poisson_counts,
    quantise_charge,
    single_pe_charges,
)
from .truth import sample_truth


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
    event, dom = candidate_pairs(truth, config, detector)
    truth, detector = float32_truth(_per_event_light_factors(truth, config)), detector_tables_float32(config)
    tracks = truth["is_track"][event]
    parts = [shower_light(event, dom, truth, config, detector), muon_track_light(event[tracks], dom[tracks], truth, config, detector)]
    pair_event, pair_dom = [event, event[tracks]], [dom, dom[tracks]]

    hit_event, hit_dom, photon_time, photon_charge = [], [], [], []
    for (mean_pe, arrival, distance, inv_scat), ev, dm in zip(parts, pair_event, pair_dom):
        n_pe = poisson_counts(rng, mean_pe)
        hit = n_pe > 0
        idx, t, q = photon_times_and_charges(rng, n_pe[hit], arrival[hit], distance[hit], inv_scat[hit], config)
        hit_event.append(ev[hit][idx])
        hit_dom.append(dm[hit][idx])
        photon_time.append(t)
        photon_charge.append(q)
    return group_into_pulses(
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
    return event, dom, time, single_pe_charges(rng, len(event), config)


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
    detector = detector_tables(config)
    n = CHUNK_EVENTS
    truth = sample_truth(rng, n, config)

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
    charge = quantise_charge(np.concatenate([charge, noise[3]]), config)
    # Sort by (event, time, DOM) with one int64 key: event | time since the window start | DOM.
    time_in_window = time - np.rint(window_start).astype(np.int64)[event]
    order = np.argsort((event << 40) | (time_in_window << 13) | dom, kind="stable")
    event, dom, time, charge = event[order], dom[order], time[order], charge[order]
    auxiliary = hlc_auxiliary(dom, time, event, config.hlc_window_ns, config.hlc_max_dom_step)

    passed = passes_trigger(event, dom, auxiliary, n, config)
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


def take_events(result: dict, count: int) -> dict:
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
    check_simulation_args(n_events, seed, split, num_proc)
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
                result = take_events(result, remaining)
                remaining -= len(result["event_id"])
                bar.update(len(result["event_id"]))
                yield result
            chunk = wave.stop
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()


def check_simulation_args(n_events, seed, split, num_proc):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if int(n_events) < 1:
        raise ValueError(f"the number of events must be at least 1, got {n_events}")
    if int(num_proc) < 1:
        raise ValueError(f"num_proc must be at least 1, got {num_proc}")
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")


def concatenate_chunks(results: list[dict]) -> dict:
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
    data = concatenate_chunks(list(iter_simulated_chunks(n_events, seed, split, num_proc, config, progress)))
    return _pulse_frame(data), meta_frame(data, first_row=0)


def _pulse_frame(data: dict) -> pd.DataFrame:
    event_id = np.repeat(data["event_id"], data["num_pulses"]).astype(np.int64)
    frame = pd.DataFrame({name: data[name] for name in PULSE_COLUMNS}, index=pd.Index(event_id, name="event_id"))
    return frame


def meta_frame(data: dict, first_row: int) -> pd.DataFrame:
    last = first_row + np.cumsum(data["num_pulses"]).astype(np.int64) - 1
    first = last - data["num_pulses"] + 1
    meta = pd.DataFrame({"event_id": data["event_id"].astype(np.int64), "first_pulse_index": first, "last_pulse_index": last})
    for name in TRUTH_COLUMNS:
        meta[name] = data[name]
    return meta
