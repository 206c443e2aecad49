#!/usr/bin/env python
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
import contextlib
import json
import math
import resource
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modeling_polarbert import PolarBertConfig, PolarBertForDirection, PolarBertForMaskedDOM  # noqa: E402
from modeling_polarbert.diagnostics import count_host_syncs  # noqa: E402
from modeling_polarbert.collators import (  # noqa: E402
    PolarBertDirectionCollator,
    PolarBertPretrainingCollator,
    as_training_dataset,
)

MODELS = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256),
    "paper": dict(),  # PolarBertConfig's defaults: the paper's 8 M model
    # The largest model of the paper's scaling study (159 M parameters, trained there at batch 512).
    "159m": dict(hidden_size=1024, num_hidden_layers=12, num_attention_heads=16, intermediate_size=4096),
}
PARTS = ("train", "infer", "collator", "trainer", "predict", "reference", "checks")


@dataclass
class Result:
    what: str
    batching: str
    attention: str
    compiled: bool
    model: str = ""
    events_per_second: float = float("nan")
    ms_per_step: float = float("nan")
    peak_memory_mb: float = float("nan")
    mfu: float = float("nan")
    busy_share: float = float("nan")
    note: str = ""

    def row(self) -> str:
        def number(value, fmt):
            return "-" if value is None or math.isnan(value) else format(value, fmt)

        return (f"| {self.what} | {self.model} | {self.batching} | {self.attention} | "
                f"{'on' if self.compiled else 'off'} | {number(self.events_per_second, ',.0f')} | "
                f"{number(self.ms_per_step, '.1f')} | {number(self.peak_memory_mb, ',.0f')} | "
                f"{number(self.mfu, '.1%')} | {number(self.busy_share, '.0%')} | {self.note} |")


HEADER = ("| measured | model | batching | attention | compile | events/s | ms/step | peak memory (MB) | MFU | "
          "GPU busy | note |\n|---|---|---|---|---|---|---|---|---|---|---|")


# --------------------------------------------------------------------------------------------------------------
# Data, FLOPs, device helpers
# --------------------------------------------------------------------------------------------------------------


def simulated_dataset(n_events: int, seed: int):
    """An in-memory `datasets.Dataset` of simulated events, built as `polarbert prepare` builds it."""
    import tempfile

    from modeling_polarbert.preparation import load_kaggle
    from modeling_polarbert.simulation import simulate_kaggle_dir

    folder = Path(tempfile.mkdtemp(prefix="polarbert-benchmark-"))
    simulate_kaggle_dir(folder / "kaggle", n_events=n_events, seed=seed, batch_size=max(n_events, 1), progress=False)
    return load_kaggle(folder / "kaggle", "train")


def load_events(args):
    if args.dataset:
        from modeling_polarbert.loading import load_prepared_dataset

        return load_prepared_dataset(args.dataset)
    return simulated_dataset(args.events, seed=0)


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


def event_token_counts(batch: dict) -> torch.Tensor:
    """Tokens of each event (its pulses + its CLS token), padded or packed batch alike."""
    mask = batch["attention_mask"].cpu()
    if "cls_positions" not in batch:
        return mask.sum(dim=1).double() + 1
    is_cls = torch.zeros(mask.numel(), dtype=torch.long)
    is_cls[batch["cls_positions"].cpu()] = 1
    # event index of every token: CLS slots seen so far in the whole flattened batch
    event_of_token = is_cls.cumsum(0) - 1
    return torch.bincount(event_of_token[mask.reshape(-1).bool()], minlength=len(batch["cls_positions"])).double()


def model_flops(config: PolarBertConfig, batch: dict, training: bool) -> float:
    """FLOPs of the useful work of one step (real tokens only; padding counts as waste): 2 per multiply-add of the
    layers, attention and heads, times 3 for forward + backward."""
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    tokens_per_event = event_token_counts(batch)
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


class GpuBusySampler:
    """The GPU's busy share over a block: the mean of `torch.cuda.utilization()` (NVML's share of time in which a
    kernel was running), sampled every `interval` seconds from a thread. NaN on a CPU or without NVML."""

    def __init__(self, device: torch.device, interval: float = 0.05):
        self.device, self.interval, self.samples, self.share = device, interval, [], float("nan")
        self._stop = threading.Event()
        self._thread = None

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(torch.cuda.utilization(self.device))
            self._stop.wait(self.interval)

    def __enter__(self):
        if self.device.type == "cuda":
            try:
                torch.cuda.utilization(self.device)
            except Exception as error:  # no pynvml / NVML: report it, measure the rest
                print(f"GPU busy share not measured: {error}", file=sys.stderr)
                return self
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            if self.samples:
                self.share = float(np.mean(self.samples)) / 100
        return False


