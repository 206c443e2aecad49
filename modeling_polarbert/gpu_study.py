"""The paper's sample-efficiency figure on one GPU in one run of under 9 minutes, and a pretrained backbone to ship.

simulate about 2 M unlabelled events and separate labelled, validation and held-out sets (one simulation per
core) -> prepare -> pretrain the paper's 8 M model (configs/pretrain_paper.yaml: bf16, length-grouped batches) for
as many epochs as fit in its wall-clock budget -> fine-tune it and a from-scratch twin on 10 k and 100 k labelled
events (configs/finetune_paper.yaml, each to a budget) -> evaluate all four beside LineFit on the same held-out
events -> results.md, results.json, sample_efficiency.png (the paper's Figure 2, right), and the pretrained
backbone in bf16 safetensors with config and model card, laid out as checkpoints/polarbert-8m-sim/ is.

    python scripts/gpu_study.py --out runs/gpu_study --data-dir data/gpu_study --collect OUT_DIR   # the GPU run
    python scripts/gpu_study.py --tiny --out runs/gpu_study_tiny --data-dir data/gpu_study_tiny      # CPU, seconds

Every phase has a budget and the whole run a deadline (--deadline-seconds, counted once the imports are done): the
pretraining budget is what the deadline leaves after the budgets of the later phases, and a phase that overran
shrinks the ones after it, so the run stops in time and still writes its table. The timings are printed and kept
in results.json. --collect copies the files that matter (8, each under 16 MiB) into one folder.
"""

import argparse
import concurrent.futures
import datetime
import gc
import json
import logging
import math
import multiprocessing
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import datasets
import torch
import transformers

from .evaluation import evaluate_model
from .hub import MAX_SHIPPED_FILE_BYTES, save_backbone
from .modeling_polarbert import PolarBertForMaskedDOM, PolarBertModel
from .preparation import combine_prepared, prepare_kaggle
from .simulation import simulate_kaggle_dir
from .studies import plot_results, results_table, yaml_run
from .training import run_finetuning, run_pretraining

logger = logging.getLogger("gpu_study")

PAPER_CROSS_ENTROPY = 2.08  # the paper's 8 M model after 100 M Kaggle events
UNIFORM_CROSS_ENTROPY = math.log(5160)  # a uniform guess over the DOMs
TARGETS = {"gain_vs_scratch": 0.25, "gain_vs_linefit": 0.10}  # the study's targets, fractions of the mean angle
EVENT_ID_STRIDE = 10_000_000  # event ids of simulation shard k start at k * stride
SHIPPED_FILES = ("model.safetensors", "config.json", "preprocessor_config.json", "README.md")
# The project's inputs on the paper's architecture (docs/results.md, "Escaping the constant-guess plateau"): DOM
# positions and the time within the event in pretraining, a zero-initialised direction head in fine-tuning.
# --paper-inputs runs the paper's inputs and a random head instead.
RECIPE = {"pretrain": "use_dom_positions=true,event_time_reference=charge_weighted_mean,"
                      "event_position_reference=charge_weighted_mean",
          "finetune": "zero_init_direction_head=true"}
TINY_MODEL = "hidden_size=32,num_hidden_layers=1,num_attention_heads=2,intermediate_size=64"
# Seconds a phase takes beyond its training budget (start-up, final evaluation, saving), on the GPU machine; they
# size the pretraining budget so that everything after it still fits before the deadline.
OVERHEAD = {"pretrain": 15, "finetune": 6, "evaluate": 5, "finish": 5}

GPU = dict(
    pretrain_events=2_000_000, labelled_sizes=[10_000, 100_000], eval_events=20_000, validation_events=5_000,
    shard_events=31_250, deadline_seconds=510, simulate_seconds=90, pretrain_seconds=300,
    finetune_seconds=[10, 25], finetune_epochs=30, eval_batch_size=1024, backbone_name="polarbert-8m-sim",
    pretrain_args=[], finetune_args=[], model_overrides="",
)
# The same run at a size of seconds on 2 CPU cores: a 0.1 M-parameter model, float32, no DataLoader workers.
CPU_ARGS = ["--use_cpu", "true", "--bf16", "false", "--dataloader_num_workers", "0",
            "--dataloader_persistent_workers", "false", "--dataloader_pin_memory", "false",
            "--per_device_train_batch_size", "32", "--per_device_eval_batch_size", "64", "--logging_steps", "5"]
