"""The `polarbert` command line: simulate -> prepare -> linefit / evaluate / predict, and the quickstart.

Each sub-command is a thin wrapper around a Python function of the package; imports happen inside the
handlers so that `polarbert --help` stays fast. Bad input raises `ValueError` / `FileNotFoundError` in those
functions; here it becomes one clear line on stderr and exit status 2.
"""

import argparse
import sys


def _simulate(args):
    from .simulation import simulate_kaggle_dir

    simulate_kaggle_dir(
        args.out_dir, n_events=args.events, seed=args.seed, batch_size=args.batch_size, split=args.split,
        num_proc=args.num_proc, event_id_offset=args.event_id_offset,
    )


def _prepare(args):
    from .preparation import parse_batch_selection, prepare_kaggle

    batches = parse_batch_selection(args.batches) if args.batches else None
    dataset = prepare_kaggle(args.kaggle_dir, args.out_dir, split=args.split, batches=batches, num_proc=args.num_proc)
    print(f"wrote {len(dataset):,} events to {args.out_dir}")


def _linefit(args):
    from .linefit import linefit_kaggle_dir

    linefit_kaggle_dir(args.kaggle_dir, split=args.split, out=args.out)


def _evaluate(args):
    from .evaluation import evaluate_model

    evaluate_model(
        args.model, args.dataset, args.out, batch_size=args.batch_size, max_events=args.max_events,
        all_pulses=args.all_pulses, train_dataset=args.train_dataset,
    )


def _predict(args):
    from .prediction import predict_kaggle_dir

    predict_kaggle_dir(args.model, args.kaggle_dir, args.out, split=args.split, batch_size=args.batch_size)


def _quickstart(args):
    from .quickstart import run_quickstart

    run_quickstart(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polarbert", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    simulate = commands.add_parser("simulate", help="write simulated IceCube events in the Kaggle layout")
    simulate.add_argument("out_dir")
    simulate.add_argument("--events", type=int, required=True, help="number of events to write")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--batch-size", type=int, default=200_000, help="events per batch_N.parquet file")
    simulate.add_argument("--split", choices=["train", "test"], default="train")
    simulate.add_argument("--num-proc", type=int, default=1)
    simulate.add_argument("--event-id-offset", type=int, default=0,
                          help="added to every event id (to combine separately simulated directories)")
    simulate.set_defaults(handler=_simulate)

    prepare = commands.add_parser("prepare", help="convert a Kaggle-layout directory to a `datasets` dataset")
    prepare.add_argument("kaggle_dir")
    prepare.add_argument("out_dir")
    prepare.add_argument("--split", choices=["train", "test"], default="train")
    prepare.add_argument("--batches", help="batch ids to convert, e.g. 1-50,655 (default: all in the meta file)")
    prepare.add_argument("--num-proc", type=int, default=1)
    prepare.set_defaults(handler=_prepare)

    linefit = commands.add_parser("linefit", help="LineFit baseline directions (and its score if labelled)")
    linefit.add_argument("kaggle_dir")
    linefit.add_argument("--split", choices=["train", "test"], default="train")
    linefit.add_argument("--out", help="write event_id,azimuth,zenith to this CSV")
    linefit.set_defaults(handler=_linefit)

    evaluate = commands.add_parser(
        "evaluate", help="metrics and plots of a fine-tuned model on a prepared dataset, beside a baseline"
    )
    evaluate.add_argument("model", help="folder of a fine-tuned model: direction (beside LineFit), or regression / "
                          "classification (beside a log10(total charge) fit / the majority class)")
    evaluate.add_argument("dataset", help="folder written by `polarbert prepare` (with labels)")
    evaluate.add_argument("--out", required=True, help="folder for metrics.json and the PNG plots")
    evaluate.add_argument("--batch-size", type=int, default=256)
    evaluate.add_argument("--max-events", type=int, help="evaluate the first N events only")
    evaluate.add_argument("--all-pulses", action="store_true", help="use every pulse, not the first 127 selected")
    evaluate.add_argument("--train-dataset", help="regression/classification: fit the baseline on these prepared "
                          "events (default: 5-fold cross-validation on the evaluated events)")
    evaluate.set_defaults(handler=_evaluate)

    predict = commands.add_parser("predict", help="write a Kaggle submission (event_id, azimuth, zenith)")
    predict.add_argument("model")
    predict.add_argument("kaggle_dir")
    predict.add_argument("--split", choices=["train", "test"], default="test")
    predict.add_argument("--out", required=True)
    predict.add_argument("--batch-size", type=int, default=256)
    predict.set_defaults(handler=_predict)

    # The README's main job, reachable from an installed wheel; its options are the script's (one definition).
    from .quickstart import add_arguments  # light: the pipeline is imported when it runs

    quickstart = commands.add_parser("quickstart", help="the README's main job on simulated events (--small: seconds)")
    add_arguments(quickstart)
    quickstart.set_defaults(handler=_quickstart)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (ValueError, FileNotFoundError, KeyError) as error:
        print(f"polarbert {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
