"""The GPU measurement of docs/performance.md in one run that ends within its time budget (8 minutes by default).

    bash scripts/gpu_benchmark.sh                      # on the GPU machine: installs carried wheels, then this
    python scripts/gpu_benchmark.py --out runs/gpu_benchmark
    python scripts/gpu_benchmark.py --tiny --device cpu --out /tmp/gpu_benchmark --in-process   # what CI runs

1. Makes its own data: `polarbert simulate --num-proc P` (P = the machine's cores), then `polarbert prepare`.
2. Runs the parts of `scripts/benchmark.py` (`throughput`) below, most important first, each in its own process under its own
   time limit and never past the overall deadline (a part cut short is reported as such, the rest still runs):
   training steps (sdpa / flex / eager / flash where installed x padded / grouped / packed), `Trainer` end to end
   (real collator, DataLoader workers, length grouping; padded and packed) with the GPU's busy share, the reference
   implementation (timinar/PolarBERT, if its copy is in reference/), the checks (no host sync in a step, packed =
   padded forward and backward, the cost of `check_inputs`), prediction over the whole prepared dataset, the 159 M
   model with and without gradient checkpointing, torch.compile, inference steps, the collator with 1..16 workers.
3. Writes OUT/gpu_benchmark.md (a summary against the targets, then every row), OUT/gpu_benchmark.json and
   OUT/gpu_benchmark.log (every part's output); the data and the parts' own files go to WORK.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from .results import HEADER, Result


# Each part runs the benchmark's command line in its own process (scripts/benchmark.py is its door).
THROUGHPUT = "modeling_polarbert.benchmarks.throughput"
# The project's throughput goals (8 M paper model, bf16, batch 2048 for pretraining).
TARGETS = {"trainer": 60_000, "prediction": 250_000, "reference_ratio": 3.0, "busy_share": 0.90}


def plan(args) -> list[tuple[str, float, list[str]]]:
    """(name, time limit in seconds, benchmark.py arguments) of every part, most important first."""
    gpu = not args.tiny
    flash = gpu and _importable("flash_attn")
    # flex attention last: its kernels compile at first use, the others' rows come first if time runs short
    attention = ["sdpa", "eager"] + (["flash_attention_2"] if flash else []) + ["flex_attention"]
    if args.tiny:
        common = ["--model", "tiny", "--batch-size", "32", "--steps", "2", "--warmup", "1", "--pack-length", "256",
                  "--compile-backend", "eager", "--time-limit", "5"]
        train_attention, cores = ["sdpa"], 0
    else:
        common = ["--model", "paper", "--batch-size", "2048", "--steps", "15", "--warmup", "3", "--pack-length",
                  "1024", "--time-limit", "10"]
        train_attention, cores = attention, min(os.cpu_count() or 1, 16)
    workers = str(max(cores - 4, 0))  # leave the main process and the GPU feeding some cores
    small = ["--steps", "2", "--warmup", "1"] if args.tiny else ["--steps", "8", "--warmup", "2"]
    return [
        ("train", 110, [*common, "--parts", "train", "--attention", *train_attention,
                        "--batching", "padded", "grouped", "packed", "--compile", "off"]),
        ("trainer", 100, [*common, "--parts", "trainer", "--trainer-batching", "grouped", "packed",
                          "--trainer-workers", workers, "--trainer-steps", "2" if args.tiny else "60",
                          *([] if args.tiny else ["--warmup", "5"])]),
        ("reference", 70, [*common, "--parts", "reference"]),
        ("checks", 60, [*common, "--parts", "train", "checks", "--attention", "sdpa",
                        *(["flex_attention"] if gpu else []),
                        "--batching", "grouped", "--check-inputs", "on", "off", "--compile", "off"]),
        ("predict", 45, [*common, "--parts", "predict", "--trainer-workers", workers,
                         "--predict-batch-size", "64" if args.tiny else "8192"]),
        ("159m", 60, [*common, *(["--model", "tiny", "--batch-size", "16"] if args.tiny else
                                 ["--model", "159m", "--batch-size", "512"]), *small,
                      "--parts", "train", "--attention", "sdpa", "--batching", "grouped",
                      "--gradient-checkpointing", "off", "on", "--compile", "off"]),
        ("compile-sdpa", 70, [*common, "--parts", "train", "--attention", "sdpa", "--batching", "grouped",
                              "--compile", "on", *([] if args.tiny else ["--warmup", "4"])]),
        ("compile-flex", 70, [*common, "--parts", "train", "--attention", "flex_attention" if gpu else "sdpa",
                              "--batching", "packed", "--compile", "on", *([] if args.tiny else ["--warmup", "4"])]),
        ("infer", 40, [*common, "--parts", "infer", "--attention", *(attention if gpu else ["sdpa"]),
                       "--batching", "padded", "grouped", "packed", "--compile", "off",
                       "--batch-size", "64" if args.tiny else "8192"]),
        ("collator", 40, [*common, "--parts", "collator", "--workers",
                          *(["1"] if args.tiny else ["1", "2", "4", "8", "12", "16"])]),
    ]


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def make_data(args, work: Path) -> Path:
    """Simulated events in the Kaggle layout, prepared as training reads them."""
    kaggle, prepared = work / "kaggle", work / "prepared"
    if (prepared / "state.json").is_file() or (prepared / "dataset_info.json").is_file():
        return prepared
    procs = str(args.num_proc)
    per_file = str(max(args.events // args.num_proc, 1))
    if args.in_process:
        from ..preparation import prepare_kaggle
        from ..simulation import simulate_kaggle_dir

        simulate_kaggle_dir(kaggle, n_events=args.events, seed=0, batch_size=int(per_file), num_proc=args.num_proc,
                            progress=False)
        prepare_kaggle(kaggle, prepared, progress=False, num_proc=args.num_proc)
        return prepared
    cli = [sys.executable, "-m", "modeling_polarbert"]
    subprocess.run([*cli, "simulate", str(kaggle), "--events", str(args.events), "--seed", "0", "--num-proc", procs,
                    "--batch-size", per_file], check=True, env=child_environment())
    subprocess.run([*cli, "prepare", str(kaggle), str(prepared), "--split", "train", "--num-proc", procs],
                   check=True, env=child_environment())
    return prepared


def child_environment() -> dict:
    """This environment for a part's process, with the folder this package was imported from first on PYTHONPATH:
    the part runs the same code (on the GPU machine, the repository's tree, where nothing is installed)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    imported_from = Path(__file__).resolve().parents[2]  # .../modeling_polarbert/benchmarks/this file
    env["PYTHONPATH"] = os.pathsep.join([str(imported_from), *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_part(name: str, command: list[str], limit: float, log: Path) -> tuple[str, float]:
    """Run one part's command in its own process under `limit` seconds; (how it ended, seconds)."""
    start = time.perf_counter()
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=child_environment(),
                                   start_new_session=True)
        try:
            code = process.wait(timeout=limit)
            status = "done" if code == 0 else f"failed (exit status {code})"
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)  # the part and the DataLoader / compile workers it started
            process.wait()
            status = f"cut at its time limit of {limit:.0f} s"
    seconds = time.perf_counter() - start
    print(f"[{name}] {status} after {seconds:.0f} s (log: {log})", flush=True)
    return status, seconds


def run_in_process(name: str, argv: list[str], log: Path) -> tuple[str, float]:
    import contextlib

    from .throughput import main as benchmark

    start = time.perf_counter()
    with open(log, "w") as handle, contextlib.redirect_stdout(handle):
        benchmark(argv)
    return "done", time.perf_counter() - start


def summary(rows: list[dict]) -> list[str]:
    """The project's throughput targets against what was measured (a missing row reads 'not measured')."""
    def find(what, batching=None, model="paper"):
        for row in rows:
            if row["what"] == what and (batching is None or row["batching"] == batching) and \
                    row.get("model") in (model, None) and row["events_per_second"] == row["events_per_second"]:
                return row
        return None

    lines = ["| target | measured | goal | met |", "|---|---|---|---|"]

    def add(label, value, goal, fmt, higher=True):
        if value is None:
            lines.append(f"| {label} | not measured | {goal[0]} | - |")
        else:
            met = value >= TARGETS[goal[1]] if higher else value <= TARGETS[goal[1]]
            lines.append(f"| {label} | {format(value, fmt)} | {goal[0]} | {'yes' if met else 'no'} |")

    trainer = [r for r in rows if r["what"] == "Trainer pretraining, end to end" and r["model"] == "paper"
               and r["events_per_second"] == r["events_per_second"]]
    best = max(trainer, key=lambda r: r["events_per_second"]) if trainer else None
    add(f"Trainer pretraining, events/s ({best['batching'] if best else '-'})",
        best and best["events_per_second"], (">= 60,000", "trainer"), ",.0f")
    predicted = find("prediction over the whole dataset")
    add("inference over a prepared dataset, events/s", predicted and predicted["events_per_second"],
        (">= 250,000", "prediction"), ",.0f")
    fit = find("reference (timinar/PolarBERT) Lightning fit")
    add("ours (Trainer) / reference (Lightning fit), training events/s",
        best and fit and best["events_per_second"] / fit["events_per_second"], (">= 3x", "reference_ratio"), ".2f")
    reference_step = find("reference (timinar/PolarBERT) step")
    our_step = find("pretraining step", "padded")
    add("our padded step / the reference's step (same batches)",
        our_step and reference_step and our_step["events_per_second"] / reference_step["events_per_second"],
        (">= 3x", "reference_ratio"), ".2f")
    busy = best["busy_share"] if best and best["busy_share"] == best["busy_share"] else None  # NaN: not measured
    add("GPU busy share during Trainer pretraining", busy, (">= 90 %", "busy_share"), ".0%")
    return lines


def write_report(args, out: Path, parts: list[dict], rows: list[dict], started: float) -> None:
    date = datetime.date.today().isoformat()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    lines = [f"# PolarBERT GPU benchmark, {date}", "",
             f"`{' '.join(['python', 'scripts/gpu_benchmark.py', *args.argv])}` at commit {commit.strip()}, "
             f"{platform.node()}, {os.cpu_count()} cores; {args.events:,} simulated events; "
             f"{time.perf_counter() - started:.0f} s in all.", ""]
    lines += [f"- {part['name']}: {part['status']} ({part['seconds']:.0f} s). {part.get('header', '')}"
              for part in parts]
    lines += ["", "## Targets", "", *summary(rows), "", "## Every measurement", "", HEADER]
    lines += [Result(**row).row() for row in rows]
    (out / "gpu_benchmark.md").write_text("\n".join(lines) + "\n")
    (out / "gpu_benchmark.json").write_text(json.dumps(
        {"date": date, "commit": commit.strip(), "argv": args.argv, "parts": parts, "results": rows}, indent=1))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/gpu_benchmark", help="where the report goes (3 files)")
    parser.add_argument("--work", help="data and per-part files (default OUT/work)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--events", type=int, default=None, help="simulated events (default 300,000; tiny: 600)")
    parser.add_argument("--num-proc", type=int, default=min(os.cpu_count() or 1, 16))
    parser.add_argument("--budget", type=float, default=470.0, help="seconds for the whole run, data included")
    parser.add_argument("--parts", nargs="*", help="run only these parts (names as in the plan)")
    parser.add_argument("--tiny", action="store_true", help="every part at a tiny size (CPU, the test suite)")
    parser.add_argument("--in-process", action="store_true", help="run the parts in this process (no time limits)")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.events = args.events or (600 if args.tiny else 300_000)
    started = time.perf_counter()
    Path(args.out, "gpu_benchmark.log").unlink(missing_ok=True)
    out = Path(args.out)
    work = Path(args.work) if args.work else out / "work"
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)

    data_start = time.perf_counter()
    prepared = make_data(args, work)
    parts = [{"name": "data", "status": "done", "seconds": time.perf_counter() - data_start,
              "header": f"`polarbert simulate --num-proc {args.num_proc}` + `polarbert prepare`"}]
    rows = []
    for name, limit, part_args in plan(args):
        if args.parts and name not in args.parts:
            continue
        left = args.budget - (time.perf_counter() - started)
        if left < 15:
            parts.append({"name": name, "status": "not run: the overall time budget was spent", "seconds": 0.0})
            continue
        part_json = work / f"{name}.json"
        part_json.unlink(missing_ok=True)
        argv_part = ["--device", args.device, "--dataset", str(prepared), "--json", str(part_json), *part_args]
        if args.in_process:
            status, seconds = run_in_process(name, argv_part, work / f"{name}.log")
        else:
            status, seconds = run_part(name, [sys.executable, "-m", THROUGHPUT, *argv_part],
                                       min(limit, left), work / f"{name}.log")
        with open(out / "gpu_benchmark.log", "a") as log:
            log.write(f"===== {name}: {status} after {seconds:.0f} s\n{(work / f'{name}.log').read_text()}\n")
        part = {"name": name, "status": status, "seconds": seconds, "limit": limit}
        if part_json.is_file():
            written = json.loads(part_json.read_text())
            part["header"] = written["header"]
            rows += [dict(row, part=name) for row in written["results"]]
        parts.append(part)
        write_report(args, out, parts, [{k: v for k, v in row.items() if k != "part"} for row in rows], started)
    write_report(args, out, parts, [{k: v for k, v in row.items() if k != "part"} for row in rows], started)
    print((out / "gpu_benchmark.md").read_text())
    return {"parts": parts, "results": rows}


if __name__ == "__main__":
    main()