TINY = dict(
    pretrain_events=1_000, labelled_sizes=[100, 300], eval_events=200, validation_events=100, shard_events=500,
    deadline_seconds=600, simulate_seconds=600, pretrain_seconds=3, finetune_seconds=[1.5, 1.5], finetune_epochs=5,
    eval_batch_size=256, backbone_name="polarbert-tiny-sim",
    pretrain_args=[*CPU_ARGS, "--optim", "adamw_torch"], finetune_args=CPU_ARGS, model_overrides=TINY_MODEL,
)


class Deadline:
    """Seconds since the start of the run and left before its deadline; one entry per phase for the record."""

    def __init__(self, seconds: float):
        self.start, self.seconds, self.phases = time.monotonic(), seconds, []

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def record(self, phase: str, began: float, budget: float | None = None) -> None:
        seconds = time.monotonic() - began
        self.phases.append({"phase": phase, "budget_s": None if budget is None else round(budget, 1),
                            "seconds": round(seconds, 1)})
        budget_text = f" (budget {budget:.0f} s)" if budget is not None else ""
        logger.info("[%5.0f s] %s: %.1f s%s", self.elapsed(), phase, seconds, budget_text)


# ---- simulate and prepare: one simulation per core ---------------------------------------------------------------


def _shards(name: str, n_events: int, shard_events: int, first_index: int, seed: int) -> list[dict]:
    count = max(1, math.ceil(n_events / shard_events))
    sizes = [n_events // count + (k < n_events % count) for k in range(count)]
    return [{"name": name, "shard": k, "events": size, "seed": seed + k, "index": first_index + k}
            for k, size in enumerate(sizes)]


def _simulate_and_prepare(job: dict) -> dict:
    """One shard: simulate it into its own Kaggle directory (one process, so no single writer limits the rate),
    prepare it, and drop the parquet files (the prepared dataset holds every pulse)."""
    prepared = Path(job["data_dir"]) / f"prepared_{job['name']}_{job['shard']:03d}"
    if not prepared.exists():
        kaggle = prepared.with_name(f"kaggle_{job['name']}_{job['shard']:03d}")
        shutil.rmtree(kaggle, ignore_errors=True)  # what an interrupted run left
        simulate_kaggle_dir(kaggle, n_events=job["events"], seed=job["seed"], batch_size=job["events"],
                            progress=False, event_id_offset=job["index"] * EVENT_ID_STRIDE)
        prepare_kaggle(kaggle, prepared, progress=False)
        shutil.rmtree(kaggle)
    return {**job, "prepared": str(prepared)}


def simulate_sets(data_dir: Path, sizes: dict, workers: int, budget: float) -> dict[str, Path]:
    """The four prepared sets. The labelled, validation and held-out shards go first and are always completed, and
    so is the first pretraining shard; the other pretraining shards are started while the budget lasts, so a slower
    machine pretrains on fewer events."""
    data_dir.mkdir(parents=True, exist_ok=True)
    required = []
    for offset, (name, n_events) in enumerate([("labelled", max(sizes["labelled_sizes"])),
                                               ("validation", sizes["validation_events"]),
                                               ("held_out", sizes["eval_events"])]):
        required += _shards(name, n_events, sizes["shard_events"], len(required), seed=1000 * (offset + 2))
    pretrain = _shards("pretrain", sizes["pretrain_events"], sizes["shard_events"], len(required), seed=1000)
    jobs = [{**job, "data_dir": str(data_dir)} for job in required + pretrain]

    began, done = time.monotonic(), []
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(_simulate_and_prepare, job): job for job in jobs}
        pending = set(futures)
        while pending:
            if time.monotonic() - began > budget:
                # Out of time: drop the pretraining shards that have not started (running ones finish), all but
                # the first, so that there is always something to pretrain on.
                for future in pending:
                    job = futures[future]
                    if job["name"] == "pretrain" and job["shard"] > 0 and future.cancel():
                        logger.info("simulation budget spent: pretraining shard %d not simulated", job["shard"])
                pending = {future for future in pending if not future.cancelled()}
            finished, pending = concurrent.futures.wait(pending, timeout=1.0)
            done += [future.result() for future in finished]

    sets = {}
    for name in ("pretrain", "labelled", "validation", "held_out"):
        parts = sorted((job for job in done if job["name"] == name), key=lambda job: job["shard"])
        folders = [Path(job["prepared"]) for job in parts]
        if not folders:
            raise RuntimeError(f"no {name} events were simulated within the {budget:.0f} s budget")
        if len(folders) == 1:
            sets[name] = folders[0]
            continue
        combined = data_dir / f"prepared_{name}_{sum(job['events'] for job in parts)}"
        if not combined.exists():
            combine_prepared(folders, combined)
        sets[name] = combined
    return sets