def make_batches(dataset, collator, batch_size: int, batching: str, count: int, seed: int, max_pulses: int):
    """`count` collated batches. padded: random events, every batch padded to max_pulses (what the paper did);
    random: random events, padded to the batch's longest; grouped: events of similar length together; packed:
    length-grouped events packed into rows without padding (the collator's `pack_length`)."""
    rng = np.random.default_rng(seed)
    lengths = np.asarray(dataset.lengths)
    if batching in ("grouped", "packed"):
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
        # flat indices move with the wider rows
        row, column = batch["masked_positions"] // (length - extra), batch["masked_positions"] % (length - extra)
        padded["masked_positions"] = row * length + column
    return padded


def time_steps(step, batches, device, warmup: int, time_limit: float) -> tuple[float, int, int]:
    """Seconds for the batches after `warmup` of them (stopping early past `time_limit` seconds), the number of
    events they held, and the number of timed steps."""
    for batch in batches[:warmup]:
        step(batch)
    synchronize(device)
    start, events, steps = time.perf_counter(), 0, 0
    for batch in batches[warmup:]:
        step(batch)
        events, steps = events + events_in(batch), steps + 1
        if time.perf_counter() - start > time_limit:
            break
    synchronize(device)
    return time.perf_counter() - start, events, steps


def events_in(batch: dict) -> int:
    return len(batch["cls_positions"]) if "cls_positions" in batch else len(batch["dom_ids"])


def benchmark_config(args, **overrides) -> PolarBertConfig:
    """The config of the model size `--model` names, as fast pretraining runs it (sparse prediction, no value checks)."""
    return PolarBertConfig(**{**MODELS[args.model], "sparse_prediction": True, "check_inputs": False, **overrides})


def collator_for(config, training: bool, batching: str, args, **kwargs):
    collator_class = PolarBertPretrainingCollator if training else PolarBertDirectionCollator
    pack_length = args.pack_length if batching == "packed" else None
    multiple = 8 if args.device.startswith("cuda") and batching != "packed" else None
    return collator_class(config, seed=0, pad_to_multiple_of=multiple, pack_length=pack_length, **kwargs)


def compile_count() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


# --------------------------------------------------------------------------------------------------------------
# Model steps
# --------------------------------------------------------------------------------------------------------------


def make_step(model, device, dtype, training: bool, compiled: bool, backend: str):
    autocast = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()
    forward = torch.compile(model, backend=backend) if compiled else model
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

    return step


def benchmark_model(args, config, batches, device, dtype, rate, training: bool, batching: str, attention: str,
                    compiled: bool, checkpointing: bool = False) -> Result:
    what = "pretraining step" if training else "direction inference"
    result = Result(what, batching, attention, compiled, model=args.model)
    notes = []
    if config.check_inputs:
        notes.append("check_inputs on")
    if checkpointing:
        notes.append("gradient checkpointing")
    model_class = PolarBertForMaskedDOM if training else PolarBertForDirection
    torch.manual_seed(0)
    model = model_class(config).to(device)
    try:
        model.set_attn_implementation(attention)
    except (ImportError, ValueError) as error:
        result.note = f"unavailable: {str(error).splitlines()[0][:60]}"
        return result
    if checkpointing:  # transformers >= 5.2x: activation_checkpointing_enable; before: gradient_checkpointing_enable
        getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)()
    step = make_step(model, device, dtype, training, compiled, args.compile_backend)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    graphs_before = compile_count()
    with GpuBusySampler(device) as busy:
        seconds, events, steps = time_steps(step, batches, device, args.warmup, args.time_limit)
    flops = sum(model_flops(config, batch, training) for batch in batches[args.warmup:args.warmup + steps])
    result.events_per_second = events / seconds
    result.ms_per_step = 1000 * seconds / steps
    result.peak_memory_mb = peak_memory_mb(device)
    result.mfu = flops / seconds / rate
    result.busy_share = busy.share
    if compiled:
        notes.append(f"{compile_count() - graphs_before} graph(s) compiled")
    if steps < len(batches) - args.warmup:
        notes.append(f"{steps} timed steps (time limit)")
    result.note = ", ".join(notes)
    return result


