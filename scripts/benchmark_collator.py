"""Benchmark the collators: events/s of shuffled batches from a saved dataset, fetching the rows included.

Builds its own dataset with numpy (Kaggle-like lengths: log-normal, median ~62, mean ~160 pulses, long tail),
saves it with `save_to_disk` and loads it back memory-mapped, as training does. Then times

* fast path: `DataLoader(as_pulse_dataset(ds), batch_size=512, shuffle=True, collate_fn=collator)`;
* row path: `DataLoader(ds, batch_size=512, shuffle=True, collate_fn=collator)` over the plain `datasets` object
  (what `Trainer` builds from a `datasets.Dataset`; rows formatted one by one as Python lists);
* the fast path's two halves separately: gathering (`__getitems__`) and collating a gathered batch.

One process, torch limited to one thread: a one-core figure.

    python scripts/benchmark_collator.py [--events 200000] [--batches 100]
"""

import argparse
import tempfile
import time

import datasets
import numpy as np
import pyarrow as pa
import torch

from modeling_polarbert.collators import PolarBertDirectionCollator, PolarBertPretrainingCollator
from modeling_polarbert.pulse_dataset import as_pulse_dataset
from modeling_polarbert.configuration_polarbert import PolarBertConfig
from modeling_polarbert.preparation import BASE_FIELDS


def kaggle_like_dataset(n_events: int, seed: int = 0) -> datasets.Dataset:
    """An in-memory dataset with the schema of `polarbert prepare` and Kaggle-like pulse counts."""
    rng = np.random.default_rng(seed)
    counts = np.clip(np.round(rng.lognormal(np.log(62), 1.38, n_events)), 2, 100_000).astype(np.int32)
    n_pulses = int(counts.sum())
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    running = np.cumsum(rng.integers(0, 40, n_pulses))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    time_values = (6_000 + running - np.repeat(running[starts], counts)).astype(np.int32)
    columns = {
        "event_id": pa.array(np.arange(n_events, dtype=np.int64)),
        "batch_id": pa.array(np.ones(n_events, dtype=np.int32)),
        "sensor_id": pa.ListArray.from_arrays(offsets, pa.array(rng.integers(0, 5160, n_pulses).astype(np.int16))),
        "time": pa.ListArray.from_arrays(offsets, pa.array(time_values)),
        "charge": pa.ListArray.from_arrays(offsets, pa.array((rng.integers(1, 200, n_pulses) * 0.025)
                                                             .astype(np.float32))),
        "auxiliary": pa.ListArray.from_arrays(offsets, pa.array(rng.random(n_pulses) < 0.6)),
        "n_pulses": pa.array(counts),
    }
    fields = BASE_FIELDS + [pa.field("azimuth", pa.float64()), pa.field("zenith", pa.float64())]
    columns["azimuth"] = pa.array(rng.uniform(0, 2 * np.pi, n_events))
    columns["zenith"] = pa.array(rng.uniform(0, np.pi, n_events))
    table = pa.Table.from_arrays([columns[f.name] for f in fields], schema=pa.schema(fields))
    return datasets.Dataset(table)


def events_per_second(loader, n_batches: int) -> float:
    iterator = iter(loader)
    next(iterator)  # warm-up: the first batch builds lazy views and starts the sampler
    events, start = 0, time.perf_counter()
    for _, batch in zip(range(n_batches), iterator):
        events += batch["dom_ids"].shape[0]
    return events / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--batches", type=int, default=100, help="timed batches on the fast path")
    parser.add_argument("--row-batches", type=int, default=10, help="timed batches on the (slow) row path")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = PolarBertConfig()

    with tempfile.TemporaryDirectory() as tmp:
        kaggle_like_dataset(args.events).save_to_disk(tmp)
        dataset = datasets.load_from_disk(tmp)
        lengths = np.asarray(dataset["n_pulses"])
        print(f"dataset: {len(dataset):,} events, {lengths.sum():,} pulses, median {np.median(lengths):.0f}, "
              f"mean {lengths.mean():.0f}, max {lengths.max():,}; batch size {args.batch_size}")
        fast = as_pulse_dataset(dataset)

        results = {}
        for name, collator in [("pretraining", PolarBertPretrainingCollator(config, seed=0)),
                               ("direction", PolarBertDirectionCollator(config, seed=0)),
                               ("pretraining, deterministic", PolarBertPretrainingCollator(config, deterministic=True))]:
            loader = torch.utils.data.DataLoader(fast, batch_size=args.batch_size, shuffle=True, collate_fn=collator)
            results[f"fast path, {name}"] = events_per_second(loader, args.batches)

        rng = np.random.default_rng(0)
        draws = [rng.choice(len(dataset), args.batch_size, replace=False) for _ in range(args.batches)]
        start = time.perf_counter()
        gathered = [fast.__getitems__(indices) for indices in draws]
        results["fast path, gathering only"] = args.batches * args.batch_size / (time.perf_counter() - start)
        collator = PolarBertPretrainingCollator(config, seed=0)
        start = time.perf_counter()
        for batch in gathered:
            collator(batch)
        results["pretraining collator only"] = args.batches * args.batch_size / (time.perf_counter() - start)

        loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                                             collate_fn=PolarBertPretrainingCollator(config, seed=0))
        results["row path (datasets rows), pretraining"] = events_per_second(loader, args.row_batches)

    for name, rate in results.items():
        print(f"{name:42s} {rate:10,.0f} events/s")


if __name__ == "__main__":
    main()