# ---- pretraining and fine-tuning with the package's Trainer runs ------------------------------------------------


def _trainer_state(folder: Path) -> dict:
    return json.loads((folder / "trainer_state.json").read_text())


def pretrain(out: Path, sets: dict, seconds: float, overrides: str, extra: list[str]) -> dict:
    folder = out / "pretrained"
    metrics = run_pretraining([
        yaml_run("pretrain_paper.yaml"), *(["--config_overrides", overrides] if overrides else []),
        "--train_dataset", str(sets["pretrain"]),
        "--eval_dataset", str(sets["validation"]), "--output_dir", str(folder),
        "--num_train_epochs", "1000", "--max_train_seconds", f"{seconds:.1f}",  # time, not epochs, is the limit
        "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", "50", "--disable_tqdm", "true", *extra,
    ])
    state = _trainer_state(folder)
    train = json.loads((folder / "train_results.json").read_text())
    curve = [{key: entry[key] for key in ("step", "epoch", "loss", "masked_dom_loss", "learning_rate") if key in entry}
             for entry in state["log_history"] if "loss" in entry]
    return {"folder": str(folder), "epochs": state["epoch"], "steps": state["global_step"], "loss_curve": curve,
            "batch_size": state["train_batch_size"], "train_seconds": train["train_runtime"],
            "masked_dom_cross_entropy": metrics["eval_masked_dom_cross_entropy"],
            "masked_dom_accuracy": metrics["eval_masked_dom_accuracy"]}


def finetune(out: Path, pretrained: str, sets: dict, size: int, from_scratch: bool, seconds: float, epochs: int,
             overrides: str, extra: list[str]) -> dict:
    folder = out / f"{'scratch' if from_scratch else 'pretrained'}_{size}"
    run_finetuning([
        yaml_run("finetune_paper.yaml"), *(["--config_overrides", overrides] if overrides else []),
        "--model_name_or_path", pretrained,
        "--from_scratch", str(from_scratch).lower(), "--train_dataset", str(sets["labelled"]),
        "--eval_dataset", str(sets["validation"]), "--max_train_events", str(size), "--output_dir", str(folder),
        "--num_train_epochs", str(epochs), "--max_train_seconds", f"{seconds:.1f}", "--eval_strategy", "no",
        "--save_strategy", "no", "--dataloader_persistent_workers", "true", "--logging_steps", "20",
        "--disable_tqdm", "true", *extra,
    ])
    state = _trainer_state(folder)
    return {"folder": str(folder), "epochs": state["epoch"], "steps": state["global_step"]}


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---- results -------------------------------------------------------------------------------------------------


def judge(row: dict) -> dict:
    gain_scratch = 1 - row["pretrained"] / row["scratch"]
    gain_linefit = 1 - row["pretrained"] / row["linefit"]
    return {"gain_vs_scratch": round(gain_scratch, 4), "gain_vs_linefit": round(gain_linefit, 4),
            "met": gain_scratch >= TARGETS["gain_vs_scratch"] and gain_linefit >= TARGETS["gain_vs_linefit"]}


def _inputs_text(results: dict) -> str:
    if results["inputs"] == "paper":
        return "the paper's inputs (DOM id, time, charge, auxiliary flag) and a randomly initialised direction head"
    return (f"the paper's inputs plus the DOM positions and the time within the event (`{results['inputs']['pretrain']}`)"
            f", and a zero-initialised direction head in fine-tuning (`{results['inputs']['finetune']}`)")


