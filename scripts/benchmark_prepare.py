"""Benchmark `polarbert prepare` on one Kaggle-size batch against a plain pyarrow read + write.

Builds its own batch in a temporary directory: 200,000 events with Kaggle-like lengths (log-normal, median ~62,
mean ~160 pulses, so about 32 M pulses), written by pandas with `event_id` as the index, as Kaggle did. Then
times, best of `--repeat` runs each:

* plain: `pyarrow.parquet.read_table` of the batch file and writing the same columns as an Arrow stream file;
* prepare: `prepare_kaggle(dir, out, num_proc=1)` end to end (validation, list columns, the per-batch Arrow file,
  `save_to_disk`, loading the result back).

Arrow's thread pools are limited to `--threads` (default 1) for both, so this is a one-core figure.

    python scripts/benchmark_prepare.py [--events 200000] [--threads 1] [--repeat 2]
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from modeling_polarbert.preparation import convert_batch, inspect_kaggle, prepare_kaggle


def kaggle_like_lengths(rng: np.random.Generator, n_events: int) -> np.ndarray:
    """Pulses per event: log-normal with the Kaggle median (~62) and mean (~160), 2 to 100,000."""
    return np.clip(np.round(rng.lognormal(np.log(62), 1.38, n_events)), 2, 100_000).astype(np.int64)


def write_kaggle_batch(root: Path, n_events: int, seed: int = 0) -> int:
    """Write train/batch_1.parquet and train_meta.parquet; return the number of pulses."""
    rng = np.random.default_rng(seed)
    counts = kaggle_like_lengths(rng, n_events)
    n_pulses = int(counts.sum())
    event_ids = np.arange(n_events, dtype=np.int64) * 3 + 24  # Kaggle ids are increasing, not contiguous
    offsets = np.concatenate([[0], np.cumsum(counts)])
    # time-ordered pulses: an event start plus a running sum of small steps
    steps = rng.integers(0, 40, n_pulses)
    running = np.cumsum(steps)
    time = 6_000 + running - np.repeat(running[offsets[:-1]], counts)
    pulses = pd.DataFrame({
        "event_id": np.repeat(event_ids, counts),
        "sensor_id": rng.integers(0, 5160, n_pulses).astype(np.int16),
        "time": time.astype(np.int64),
        "charge": rng.integers(1, 200, n_pulses) * 0.025,
        "auxiliary": rng.random(n_pulses) < 0.6,
    })
    (root / "train").mkdir(parents=True)
    pulses.set_index("event_id").to_parquet(root / "train" / "batch_1.parquet")
    pd.DataFrame({
        "batch_id": np.ones(n_events, dtype=np.int64),
        "event_id": event_ids,
        "first_pulse_index": offsets[:-1],
        "last_pulse_index": offsets[1:] - 1,
        "azimuth": rng.uniform(0, 2 * np.pi, n_events),
        "zenith": rng.uniform(0, np.pi, n_events),
    }).to_parquet(root / "train_meta.parquet", index=False)
    return n_pulses


def plain_pyarrow(batch_path: Path, out_path: Path) -> None:
    table = pq.read_table(batch_path, columns=["event_id", "sensor_id", "time", "charge", "auxiliary"])
    with pa.OSFile(str(out_path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def best_time(function, repeat: int, cleanup=lambda: None) -> float:
    times = []
    for _ in range(repeat):
        cleanup()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    cleanup()
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=1, help="Arrow CPU and IO threads")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    pa.set_cpu_count(args.threads)
    pa.set_io_thread_count(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp) / "kaggle", Path(tmp) / "prepared"
        n_pulses = write_kaggle_batch(root, args.events)
        batch_path = root / "train" / "batch_1.parquet"
        print(f"batch: {args.events:,} events, {n_pulses:,} pulses, {batch_path.stat().st_size / 1e6:.0f} MB parquet")
        plain_pyarrow(batch_path, Path(tmp) / "warm.arrow")  # warm the page cache for both contestants

        plain = best_time(lambda: plain_pyarrow(batch_path, Path(tmp) / "plain.arrow"), args.repeat)
        source = inspect_kaggle(root)
        convert = best_time(lambda: convert_batch(source, 1), args.repeat)
        prepare = best_time(lambda: prepare_kaggle(root, out, progress=False), args.repeat,
                            cleanup=lambda: shutil.rmtree(out, ignore_errors=True))

    print(f"plain pyarrow read + write:        {plain:6.2f} s")
    print(f"convert_batch (read + validate):   {convert:6.2f} s")
    print(f"prepare_kaggle (end to end):       {prepare:6.2f} s  ({n_pulses / prepare / 1e6:.1f} M pulses/s)")
    print(f"ratio prepare / plain:             {prepare / plain:6.2f}x   (targets: < 10 s and <= 3x)")


if __name__ == "__main__":
    main()
