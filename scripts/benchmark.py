#!/usr/bin/env python
"""Throughput and memory of PolarBERT: training and inference steps across attention implementations, batching
(padded to 128 / random batches padded to their longest event / length-grouped), torch.compile on and off, the
whole `Trainer` path with the real collators, and the collator alone with 1..N DataLoader workers.

    python scripts/benchmark.py --device cuda --model paper --batch-size 2048          # the 8 M model on a GPU
    python scripts/benchmark.py --device cuda --model 159m --batch-size 512
    python scripts/benchmark.py --device cpu --model tiny --events 4000 --batch-size 128  # what CI can run

Events come from the project's simulator (Kaggle-like length distribution). Prints one markdown table; paste it,
with the command, device and date, into docs/performance.md. GPU-only variants (bf16, flash attention, compile
on CPU) are skipped where they cannot run, with the reason in the table.
"""

import argparse
import contextlib
import math
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modeling_polarbert import PolarBertConfig, PolarBertForDirection, PolarBertForMaskedDOM  # noqa: E402
from modeling_polarbert.collators import (  # noqa: E402
    PolarBertDirectionCollator,
    PolarBertPretrainingCollator,
    as_training_dataset,
)

MODELS = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256),
    "paper": dict(),  # PolarBertConfig's defaults: the paper's 8 M model
    # The largest model of the paper's scaling study (159 M parameters).
    "159m": dict(hidden_size=1024, num_hidden_layers=12, num_attention_heads=16, intermediate_size=4096),
}


@dataclass
class Result:
    what: str
    batching: str
    attention: str
    compiled: bool
    events_per_second: float = float("nan")
    ms_per_step: float = float("nan")
    peak_memory_mb: float = float("nan")
    mfu: float = float("nan")
    note: str = ""

    def row(self) -> str:
        def number(value, fmt):
            return "-" if math.isnan(value) else format(value, fmt)

        return (f"| {self.what} | {self.batching} | {self.attention} | {'on' if self.compiled else 'off'} | "
                f"{number(self.events_per_second, ',.0f')} | {number(self.ms_per_step, '.1f')} | "
                f"{number(self.peak_memory_mb, ',.0f')} | {number(self.mfu, '.1%')} | {self.note} |")


HEADER = ("| measured | batching | attention | compile | events/s | ms/step | peak memory (MB) | MFU | note |\n"
          "|---|---|---|---|---|---|---|---|---|")


def simulated_dataset(n_events: int, seed: int):
    """An in-memory `datasets.Dataset` of simulated events, built as `polarbert prepare` builds it."""
    import tempfile

    from modeling_polarbert.preparation import load_kaggle
    from modeling_polarbert.simulation import simulate_kaggle_dir

    folder = Path(tempfile.mkdtemp(prefix="polarbert-benchmark-"))
    simulate_kaggle_dir(folder / "kaggle", n_events=n_events, seed=seed, batch_size=max(n_events, 1))
    return load_kaggle(folder / "kaggle", "train")


def matmul_rate(device: torch.device, dtype: torch.dtype) -> float:
    """Measured FLOP/s of a large matrix product: the denominator of the model FLOPs utilisation."""
    size = 8192 if device.type == "cuda" else 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    synchronize(device)
    repeats = 20 if device.type == "cuda" else 5
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def model_flops(config: PolarBertConfig, batch: dict, training: bool) -> float:
    """FLOPs of the useful work of one step (real tokens only; padding counts as waste): 2 per multiply-add of the
    layers, attention and heads, times 3 for forward + backward."""
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    tokens_per_event = batch["attention_mask"].sum(dim=1).double() + 1  # + CLS
    tokens = tokens_per_event.sum().item()
    attention = 2 * 2 * (tokens_per_event**2).sum().item() * h
    forward = layers * (2 * tokens * (4 * h * h + 2 * h * i) + attention)
    labels = batch.get("labels")
    if labels is not None and labels.dim() == 2:  # pretraining, sparse prediction: masked pulses only
        forward += 2 * (labels != -100).sum().item() * h * config.num_doms
    else:
        forward += 2 * len(tokens_per_event) * (h + 3) * config.direction_head_hidden_size  # h -> hidden -> 3
    return forward * (3 if training else 1)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process's peak RSS