def results_markdown(results: dict) -> str:
    pretraining = results["pretraining"]
    lines = [
        f"# GPU study: pretrained against from scratch ({results['date']}, {results['device']})", "",
        f"Command: `{results['command']}`", "",
        f"Model: the paper's architecture (configs/pretrain_paper.yaml, configs/finetune_paper.yaml) with "
        f"{_inputs_text(results)}.", "",
        f"Pretraining: {results['pretrain_events']:,} simulated events, {pretraining['epochs']:.2f} epochs "
        f"({pretraining['steps']:,} optimizer steps of {pretraining['batch_size']} events) in "
        f"{pretraining['train_seconds']:.0f} s; "
        f"{results['model_parameters']:,} parameters with the masked-DOM head. Masked-DOM cross-entropy on "
        f"{results['validation_events']:,} "
        f"validation events: **{pretraining['masked_dom_cross_entropy']:.3f}** (the paper: {PAPER_CROSS_ENTROPY}; "
        f"uniform guess: {UNIFORM_CROSS_ENTROPY:.2f}).", "",
        f"Mean opening angle on the same {results['eval_events']:,} held-out events (radians, lower is better):", "",
        results_table(results), "",
        "| labelled events | pretrained vs scratch | pretrained vs LineFit | target (25 % / 10 %) | fine-tuning epochs "
        "(pretrained / scratch) |", "|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        verdict = row["targets"]
        lines.append(f"| {row['labelled_events']:,} | {verdict['gain_vs_scratch']:+.1%} | "
                     f"{verdict['gain_vs_linefit']:+.1%} | {'met' if verdict['met'] else 'not met'} | "
                     f"{row['pretrained_epochs']:.1f} / {row['scratch_epochs']:.1f} |")
    kinds = results["rows"][-1].get("by_kind", {})
    if kinds:
        lines += ["", f"By kind, {results['rows'][-1]['labelled_events']:,} labelled events:", "",
                  "| | pretrained | from scratch | LineFit |", "|---|---|---|---|"]
        for kind, values in kinds.items():
            lines.append(f"| {kind} ({values['events']:,}) | {values['pretrained']:.3f} | {values['scratch']:.3f} | "
                         f"{values['linefit']:.3f} |")
    lines += ["", "Timings (budget: what the plan allowed; seconds):", "", "| phase | budget | seconds |", "|---|---|---|"]
    for phase in results["timings"]:
        budget = "-" if phase["budget_s"] is None else f"{phase['budget_s']:g}"
        lines.append(f"| {phase['phase']} | {budget} | {phase['seconds']:.1f} |")
    lines += [f"| total | {results['deadline_seconds']:.0f} | {results['total_seconds']:.1f} |", "",
              f"Backbone: `{results['backbone']}` ({results['backbone_parameters']:,} parameters, bf16 safetensors, "
              "config, model card).", ""]
    return "\n".join(lines)


def backbone_card_text(results: dict) -> str:
    pretraining = results["pretraining"]
    gains = "; ".join(f"{row['labelled_events']:,} labelled events: {row['pretrained']:.3f} rad fine-tuned from it, "
                      f"{row['scratch']:.3f} from scratch, LineFit {row['linefit']:.3f}" for row in results["rows"])
    return (
        f"Pretrained on {results['pretrain_events']:,} events simulated by this project's own simulator "
        f"(`modeling_polarbert.simulation`, docs/simulator.md), **not on IceCube data**: neither real detector data "
        f"nor the Kaggle competition's simulation. Inputs: {_inputs_text(results)}. "
        f"Masked-DOM prediction plus total charge (the paper's section 3), "
        f"{pretraining['epochs']:.2f} epochs ({pretraining['steps']:,} optimizer steps of {pretraining['batch_size']} "
        f"events) in "
        f"{pretraining['train_seconds']:.0f} s on {results['device']}, {results['date']}, by `scripts/gpu_study.py`.\n\n"
        f"Masked-DOM cross-entropy on {results['validation_events']:,} separate simulated events: "
        f"**{pretraining['masked_dom_cross_entropy']:.3f}**, against 2.08 for the paper's 8 M model pretrained on "
        f"100 M Kaggle events and {UNIFORM_CROSS_ENTROPY:.2f} for a uniform guess. Only the backbone "
        f"(`PolarBertModel`) is kept, its weights in bfloat16 (buffers such as the DOM coordinates in float32); the "
        f"masked-DOM head is dropped. Fine-tune it with "
        f"`scripts/finetune.py configs/finetune_paper.yaml --model_name_or_path <this folder>` (float32 master "
        f"weights are loaded). Same run, mean opening angle on {results['eval_events']:,} held-out simulated events: "
        f"{gains}."
    )


def collect(out: Path, backbone: Path, target: Path) -> list[Path]:
    """Copy what a GPU run leaves to keep into one folder: at most 8 files of at most 16 MiB each."""
    files = [out / name for name in ("results.md", "results.json", "sample_efficiency.png", "gpu_study.log")]
    files += sorted(path for path in backbone.iterdir() if path.name in SHIPPED_FILES or path.suffix == ".safetensors"
                    or path.name.endswith(".safetensors.index.json"))
    too_large = [path.name for path in files if path.stat().st_size > MAX_SHIPPED_FILE_BYTES]
    if len(files) > 8 or too_large:
        raise ValueError(f"cannot collect {[path.name for path in files]}: more than 8 files or {too_large} over 16 MiB")
    copied = []
    for path in files:
        destination = target / (f"{backbone.name}/{path.name}" if path.parent == backbone else path.name)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        copied.append(destination)
    return copied


# ---- the run ---------------------------------------------------------------------------------------------------


def _start_logging(out: Path) -> list[logging.Handler]:
    """Everything logged (this script, the package, transformers) to out/gpu_study.log; INFO and above to stdout."""
    out.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(out / "gpu_study.log", mode="a")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(file_handler)
    root.addHandler(console)
    transformers.utils.logging.add_handler(file_handler)  # transformers' records do not reach the root logger
    return [file_handler, console]


def _stop_logging(handlers: list[logging.Handler]) -> None:
    for handler in handlers:
        logging.getLogger().removeHandler(handler)
        handler.close()
    transformers.utils.logging.remove_handler(handlers[0])


def _device_name() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} CPU cores"
    return f"CPU only ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def run(args: argparse.Namespace, sizes: dict, command: str) -> dict:
    handlers = _start_logging(args.out)
    try:
        return _run(args, sizes, command)
    finally:
        _stop_logging(handlers)


