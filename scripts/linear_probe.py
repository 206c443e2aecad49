#!/usr/bin/env python
"""How much direction a frozen backbone carries: a linear probe (ridge regression of the true unit direction on the
backbone's CLS vector, and on the mean of its pulse vectors), fitted on labelled events, scored as mean opening
angle on held-out ones; each backbone beside a random one of the same architecture (docs/results.md, centred
inputs: why pretraining does not pay at CPU scale).

    python scripts/linear_probe.py runs/quickstart/pretrained checkpoints/polarbert-tiny-sim
"""

import argparse

import torch

from modeling_polarbert import PolarBertModel
from modeling_polarbert.collators import PolarBertDirectionCollator
from modeling_polarbert.diagnostics import backbone_vectors, linear_probe_angle
from modeling_polarbert.loading import load_prepared_dataset
from modeling_polarbert.prediction import event_loader, feature_extractor_of


def probe_row(name: str, backbone, extractor, train, held_out) -> str:
    """One table row: the probe's held-out angle on the CLS vectors and on the mean pulse vectors."""
    collator = PolarBertDirectionCollator(backbone.config, deterministic=True, feature_extractor=extractor)
    cls_train, mean_train, y_train = backbone_vectors(backbone, event_loader(train, collator, 256, False)[0])
    cls_test, mean_test, y_test = backbone_vectors(backbone, event_loader(held_out, collator, 256, False)[0])
    return (f"| {name} | {linear_probe_angle(cls_train, y_train, cls_test, y_test):.3f} | "
            f"{linear_probe_angle(mean_train, y_train, mean_test, y_test):.3f} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backbones", nargs="+", help="saved PolarBERT folders")
    parser.add_argument("--train", default="data/quickstart/prepared_labelled")
    parser.add_argument("--held-out", default="data/quickstart/prepared_eval")
    parser.add_argument("--events", type=int, default=10_000, help="labelled events the probe is fitted on")
    args = parser.parse_args(argv)
    train = load_prepared_dataset(args.train).select(range(args.events))
    held_out = load_prepared_dataset(args.held_out)
    print("| backbone | probe on CLS (rad) | probe on mean pulse vector (rad) |\n|---|---|---|")
    for folder in args.backbones:
        backbone = PolarBertModel.from_pretrained(folder).eval()
        extractor = feature_extractor_of(backbone)  # the random twin reads its inputs the same way
        print(probe_row(folder, backbone, extractor, train, held_out), flush=True)
        torch.manual_seed(0)
        random_twin = PolarBertModel(backbone.config).eval()
        print(probe_row(f"random weights, {folder}'s architecture", random_twin, extractor, train, held_out),
              flush=True)


if __name__ == "__main__":
    main()
