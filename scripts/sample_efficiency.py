#!/usr/bin/env python
"""The paper's claim, reproduced on simulated events: pretraining makes fine-tuning more sample-efficient, for
direction (the paper's task) or any event-level regression or classification (`--task`, `--label-columns`).

Pretrains once on unlabelled simulated events, then fine-tunes (a) from the pretrained weights and (b) from scratch
(same architecture) on N labelled events for each N, evaluates all on the same held-out events beside the task's
baseline (LineFit; a log10(total charge) fit; the majority class), and writes a table and a plot like the paper's
Figure 2 (right); the study itself is `modeling_polarbert.studies.run_study`.

    python scripts/sample_efficiency.py --out runs/sample_efficiency --pretrain-events 200000 \
        --labelled-sizes 10000 100000 --labelled-epochs 20 6 --eval-events 20000
    python scripts/sample_efficiency.py --out runs/sample_efficiency --task regression --label-columns log10:energy
    python scripts/sample_efficiency.py --out runs/sample_efficiency --task classification --label-columns is_track

Every step is skipped when its output already exists, so an interrupted study resumes where it stopped. The study
itself is `modeling_polarbert.studies.run_study`.
"""

import argparse
from pathlib import Path

from modeling_polarbert.studies import results_table, run_study


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/sample_efficiency"))
    parser.add_argument("--data-dir", type=Path, default=Path("data/sample_efficiency"))
    parser.add_argument("--pretrain-events", type=int, default=200_000)
    parser.add_argument("--labelled-sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--labelled-epochs", type=float, nargs="+",
                        help="passes over the labelled events at each --labelled-sizes size, in that order "
                             "(default: the fine-tuning YAML's, at every size)")
    parser.add_argument("--eval-events", type=int, default=20_000)
    parser.add_argument("--pretrain-args", default="", help="extra pretrain.py arguments, e.g. '--num_train_epochs 3'")
    parser.add_argument("--finetune-args", default="", help="extra finetune.py arguments")
    parser.add_argument("--task", choices=["direction", "regression", "classification"], default="direction")
    parser.add_argument("--label-columns", help="regression/classification labels, as finetune.py's --label_columns")
    args = parser.parse_args(argv)
    if (args.task == "direction") != (args.label_columns is None):
        parser.error("--label-columns goes with --task regression or classification, and only with them")
    if args.labelled_epochs is not None and len(args.labelled_epochs) != len(args.labelled_sizes):
        parser.error(f"--labelled-epochs gives {len(args.labelled_epochs)} values for "
                     f"{len(args.labelled_sizes)} --labelled-sizes: one per size")
    epochs = dict(zip(args.labelled_sizes, args.labelled_epochs)) if args.labelled_epochs else None
    results = run_study(args.out, args.data_dir, args.pretrain_events, sorted(args.labelled_sizes), args.eval_events,
                        args.pretrain_args.split(), args.finetune_args.split(), task=args.task,
                        label_columns=args.label_columns, labelled_epochs=epochs)
    print(results_table(results))
    return results


if __name__ == "__main__":
    main()