class Results(list):
    """The results so far; each one added is printed and, with `--json`, the file rewritten at once, so that a run
    stopped at its time limit still leaves what it measured."""

    def __init__(self, args, header: str):
        super().__init__()
        self.args, self.header = args, header

    def append(self, result: Result) -> None:
        super().append(result)
        print(result.row(), flush=True)
        if self.args.json:
            Path(self.args.json).write_text(json.dumps(
                {"header": self.header, "argv": self.args.argv, "results": [asdict(r) for r in self]}, indent=1))

    def extend(self, results) -> None:
        for result in results:
            self.append(result)


def run_model_variants(args, dataset, device, dtype, rate, results: Results) -> None:
    for training, name in ((True, "train"), (False, "infer")):
        if name not in args.parts:
            continue
        for batching in args.batching:
            cache = {}
            for attention in args.attention:
                for compile_option in args.compile:
                    for check_option in (args.check_inputs if training else ["off"]):
                        for checkpoint_option in (args.gradient_checkpointing if training else ["off"]):
                            config = benchmark_config(args, check_inputs=check_option == "on")
                            if batching not in cache:
                                collator = collator_for(config, training, batching, args)
                                batches = make_batches(dataset, collator, args.batch_size, batching,
                                                       args.steps + args.warmup, seed=1,
                                                       max_pulses=config.max_pulses)
                                cache[batching] = [to_device(batch, device, training) for batch in batches]
                            try:
                                results.append(benchmark_model(
                                    args, config, cache[batching], device, dtype, rate, training, batching,
                                    attention, compile_option == "on", checkpoint_option == "on"))
                            except (RuntimeError, NotImplementedError, ValueError) as error:
                                what = "pretraining step" if training else "direction inference"
                                results.append(Result(what, batching, attention, compile_option == "on",
                                                      model=args.model,
                                                      note=f"failed: {str(error).splitlines()[0][:80]}"))
                            if device.type == "cuda":
                                torch.cuda.empty_cache()


def to_device(batch: dict, device: torch.device, training: bool) -> dict:
    batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
    if not training:
        batch.pop("labels", None)
    return batch


# --------------------------------------------------------------------------------------------------------------
# The data pipeline, Trainer end to end, prediction over a dataset
# --------------------------------------------------------------------------------------------------------------


def benchmark_collator(dataset, config, batch_size: int, workers: int, batches: int, model: str) -> Result:
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
    return Result(f"collator, {workers} workers", "random", "-", False, model=model,
                  events_per_second=events / seconds, ms_per_step=1000 * seconds / batches)


def benchmark_trainer(args, dataset, device, batching: str) -> Result:
    """The real pretraining path: PolarBertTrainer + PolarBertPretrainingCollator (padded or packed) +
    length-grouped sampling + DataLoader workers, timed after `warmup` steps, with the GPU's busy share."""
    import tempfile

    from transformers import TrainerCallback, TrainingArguments

    from modeling_polarbert.trainer import PolarBertTrainer

    stamps = []

    class StepTimer(TrainerCallback):
        def on_step_end(self, training_args, state, control, **kwargs):
            synchronize(device)
            stamps.append(time.perf_counter())
            if len(stamps) == args.warmup:
                busy.__enter__()

    config = benchmark_config(args)
    torch.manual_seed(0)
    model = PolarBertForMaskedDOM(config)
    model.set_attn_implementation(args.trainer_attention)
    steps = args.trainer_steps + args.warmup
    training_args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="polarbert-benchmark-"), per_device_train_batch_size=args.batch_size,
        max_steps=steps, learning_rate=1e-4, bf16=device.type == "cuda", save_strategy="no",
        report_to="none", disable_tqdm=True, logging_steps=10_000, train_sampling_strategy="group_by_length",
        dataloader_num_workers=args.trainer_workers, dataloader_pin_memory=device.type == "cuda",
        dataloader_persistent_workers=args.trainer_workers > 0, use_cpu=device.type == "cpu",
        remove_unused_columns=False, torch_compile=args.trainer_compile, logging_nan_inf_filter=False,
        optim="adamw_torch_fused" if device.type == "cuda" else "adamw_torch",
    )
    collator = collator_for(config, True, batching, args)
    trainer = PolarBertTrainer(model=model, args=training_args, train_dataset=dataset, data_collator=collator,
                               callbacks=[StepTimer()])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    busy = GpuBusySampler(device)
    trainer.train()
    busy.__exit__(None, None, None)
    timed = len(stamps) - args.warmup
    seconds = stamps[-1] - stamps[args.warmup - 1]
    result = Result("Trainer pretraining, end to end", batching, args.trainer_attention, args.trainer_compile,
                    model=args.model)
    result.events_per_second = timed * args.batch_size / seconds
    result.ms_per_step = 1000 * seconds / timed
    result.peak_memory_mb = peak_memory_mb(device)
    result.busy_share = busy.share
    result.note = f"{args.trainer_workers} workers, {timed} steps after {args.warmup}"
    return result