def make_batches(dataset, collator, batch_size: int, batching: str, count: int, seed: int, max_pulses: int):
    """`count` collated batches. padded: random events, every batch padded to max_pulses (what the paper did);
    random: random events, padded to the batch's longest; grouped: events of similar length together."""
    rng = np.random.default_rng(seed)
    lengths = np.asarray(dataset.lengths)
    if batching == "grouped":
        order = np.argsort(lengths + rng.random(len(lengths)), kind="stable")
        starts = rng.choice(max(len(order) - batch_size, 1), size=count)
        index_sets = [order[s:s + batch_size] for s in starts]
    else:
        index_sets = [rng.choice(len(lengths), size=min(batch_size, len(lengths)), replace=False) for _ in range(count)]
    batches = []
    for indices in index_sets:
        batch = collator(dataset.__getitems__(indices.tolist()))
        if batching == "padded":
            batch = pad_to(batch, max_pulses, collator.config)
        batches.append(batch)
    return batches


def pad_to(batch: dict, length: int, config: PolarBertConfig) -> dict:
    extra = length - batch["dom_ids"].shape[1]
    if extra <= 0:
        return batch
    pad = torch.nn.functional.pad
    padded = dict(batch)
    padded["dom_ids"] = pad(batch["dom_ids"], (0, extra), value=config.pad_token_id)
    padded["features"] = pad(batch["features"], (0, 0, 0, extra))
    padded["attention_mask"] = pad(batch["attention_mask"], (0, extra))
    if "labels" in batch and batch["labels"].dim() == 2:
        padded["labels"] = pad(batch["labels"], (0, extra), value=-100)
    return padded


def time_steps(step, batches, device, warmup: int) -> tuple[float, int]:
    """Seconds for the batches after `warmup` of them, and the number of events they held."""
    for batch in batches[:warmup]:
        step(batch)
    synchronize(device)
    start = time.perf_counter()
    for batch in batches[warmup:]:
        step(batch)
    synchronize(device)
    return time.perf_counter() - start, sum(len(batch["dom_ids"]) for batch in batches[warmup:])