def _run(args: argparse.Namespace, sizes: dict, command: str) -> dict:
    deadline = Deadline(sizes["deadline_seconds"])
    out, data_dir = args.out, args.data_dir
    logger.info("deadline %.0f s; sizes %s", deadline.seconds,
                {key: sizes[key] for key in ("pretrain_events", "labelled_sizes", "eval_events", "validation_events")})

    began = time.monotonic()
    sets = simulate_sets(data_dir, sizes, args.workers, sizes["simulate_seconds"])
    deadline.record("simulate + prepare", began, sizes["simulate_seconds"])
    logger.info("device: %s", _device_name())  # only now: CUDA starts here, after the simulation processes forked
    pretrain_events = len(datasets.load_from_disk(str(sets["pretrain"])))

    # What the deadline leaves for pretraining once every later phase has its budget.
    finetune_budgets = [seconds for seconds in sizes["finetune_seconds"] for _ in (0, 1)]
    later = (OVERHEAD["pretrain"] + sum(finetune_budgets) + len(finetune_budgets) * OVERHEAD["finetune"]
             + len(finetune_budgets) * OVERHEAD["evaluate"] + OVERHEAD["finish"])
    pretrain_budget = max(min(sizes["pretrain_seconds"], deadline.left() - later), min(sizes["pretrain_seconds"], 10))
    logger.info("pretraining on %s events for %.0f s (%.0f s left, %.0f s kept for the later phases)",
                f"{pretrain_events:,}", pretrain_budget, deadline.left(), later)
    began = time.monotonic()
    recipe = {"pretrain": "", "finetune": ""} if args.paper_inputs else RECIPE
    pretrain_overrides = ",".join(part for part in (sizes["model_overrides"], recipe["pretrain"]) if part)
    pretraining = pretrain(out, sets, pretrain_budget, pretrain_overrides,
                           sizes["pretrain_args"] + args.pretrain_args.split())
    deadline.record("pretrain", began, pretrain_budget)
    _free_memory()

    rows = []
    runs = [(size, seconds, from_scratch) for size, seconds in zip(sizes["labelled_sizes"], sizes["finetune_seconds"])
            for from_scratch in (False, True)]
    for index, (size, seconds, from_scratch) in enumerate(runs):
        still_to_come = sum(s for _, s, _ in runs[index + 1:]) + (len(runs) - index - 1) * OVERHEAD["finetune"]
        after = still_to_come + len(runs) * OVERHEAD["evaluate"] + OVERHEAD["finish"] + OVERHEAD["finetune"]
        budget = max(min(seconds, deadline.left() - after), min(seconds, 2.0))
        name = "scratch" if from_scratch else "pretrained"
        began = time.monotonic()
        result = finetune(out, pretraining["folder"], sets, size, from_scratch, budget, sizes["finetune_epochs"],
                          recipe["finetune"], sizes["finetune_args"] + args.finetune_args.split())
        deadline.record(f"fine-tune {name}, {size:,} labelled", began, budget)
        _free_memory()
        if not from_scratch:
            rows.append({"labelled_events": size})
        rows[-1][f"{name}_epochs"] = result["epochs"]
        rows[-1][f"{name}_folder"] = result["folder"]

    for row in rows:
        by_kind = {}
        for name in ("pretrained", "scratch"):
            began = time.monotonic()
            metrics = evaluate_model(row[f"{name}_folder"], str(sets["held_out"]),
                                     str(out / f"report_{name}_{row['labelled_events']}"),
                                     batch_size=sizes["eval_batch_size"], progress=False)
            deadline.record(f"evaluate {name}, {row['labelled_events']:,} labelled", began, OVERHEAD["evaluate"])
            row[name] = metrics["overall"]["model"]["mean"]
            linefit = metrics["overall"]["linefit"]["mean"]
            if "linefit" in row and row["linefit"] != linefit:
                raise RuntimeError(f"LineFit differs between evaluations ({row['linefit']} vs {linefit}): the "
                                   "models were not evaluated on the same events")
            row["linefit"] = linefit
            for kind in ("track", "cascade"):
                if kind in metrics["breakdowns"]:
                    parts = metrics["breakdowns"][kind]
                    entry = by_kind.setdefault(f"{kind}s", {"events": parts["model"]["events"],
                                                            "linefit": parts["linefit"]["mean"]})
                    entry[name] = parts["model"]["mean"]
        row["by_kind"] = by_kind
        row["targets"] = judge(row)

    began = time.monotonic()
    backbone = out / sizes["backbone_name"]
    results = {
        "date": datetime.date.today().isoformat(), "device": _device_name(), "command": command,
        "pretrain_events": pretrain_events, "eval_events": len(datasets.load_from_disk(str(sets["held_out"]))),
        "validation_events": sizes["validation_events"], "random": math.pi / 2,
        "model_parameters": PolarBertForMaskedDOM.from_pretrained(pretraining["folder"]).num_parameters(),
        "pretraining": pretraining, "rows": rows, "targets": TARGETS,
        "paper_masked_dom_cross_entropy": PAPER_CROSS_ENTROPY, "backbone": str(backbone),
        "deadline_seconds": deadline.seconds, "inputs": "paper" if args.paper_inputs else RECIPE,
    }
    shutil.rmtree(backbone, ignore_errors=True)
    save_backbone(pretraining["folder"], backbone, training_data=backbone_card_text(results),
                  metrics={"eval_masked_dom_cross_entropy": pretraining["masked_dom_cross_entropy"],
                           "eval_masked_dom_accuracy": pretraining["masked_dom_accuracy"]},
                  repo_id=f"checkpoints/{sizes['backbone_name']}")
    results["backbone_parameters"] = PolarBertModel.from_pretrained(backbone).num_parameters()
    plot_results(results, out / "sample_efficiency.png")
    deadline.record("backbone, plot, results", began, OVERHEAD["finish"])
    results["timings"] = deadline.phases
    results["total_seconds"] = round(deadline.elapsed(), 1)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(results_markdown(results))
    logger.info("\n%s", results_markdown(results))
    if args.collect:
        copied = collect(out, backbone, args.collect)
        logger.info("collected %d files in %s", len(copied), args.collect)
    if deadline.left() < 0:
        logger.warning("the run took %.0f s, past its %.0f s deadline", deadline.elapsed(), deadline.seconds)
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_study"))
    parser.add_argument("--data-dir", type=Path, default=Path("data/gpu_study"))
    parser.add_argument("--collect", type=Path, help="copy results, plot, log and backbone files into this folder")
    parser.add_argument("--tiny", action="store_true", help="the same run at a size of seconds on 2 CPU cores")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="simulation processes")
    parser.add_argument("--deadline-seconds", type=float, help="the whole run, from the start of this script")
    parser.add_argument("--pretrain-events", type=int)
    parser.add_argument("--pretrain-seconds", type=float, help="at most this much pretraining (training loop)")
    parser.add_argument("--paper-inputs", action="store_true",
                        help="the paper's inputs and a random direction head, not the project's recipe")
    parser.add_argument("--pretrain-args", default="", help="extra pretrain arguments, e.g. '--learning_rate 1e-3'")
    parser.add_argument("--finetune-args", default="", help="extra fine-tuning arguments")
    args = parser.parse_args(argv)
    sizes = dict(TINY if args.tiny else GPU)
    for key in ("deadline_seconds", "pretrain_events", "pretrain_seconds"):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    command = "python scripts/gpu_study.py " + " ".join(sys.argv[1:] if argv is None else argv)
    return run(args, sizes, command)

