"""Measuring a step: wall-clock time of timed steps after a warm-up, FLOPs of the useful work (real tokens only), the
matmul rate that turns them into a model FLOPs utilisation, peak memory, and the GPU's busy share."""

import resource
import sys
import threading
import time

import numpy as np
import torch

from ..configuration_polarbert import PolarBertConfig


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


def compile_count() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])