def benchmark_model(args, config, dataset, device, dtype, rate, training: bool, batching: str, attention: str,
                    compiled: bool) -> Result:
    what = "pretraining step" if training else "direction inference"
    result = Result(what, batching, attention, compiled)
    model_class = PolarBertForMaskedDOM if training else PolarBertForDirection
    torch.manual_seed(0)
    model = model_class(config).to(device)
    try:
        model.set_attn_implementation(attention)
    except (ImportError, ValueError) as error:
        result.note = f"unavailable: {str(error).splitlines()[0][:60]}"
        return result
    collator_class = PolarBertPretrainingCollator if training else PolarBertDirectionCollator
    collator = collator_class(config, seed=0, pad_to_multiple_of=8 if device.type == "cuda" else None)
    batches = make_batches(dataset, collator, args.batch_size, batching, args.steps + args.warmup, seed=1,
                           max_pulses=config.max_pulses + 1)
    batches = [{k: v.to(device, non_blocking=True) for k, v in batch.items()} for batch in batches]
    if not training:
        for batch in batches:
            batch.pop("labels", None)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()
    forward = torch.compile(model, dynamic=True) if compiled else model
    if training:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
        model.train()

        def step(batch):
            with autocast:
                loss = forward(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    else:
        model.eval()

        @torch.inference_mode()
        def step(batch):
            with autocast:
                forward(**batch)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds, events = time_steps(step, batches, device, args.warmup)
    flops = sum(model_flops(config, batch, training) for batch in batches[args.warmup:])
    result.events_per_second = events / seconds
    result.ms_per_step = 1000 * seconds / args.steps
    result.peak_memory_mb = peak_memory_mb(device)
    result.mfu = flops / seconds / rate
    return result


def benchmark_collator(dataset, config, batch_size: int, workers: int, batches: int) -> Result:
    """The data pipeline alone: DataLoader over the Arrow fast path (`dataset`) with the pretraining collator."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         collate_fn=PolarBertPretrainingCollator(config, seed=0))
    events, start, iterator = 0, None, iter(loader)
    for number in range(batches + 1):
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            batch = next(iterator)
        if number == 0:  # the first batch pays the workers' start-up
            start = time.perf_counter()
            continue
        events += len(batch["dom_ids"])
    seconds = time.perf_counter() - start
    return Result(f"collator, {workers} workers", "random", "-", False, events / seconds, 1000 * seconds / batches)


def benchmark_trainer(args, config, dataset, device, rate) -> Result:
    """The real pretraining path: PolarBertTrainer + PolarBertPretrainingCollator + length-grouped sampling."""
    import tempfile

    from transformers import TrainingArguments

    from modeling_polarbert.training import PolarBertTrainer

    torch.manual_seed(0)
    model = PolarBertForMaskedDOM(config)
    model.set_attn_implementation("sdpa")
    training_args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="polarbert-benchmark-"), per_device_train_batch_size=args.batch_size,
        max_steps=args.steps + args.warmup, learning_rate=1e-4, bf16=device.type == "cuda", save_strategy="no",
        report_to="none", disable_tqdm=True, logging_steps=10_000, train_sampling_strategy="group_by_length",
        dataloader_num_workers=args.trainer_workers, dataloader_pin_memory=device.type == "cuda",
        use_cpu=device.type == "cpu", remove_unused_columns=False, torch_compile=args.trainer_compile,
        optim="adamw_torch_fused" if device.type == "cuda" else "adamw_torch",
    )
    trainer = PolarBertTrainer(model=model, args=training_args, train_dataset=dataset,
                               data_collator=PolarBertPretrainingCollator(config, seed=0))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    metrics = trainer.train().metrics
    result = Result("Trainer pretraining, end to end", "grouped", "sdpa", args.trainer_compile)
    result.events_per_second = metrics["train_samples_per_second"]
    result.ms_per_step = 1000 * metrics["train_runtime"] / (args.steps + args.warmup)
    result.peak_memory_mb = peak_memory_mb(device)
    result.note = "includes start-up and warm-up steps"
    return result


def main(argv=None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", choices=sorted(MODELS), default="paper")
    parser.add_argument("--events", type=int, default=50_000, help="simulated events to draw batches from")
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3)
    gpu = torch.cuda.is_available()
    parser.add_argument("--attention", nargs="+",
                        default=["sdpa", "eager", "flex_attention"] + (["flash_attention_2"] if gpu else []))
    parser.add_argument("--batching", nargs="+", default=["padded", "random", "grouped"])
    parser.add_argument("--compile", nargs="+", choices=["off", "on"], default=["off", "on"] if gpu else ["off"])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2, 4, 8])
    parser.add_argument("--trainer-workers", type=int, default=4)
    parser.add_argument("--trainer-compile", action="store_true")
    parser.add_argument("--skip", nargs="*", default=[], choices=["train", "infer", "collator", "trainer"])
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32
    config = PolarBertConfig(**MODELS[args.model], sparse_prediction=True)
    dataset = as_training_dataset(simulated_dataset(args.events, seed=0))
    rate = matmul_rate(device, dtype)
    parameters = PolarBertForMaskedDOM(config).num_parameters()
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}), {dtype}, "
          f"matmul rate {rate / 1e12:.1f} TFLOP/s; model {args.model} ({parameters / 1e6:.1f} M parameters); "
          f"batch {args.batch_size}; {len(dataset):,} simulated events, median {np.median(dataset.lengths):.0f} "
          f"pulses")

    results = []
    for training, name in ((True, "train"), (False, "infer")):
        if name in args.skip:
            continue
        for batching in args.batching:
            for attention in args.attention:
                for compile_option in args.compile:
                    compiled = compile_option == "on"
                    if compiled and device.type != "cuda":
                        results.append(Result("pretraining step" if training else "direction inference", batching,
                                              attention, True, note="skipped: compile is measured on GPUs"))
                        continue
                    try:
                        results.append(benchmark_model(args, config, dataset, device, dtype, rate, training,
                                                       batching, attention, compiled))
                    except (RuntimeError, NotImplementedError) as error:  # e.g. flex attention backward on CPU
                        results.append(Result("pretraining step" if training else "direction inference", batching,
                                              attention, compiled, note=f"failed: {str(error).splitlines()[0][:70]}"))
                    print(results[-1].row(), flush=True)
    if "collator" not in args.skip:
        for workers in args.workers:
            results.append(benchmark_collator(dataset, config, args.batch_size, workers, batches=args.steps))
            print(results[-1].row(), flush=True)
    if "trainer" not in args.skip:
        results.append(benchmark_trainer(args, config, dataset, device, rate))
    print()
    print(HEADER)
    for result in results:
        print(result.row())
    return results


if __name__ == "__main__":
    main()
