"""The simulator's constants: `SimulatorConfig` (every physical constant, with its source) and the few fixed
numbers of the pipeline (RNG chunk size, event-id offset of the test split, detector layout)."""

from __future__ import annotations

from dataclasses import dataclass

from ..geometry import DOMS_PER_STRING, NUM_DOMS


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
