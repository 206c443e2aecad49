"""Throughput and memory of PolarBERT: training and inference steps across attention implementations, batching
(padded to 128 / random batches padded to their longest event / length-grouped / packed without padding),
torch.compile on and off, the model's value checks on and off, gradient checkpointing, the whole `Trainer` path
with the real collators, prediction over a prepared dataset, the collator alone with 0..N DataLoader workers, the
public reference implementation on the same batches, and two correctness checks of the fast paths (no host sync
in a training step; packed equal to padded, forward and backward).

    python scripts/benchmark.py --device cuda --model paper --batch-size 2048          # the 8 M model on a GPU
    python scripts/benchmark.py --device cuda --model 159m --batch-size 512 --gradient-checkpointing off on
    python scripts/benchmark.py --device cpu --model tiny --events 4000 --batch-size 128  # what CI can run

`scripts/gpu_benchmark.py` runs all of it in one time-budgeted pass (the GPU measurement of docs/performance.md).
Events come from the project's simulator (Kaggle-like length distribution), or from `--dataset`, a folder written
by `polarbert prepare`. Prints one markdown table; `--json` writes the results as JSON too.
"""

import argparse
import sys

import numpy as np
import torch

from ..modeling_polarbert import PolarBertForMaskedDOM
from ..pulse_dataset import as_pulse_dataset
from .batches import MODELS, benchmark_config, load_events
from .checks import check_no_host_sync, check_packed_equals_padded
from .measuring import matmul_rate
from .model_steps import run_model_variants
from .pipeline import benchmark_collator, benchmark_prediction, benchmark_trainer
from .reference import REFERENCE_DIR, benchmark_reference
from .results import HEADER, Result, Results


PARTS = ("train", "infer", "collator", "trainer", "predict", "reference", "checks")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", choices=sorted(MODELS), default="paper")
    parser.add_argument("--events", type=int, default=50_000, help="simulated events to draw batches from")
    parser.add_argument("--dataset", help="a folder written by `polarbert prepare`, instead of simulating")
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds of timed steps per variant at most")
    gpu = torch.cuda.is_available()
    parser.add_argument("--attention", nargs="+",
                        default=["sdpa", "eager", "flex_attention"] + (["flash_attention_2"] if gpu else []))
    parser.add_argument("--batching", nargs="+", default=["padded", "random", "grouped"],
                        choices=["padded", "random", "grouped", "packed"])
    parser.add_argument("--pack-length", type=int, default=1024, help="tokens per row of packed batches")
    parser.add_argument("--compile", nargs="+", choices=["off", "on"], default=["off", "on"] if gpu else ["off"])
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument("--check-inputs", nargs="+", choices=["off", "on"], default=["off"],
                        help="the model's value checks (config.check_inputs), each a host sync on a GPU")
    parser.add_argument("--gradient-checkpointing", nargs="+", choices=["off", "on"], default=["off"])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2, 4, 8])
    parser.add_argument("--trainer-workers", type=int, default=4)
    parser.add_argument("--trainer-steps", type=int, default=None, help="timed Trainer steps (default --steps)")
    parser.add_argument("--trainer-batching", nargs="+", default=["grouped"], choices=["grouped", "packed"])
    parser.add_argument("--trainer-attention", default="sdpa")
    parser.add_argument("--trainer-compile", action="store_true")
    parser.add_argument("--predict-batch-size", type=int, default=4096)
    parser.add_argument("--reference", default=str(REFERENCE_DIR),
                        help="the copy of timinar/PolarBERT (default: reference/ of the working directory; see "
                             "modeling_polarbert/benchmarks/reference.py)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=["train", "infer", "collator", "trainer"])
    parser.add_argument("--skip", nargs="*", default=[], choices=PARTS)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.parts = [part for part in args.parts if part not in args.skip]
    args.trainer_steps = args.trainer_steps or args.steps
    if args.warmup < 1:
        parser.error("--warmup must be at least 1")
    return args


def guarded(what: str, args, function, *arguments) -> Result:
    """function(*arguments), or a row saying how it failed: one broken variant must not cost the others."""
    try:
        return function(*arguments)
    except Exception as error:
        return Result(what, "-", "-", False, model=args.model, note=f"failed: {str(error).splitlines()[0][:90]}")


def main(argv=None) -> list[Result]:
    args = parse_args(argv)
    device = torch.device(args.device)
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32
    dataset = as_pulse_dataset(load_events(args))
    rate = matmul_rate(device, dtype)
    parameters = PolarBertForMaskedDOM(benchmark_config(args)).num_parameters()
    header = (f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}), {dtype}, "
              f"matmul rate {rate / 1e12:.1f} TFLOP/s; model {args.model} ({parameters / 1e6:.1f} M parameters); "
              f"batch {args.batch_size}; {len(dataset):,} events, median {np.median(dataset.lengths):.0f} pulses; "
              f"torch {torch.__version__}")
    print(header, flush=True)

    results = Results(args, header)
    run_model_variants(args, dataset, device, dtype, rate, results)
    if "collator" in args.parts:
        for workers in args.workers:
            results.append(benchmark_collator(dataset, benchmark_config(args), args.batch_size, workers, args.steps,
                                              args.model))
    if "trainer" in args.parts:
        for batching in args.trainer_batching:
            results.append(guarded(f"Trainer pretraining ({batching})", args,
                                   benchmark_trainer, args, dataset, device, batching))
    if "predict" in args.parts:
        results.append(guarded("prediction", args, benchmark_prediction, args, dataset, device, dtype))
    if "reference" in args.parts:
        try:
            results.extend(benchmark_reference(args, dataset, device, dtype))
        except Exception as error:  # its code is not ours: report how it failed
            results.append(Result("reference (timinar/PolarBERT) step", "padded", "sdpa", False, model=args.model,
                                  note=f"failed: {str(error).splitlines()[0][:90]}"))
    if "checks" in args.parts:
        for batching, attention in (("grouped", "sdpa"), ("packed", "sdpa"), ("packed", "flex_attention")):
            if attention in args.attention:
                results.append(guarded(f"check: no host sync ({batching}, {attention})", args,
                                       check_no_host_sync, args, dataset, device, dtype, batching, attention))
        for attention in ("sdpa", "flex_attention"):
            if attention in args.attention:
                results.append(guarded(f"check: packed = padded ({attention})", args,
                                       check_packed_equals_padded, args, dataset, device, attention))
    print()
    print(HEADER)
    for result in results:
        print(result.row())
    return list(results)


if __name__ == "__main__":
    main()
