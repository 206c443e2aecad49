#!/usr/bin/env python
"""Evaluate direction models on events of a simulation they never saw: clearer ice and more noise than the default.

    python scripts/evaluate_on_other_simulation.py runs/other_simulation runs/quickstart/pretrained_10000 \
        runs/quickstart/scratch_10000

A model that only learned the default simulator's constants would lose its skill here; LineFit beside it shows how
much harder the events themselves became. Writes the simulated events, and one evaluation report per model.
"""

import argparse
import dataclasses
from pathlib import Path

from modeling_polarbert.evaluation import evaluate_model
from modeling_polarbert.preparation import prepare_kaggle
from modeling_polarbert.simulation import simulate_kaggle_dir
from modeling_polarbert.simulation.config import DEFAULT_CONFIG

# Absorption and scattering lengths 1.5 times longer in every layer, dark noise about 1.6 times higher.
OTHER_SIMULATION = dataclasses.replace(
    DEFAULT_CONFIG, attenuation_m=(60.0, 18.0, 100.0), scattering_m=(50.0, 15.0, 90.0), noise_rate_hz=(800.0, 1000.0)
)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    if not (args.out / "prepared").exists():
        simulate_kaggle_dir(args.out / "kaggle", n_events=args.events, seed=args.seed, config=OTHER_SIMULATION)
        prepare_kaggle(args.out / "kaggle", args.out / "prepared", progress=False)
    for model in args.models:
        evaluate_model(model, str(args.out / "prepared"), str(args.out / f"report_{Path(model).name}"), progress=False)


if __name__ == "__main__":
    main()
