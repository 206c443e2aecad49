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

Modules, in the order the pipeline runs: `config` (SimulatorConfig, the one place for the constants), `detector`
(detector and ice tables), `truth` (what happened), `light` (expected photo-electrons), `pulses` (photons ->
pulses, HLC, trigger), `events` (one chunk; the chunk stream), `writer` (the Kaggle layout). Names with a leading
underscore are private to this subpackage.
"""

from .config import CHUNK_EVENTS, DEFAULT_CONFIG, SPLITS, TEST_EVENT_ID_OFFSET, TRUTH_COLUMNS, SimulatorConfig
from .events import iter_simulated_chunks, simulate_chunk, simulate_events
from .pulses import hlc_auxiliary
from .truth import sample_energies
from .writer import batch_schema, simulate_kaggle_dir

__all__ = [
    "SimulatorConfig", "DEFAULT_CONFIG", "CHUNK_EVENTS", "SPLITS", "TEST_EVENT_ID_OFFSET", "TRUTH_COLUMNS",
    "simulate_chunk", "iter_simulated_chunks", "simulate_events", "simulate_kaggle_dir", "hlc_auxiliary",
    "sample_energies", "batch_schema",
]
