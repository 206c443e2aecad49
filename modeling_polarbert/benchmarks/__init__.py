"""The throughput and memory benchmarks of docs/performance.md, one module per concern; `scripts/benchmark.py` and
`scripts/gpu_benchmark.py` are their doors.

- `results`: a measured row (`Result`), the table's header, the running list that writes JSON as it goes;
- `measuring`: timing, FLOPs of the useful work, peak memory, the GPU's busy share, the matmul rate;
- `batches`: the events, the model sizes, the collated batches of each batching (padded, random, grouped, packed);
- `model_steps`: training and inference steps of every variant (attention, compile, checks, checkpointing);
- `pipeline`: the collator with DataLoader workers, `Trainer` end to end, prediction over a dataset;
- `reference`: the public reference implementation (timinar/PolarBERT) on the same batches;
- `checks`: no host sync in a training step; packed equals padded, forward and backward;
- `throughput`: the benchmark's command line (`python scripts/benchmark.py ...`, or `python -m
  modeling_polarbert.benchmarks.throughput ...`);
- `gpu_benchmark`: every part of it in one time-budgeted run, each in its own process, and the report.
"""