def benchmark_prediction(args, dataset, device, dtype) -> Result:
    """Inference as `polarbert predict` runs it: every event of the dataset through the deterministic direction
    collator, DataLoader workers, the model in `dtype`."""
    from modeling_polarbert.prediction import predict_directions

    config = benchmark_config(args)
    torch.manual_seed(0)
    model = PolarBertForDirection(config).to(device, dtype).eval()
    model.set_attn_implementation(args.trainer_attention)
    subset = dataset.dataset.select(range(min(len(dataset), args.batch_size * 2)))
    predict_directions(model, subset, batch_size=args.predict_batch_size, progress=False)  # warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with GpuBusySampler(device) as busy:
        start = time.perf_counter()
        predictions = predict_directions(model, dataset.dataset, batch_size=args.predict_batch_size, progress=False,
                                         num_workers=args.trainer_workers)
        seconds = time.perf_counter() - start
    assert len(predictions["direction"]) == len(dataset)
    batches = math.ceil(len(dataset) / args.predict_batch_size)
    return Result("prediction over the whole dataset", "in order", args.trainer_attention, False, model=args.model,
                  events_per_second=len(dataset) / seconds, ms_per_step=1000 * seconds / batches,
                  peak_memory_mb=peak_memory_mb(device), busy_share=busy.share,
                  note=f"{len(dataset):,} events, batch {args.predict_batch_size}, {args.trainer_workers} workers, "
                       f"{str(dtype).replace('torch.', '')}")


# --------------------------------------------------------------------------------------------------------------
# The reference implementation (timinar/PolarBERT), same batches, same device
# --------------------------------------------------------------------------------------------------------------


