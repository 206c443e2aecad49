"""The README's main job, on the built-in default (simulated events), in minutes on 2 CPU cores:

simulate -> prepare -> pretrain a tiny PolarBERT -> fine-tune it and a from-scratch twin on a few thousand
labelled events -> evaluate both beside LineFit -> predict a Kaggle submission -> print the comparison table.
The backbone shipped in checkpoints/polarbert-tiny-sim/ (the same architecture, pretrained for 3 passes over 300,000
events, docs/results.md) is fine-tuned with the same budget and reported as its own row.

    python scripts/quickstart.py                 # the README gives its measured time on 2 CPU cores
    python scripts/quickstart.py --small         # a smaller run (the test suite uses it)
    python scripts/quickstart.py --backbone PATH # fine-tune from another saved backbone
    python scripts/quickstart.py --backbone checkpoints/polarbert-8m-sim --freeze-backbone  # a GPU one: head only
    polarbert quickstart --small                 # the same, from an installed wheel (python -m modeling_polarbert)

Paths are relative to the working directory; the YAML runs come with the package. Outputs in runs/quickstart/:
the models (pretrained_<N>/ loads with AutoModel.from_pretrained and has a model card), report_*/ (metrics.json
and PNG plots), results.md, sample_efficiency.png and submission.csv. The events stay in data/quickstart/
(kaggle_{pretrain,labelled,eval,test}/ in the Kaggle layout, prepared_{pretrain,labelled,eval}/ as datasets): what
configs/pretrain_tiny.yaml and configs/finetune_tiny.yaml train on.
"""

import argparse
import json
import textwrap
from pathlib import Path

# In the repository; elsewhere (an installed wheel run from another folder) the quickstart says it is absent.
SHIPPED_BACKBONE = Path("checkpoints/polarbert-tiny-sim")


def shipped_backbone(path: Path) -> Path | None:
    """`path` if it holds a saved backbone; else None, and one line that says so."""
    if (path / "config.json").is_file():
        return path
    print(f"No pretrained backbone at {path}: fine-tuning from it is skipped.")
    return None


def what_it_shows(results: dict) -> str:
    """The honest reading of the table, in words."""
    row = results["rows"][-1]
    pretrained, scratch, linefit = row["pretrained"], row["scratch"], row["linefit"]
    versus_scratch = (f"the pretrained model is ahead of its from-scratch twin by {scratch - pretrained:.3f} rad"
                      if pretrained < scratch else
                      f"the pretrained model is NOT ahead of its from-scratch twin ({pretrained:.3f} vs {scratch:.3f} rad)")
    versus_linefit = (f"and ahead of LineFit by {linefit - pretrained:.3f} rad" if pretrained < linefit else
                      f"and {pretrained - linefit:.3f} rad behind LineFit, a fit with no learning")
    by_kind = ""
    if "pretrained_track" in row:
        by_kind = (f" On tracks it reaches {row['pretrained_track']:.3f} rad (LineFit {row['linefit_track']:.3f}); "
                   f"on cascades {row['pretrained_cascade']:.3f} (LineFit {row['linefit_cascade']:.3f}, random "
                   f"{results['random']:.3f}).")
    shows = (f"What this run shows: the whole pipeline works end to end on simulated IceCube events in the Kaggle "
             f"layout (simulate, prepare, pretrain, fine-tune, evaluate, predict), the saved model loads with "
             f"AutoModel, and at this scale (a 0.3 M-parameter model pretrained for minutes of CPU on "
             f"{results['pretrain_events']:,} unlabelled events) {versus_scratch}, {versus_linefit}.{by_kind}")
    if "backbone" in row:
        shows += (f" Fine-tuned from the shipped backbone ({results['backbone']}) it gives {row['backbone']:.3f} rad, "
                  f"{'ahead of' if row['backbone'] < linefit else 'behind'} LineFit.")
    does_not = ("What it does not show: the paper's figures, which took an 8 M model and 100 M events on a GPU "
                "(docs/results.md).")
    # No break at hyphens: a path such as checkpoints/polarbert-tiny-sim stays whole on its line.
    return "\n" + textwrap.fill(shows, 112, break_on_hyphens=False) + "\n" + textwrap.fill(does_not, 112) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The quickstart's options, for its own parser and for `polarbert quickstart`."""
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"))
    parser.add_argument("--data-dir", type=Path, default=Path("data/quickstart"))
    parser.add_argument("--small", action="store_true", help="a run of seconds, for the tests")
    parser.add_argument("--backbone", type=Path, default=SHIPPED_BACKBONE,
                        help="a saved pretrained backbone to fine-tune as well, if it exists")
    parser.add_argument("--freeze-backbone", action="store_true",
                        help="train only the direction head on --backbone, one pass (for a GPU-sized backbone, whose "
                             "forward pass runs at some 20-140 events/s on 2 cores)")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_quickstart(parser.parse_args(argv))


def budget(small: bool) -> tuple[dict, list[str], list[str]]:
    """(the study's sizes, pretraining arguments, fine-tuning arguments) of the full run or of `--small`."""
    if small:
        return (dict(pretrain_events=1200, labelled_sizes=[300], eval_events=200),
                ["--max_steps", "6", "--eval_events", "100"], ["--max_steps", "4"])
    # The CPU budget: one pass over 60 k unlabelled events, then 10 passes over 10 k labelled ones.
    return (dict(pretrain_events=60_000, labelled_sizes=[10_000], eval_events=2_000),
            ["--num_train_epochs", "1"], ["--num_train_epochs", "10"])


def frozen_backbone_arguments(small: bool) -> list[str]:
    """Fine-tuning arguments that train only the direction head on the backbone, in one pass."""
    return ["--freeze_backbone", "true", "--eval_strategy", "no", "--save_strategy", "no", "--max_eval_events", "500",
            *([] if small else ["--num_train_epochs", "1"])]


def run_quickstart(args: argparse.Namespace) -> dict:
    """The main job with the options of `add_arguments`; the study's results."""
    # Imported here, not above: `polarbert --help` builds this command's options without loading the pipeline.
    from .prediction import predict_kaggle_dir
    from .simulation import simulate_kaggle_dir
    from .studies import results_table, run_study

    sizes, pretrain_args, finetune_args = budget(args.small)
    backbone_args = frozen_backbone_arguments(args.small) if args.freeze_backbone else []
    results = run_study(args.out, args.data_dir, **sizes, pretrain_args=pretrain_args, finetune_args=finetune_args,
                        backbone=shipped_backbone(args.backbone), backbone_args=backbone_args)

    test_dir = args.data_dir / "kaggle_test"
    if not (test_dir / "test_meta.parquet").exists():
        simulate_kaggle_dir(test_dir, n_events=sizes["eval_events"], seed=4, split="test")
    model = args.out / f"pretrained_{sizes['labelled_sizes'][-1]}"
    predict_kaggle_dir(str(model), str(test_dir), str(args.out / "submission.csv"), split="test", progress=False)

    print("\nMean opening angle on held-out simulated events (radians; lower is better):")
    print(results_table(results))
    print(what_it_shows(results))
    print(f"Model: {model} (AutoModel.from_pretrained('{model}')); reports, plots, submission: {args.out}/")
    (args.out / "quickstart.json").write_text(json.dumps(results, indent=2))
    return results