def load_script(name: str):
    """A sibling script as a module, loaded from its file (scripts/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"scripts_{name}", Path(__file__).resolve().parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def benchmark_reference(args, dataset, device, dtype) -> list:
    reference_harness = load_script("reference_harness")

    config = benchmark_config(args)
    try:
        model = reference_harness.build_reference(config, Path(args.reference))
    except (FileNotFoundError, ImportError) as error:
        return [Result("reference (timinar/PolarBERT) step", "padded", "sdpa", False, model=args.model,
                       note=f"not run: {error}")]
    dict_inputs = reference_harness._uses_dict_inputs(model)
    collator = PolarBertPretrainingCollator(config, seed=0)
    ours = make_batches(dataset, collator, args.batch_size, "padded", args.steps + args.warmup, seed=1,
                        max_pulses=config.max_pulses)
    batches = [reference_harness.reference_batch(b, b["total_charge"], config.max_pulses, dict_inputs) for b in ours]
    parameters = sum(p.numel() for p in model.parameters())
    results = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with GpuBusySampler(device) as busy:
        seconds, events = reference_harness.time_reference_steps(model, batches, device, args.warmup, dtype)
    results.append(Result("reference (timinar/PolarBERT) step", "padded", "sdpa", False, model=args.model,
                          events_per_second=events / seconds,
                          ms_per_step=1000 * seconds / (len(batches) - args.warmup),
                          peak_memory_mb=peak_memory_mb(device), busy_share=busy.share,
                          note=f"{parameters / 1e6:.1f} M parameters; its step: dense DOM logits, in-model masking"))
    model = reference_harness.build_reference(config, Path(args.reference))
    precision = "bf16-mixed" if dtype == torch.bfloat16 else "32-true"
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        with GpuBusySampler(device) as busy:
            seconds, events = reference_harness.time_reference_fit(model, batches, device, args.warmup, precision)
        results.append(Result("reference (timinar/PolarBERT) Lightning fit", "padded", "sdpa", False,
                              model=args.model, events_per_second=events / seconds,
                              ms_per_step=1000 * seconds / (len(batches) - args.warmup),
                              peak_memory_mb=peak_memory_mb(device), busy_share=busy.share,
                              note=f"{precision}, batches prepared in memory (its data loading not counted)"))
    except Exception as error:  # its Lightning version may differ from what it was written for
        results.append(Result("reference (timinar/PolarBERT) Lightning fit", "padded", "sdpa", False,
                              model=args.model, note=f"failed: {str(error).splitlines()[0][:80]}"))
    return results


# --------------------------------------------------------------------------------------------------------------
# Checks: no host sync in a training step; packed equals padded (forward and backward)
# --------------------------------------------------------------------------------------------------------------


def check_no_host_sync(args, dataset, device, dtype, batching: str, attention: str) -> Result:
    """One training step (forward, backward, AdamW) under `torch.cuda.set_sync_debug_mode("error")` on a GPU
    (which raises at any synchronisation), or with the host-sync ops counted on a CPU (forward and backward)."""
    config = benchmark_config(args)
    result = Result("check: no host sync in a training step", batching, attention, False, model=args.model)
    batches = [to_device(b, device, True) for b in make_batches(
        dataset, collator_for(config, True, batching, args), min(args.batch_size, 256), batching, 3, seed=2,
        max_pulses=config.max_pulses)]
    torch.manual_seed(0)
    model = PolarBertForMaskedDOM(config).to(device)
    model.set_attn_implementation(attention)
    if device.type == "cuda":
        step = make_step(model, device, dtype, True, False, args.compile_backend)
        for batch in batches[:2]:  # lazy initialisation (cuBLAS handles, the optimizer's state) happens here
            step(batch)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            step(batches[2])
            result.note = "passed: set_sync_debug_mode('error') raised nothing"
        except RuntimeError as error:
            result.note = f"FAILED: {str(error).splitlines()[0][:90]}"
        finally:
            torch.cuda.set_sync_debug_mode("default")
            torch.cuda.synchronize()
    else:
        model.train()
        calls = count_host_syncs(lambda batch: model(**batch).loss.backward(), batches[2])
        result.note = "passed: no host-sync op counted" if not calls else f"FAILED: {sorted(set(calls))}"
    return result


def check_packed_equals_padded(args, dataset, device, attention: str) -> Result:
    """Loss and gradients of the packed batch against the padded batch of the same events, float32."""
    config = benchmark_config(args)
    result = Result("check: packed = padded, forward + backward", "packed", attention, False, model=args.model)
    lengths = np.asarray(dataset.lengths)
    indices = np.argsort(lengths, kind="stable")[:: max(len(lengths) // 64, 1)][:64].tolist()  # all lengths
    rows = dataset.__getitems__(indices)
    padded = to_device(PolarBertPretrainingCollator(config, seed=0)(rows), device, True)
    packed = to_device(PolarBertPretrainingCollator(config, seed=0, pack_length=args.pack_length)(rows), device, True)
    torch.manual_seed(0)
    model = PolarBertForMaskedDOM(config).to(device).train()
    model.set_attn_implementation(attention)
    cuda = device.type == "cuda"
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32 if cuda else False
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 products, so that the comparison is tight
    try:
        outputs = {}
        for name, batch in (("padded", padded), ("packed", packed)):
            model.zero_grad()
            loss = model(**batch).loss
            loss.backward()
            outputs[name] = (loss.detach(), {n: p.grad.detach().clone() for n, p in model.named_parameters()})
    except (RuntimeError, NotImplementedError) as error:
        result.note = f"not run: {str(error).splitlines()[0][:80]}"
        return result
    finally:
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
    loss_difference = (outputs["packed"][0] - outputs["padded"][0]).abs().item()
    # Relative to the norm of the whole gradient: some parameters' gradients are zero up to rounding (a key bias
    # shifts every score of a row alike, which the softmax ignores), so their own relative differences mean nothing.
    padded_gradient = torch.cat([g.flatten() for g in outputs["padded"][1].values()])
    packed_gradient = torch.cat([g.flatten() for g in outputs["packed"][1].values()])
    gradient_difference = ((packed_gradient - padded_gradient).norm() / padded_gradient.norm()).item()
    largest = max((outputs["packed"][1][n] - g).abs().max().item() for n, g in outputs["padded"][1].items())
    largest /= padded_gradient.abs().max().item()
    passed = loss_difference < 1e-4 and gradient_difference < 1e-4 and largest < 1e-4
    result.note = (f"{'passed' if passed else 'FAILED'}: loss difference {loss_difference:.1e}, gradient "
                   f"difference {gradient_difference:.1e} of its norm, largest element difference {largest:.1e} of "
                   f"the largest element ({len(indices)} events, {len(packed['dom_ids'])} packed rows of "
                   f"{args.pack_length})")
    return result


# --------------------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------------------


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
    parser.add_argument("--reference", default=str(Path(__file__).resolve().parent.parent / "reference"),
                        help="the copy of timinar/PolarBERT (see scripts/reference_harness.py)")
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
    dataset = as_training_dataset(load_events(args))
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
