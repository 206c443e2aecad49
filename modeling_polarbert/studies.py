"""The paper's sample-efficiency study on simulated events: pretrain once, fine-tune from the pretrained weights
and from scratch on N labelled events for each N (and, when one is given, from a shipped pretrained backbone),
evaluate everything on one held-out set with LineFit beside it, and write a table (results.md, results.json) and a
plot like the paper's Figure 2 (right).

What `scripts/sample_efficiency.py` and `scripts/quickstart.py` run; `scripts/gpu_study.py` uses its table and
plot. Every step is skipped when its output already exists, so an interrupted study resumes where it stopped.

The same study runs for any event-level task (`task="regression"` / `"classification"` with `label_columns`, as
`scripts/finetune.py` takes them): the baseline is then a least-squares line of the target on log10(total charge)
or the majority class, both fitted on the whole labelled set; the models go to `out/<labels>_{pretrained,scratch}_N`
and the results to results_<labels>.{json,md} and sample_efficiency_<labels>.png, so that several tasks share one
folder and one pretraining.
"""

import json
import math
import os
import time
from importlib import resources
from pathlib import Path

from .evaluation import evaluate_model
from .loading import load_prepared_dataset
from .preparation import prepare_kaggle
from .sequence_evaluation import file_name
from .simulation import simulate_kaggle_dir
from .training import run_finetuning, run_pretraining

# results.json key -> table column; the shipped backbone's column appears only where a row has it.
METHODS = {"pretrained": "pretrained", "scratch": "from scratch", "backbone": "shipped backbone"}


def yaml_run(name: str) -> str:
    """The path of a YAML run the package ships (`modeling_polarbert/configs/`, package data; the repository's
    `configs/` links there), so that the study finds its runs from an installed wheel as from the repository."""
    return str(resources.files(__package__) / "configs" / name)


def simulated_dataset(data_dir: Path, name: str, n_events: int, seed: int, split: str = "train") -> Path:
    """Simulate a Kaggle-layout directory and prepare it, unless both already exist; return the prepared folder.
    A folder left by a run of another size is refused rather than reused (the study would silently measure other
    events)."""
    kaggle_dir, prepared = data_dir / f"kaggle_{name}", data_dir / f"prepared_{name}"
    if not prepared.exists():
        if not (kaggle_dir / f"{split}_meta.parquet").exists():
            simulate_kaggle_dir(kaggle_dir, n_events=n_events, seed=seed, split=split, batch_size=50_000)
        prepare_kaggle(kaggle_dir, prepared, split=split, progress=False)
    held = load_prepared_dataset(str(prepared), require_labels=False).num_rows
    if held != n_events:
        raise ValueError(f"{prepared} holds {held:,} events, not the {n_events:,} asked for: it was made by a run of "
                         "another size; give another --data-dir or remove it")
    return prepared


def pretrain_once(out: Path, train: Path, extra: list[str]) -> Path:
    """`out/pretrained`, pretrained on `train` unless it already exists."""
    folder = out / "pretrained"
    if not (folder / "model.safetensors").exists():
        run_pretraining([yaml_run("pretrain_tiny.yaml"), "--train_dataset", str(train), "--output_dir", str(folder),
                         *extra])
    return folder


def task_prefix(task: str, label_columns: str | None) -> str:
    """'' for direction (the names the quickstart reads), else e.g. 'log10_energy_' for the run folders."""
    return "" if task == "direction" else f"{file_name(label_columns.replace(',', '+'))}_"


def finetune_once(out: Path, pretrained: Path, train: Path, evaluation: Path, size: int, from_scratch: bool,
                  extra: list[str], name: str | None = None, task: str = "direction",
                  label_columns: str | None = None) -> Path:
    """`out/{prefix}{name}_{size}` (name: pretrained or scratch by default; prefix: the task's labels, none for
    direction), fine-tuned from `pretrained` (or its config alone, from scratch) on the first `size` events of
    `train` unless it exists, with what it cost in `cost.json`."""
    folder = out / f"{task_prefix(task, label_columns)}{name or ('scratch' if from_scratch else 'pretrained')}_{size}"
    task_args = [] if task == "direction" else ["--task", task, "--label_columns", label_columns]
    if (folder / "model.safetensors").exists():
        refuse_another_budget(folder, extra)
    else:
        # CPU seconds of this process (all its threads) beside the wall clock: on a shared machine the wall
        # clock also counts other jobs' time, the CPU time does not.
        cpu_start = time.process_time()
        run_finetuning([yaml_run("finetune_tiny.yaml"), "--model_name_or_path", str(pretrained),
                        "--from_scratch", str(from_scratch).lower(), "--train_dataset", str(train),
                        "--eval_dataset", str(evaluation), "--max_train_events", str(size),
                        "--output_dir", str(folder), *task_args, *extra])
        (folder / "cost.json").write_text(json.dumps({
            "process_cpu_seconds": time.process_time() - cpu_start,
            "train_runtime_seconds": json.loads((folder / "train_results.json").read_text())["train_runtime"],
            "load_average_1_5_15_min": os.getloadavg(), "cpu_count": os.cpu_count(),
        }, indent=2))
    return folder


def refuse_another_budget(folder: Path, extra: list[str]) -> None:
    """A resumed study reuses a finished fine-tune only if it had the passes asked for now: a run of another budget
    would be reported under this one."""
    if "--num_train_epochs" not in extra:
        return
    asked = float(extra[len(extra) - extra[::-1].index("--num_train_epochs")])  # the last one counts, as in argparse
    saved = json.loads((folder / "training_args.json").read_text()).get("num_train_epochs")
    if saved is not None and float(saved) != asked:
        raise ValueError(f"{folder} was fine-tuned for {saved:g} passes, not the {asked:g} asked for: it was made by "
                         "a run with another budget; give another --out or remove it")


def epochs_arguments(labelled_epochs: dict[int, float] | None, size: int) -> list[str]:
    """finetune.py's `--num_train_epochs` for `size` labelled events, if the study sets the passes per size."""
    return ["--num_train_epochs", f"{labelled_epochs[size]:g}"] if labelled_epochs else []


def epochs_entry(labelled_epochs: dict[int, float] | None, size: int) -> dict:
    """The passes a row of the results was fine-tuned with, where the study set them."""
    return {"num_train_epochs": labelled_epochs[size]} if labelled_epochs else {}


def task_figures(metrics: dict) -> dict[str, tuple[float, float]]:
    """The headline figures of one evaluation, {name: (model, baseline)}: per regression target its resolution
    and bias, per classification label its ROC AUC and accuracy."""
    if "regression" in metrics:
        return {f"{key} {name}": (part["overall"]["model"][key], part["overall"]["baseline"][key])
                for name, part in metrics["regression"].items() for key in ("resolution", "bias")}
    parts = metrics["classification"]
    parts = {metrics["label_columns"][0]: parts} if "model" in parts else parts
    return {f"{key} {name}": (part["model"][key], part["majority"][key])
            for name, part in parts.items() for key in ("roc_auc", "accuracy")}


def run_study(out: Path, data_dir: Path, pretrain_events: int, labelled_sizes: list[int], eval_events: int,
              pretrain_args: list[str] = (), finetune_args: list[str] = (), backbone: Path | None = None,
              backbone_args: list[str] = (), task: str = "direction", label_columns: str | None = None,
              labelled_epochs: dict[int, float] | None = None) -> dict:
    """Pretrain once, fine-tune both ways at every size (and from `backbone`, a shipped pretrained backbone, with
    `finetune_args` + `backbone_args`, when given; direction only), evaluate everything on one held-out set.
    `labelled_epochs`: the passes over the labelled events at each size (a budget that is not the limit at 10 k
    labels is ten times too long at 100 k); without it the fine-tuning YAML's or `finetune_args`' passes."""
    out.mkdir(parents=True, exist_ok=True)
    unlabelled = simulated_dataset(data_dir, "pretrain", pretrain_events, seed=1)
    labelled = simulated_dataset(data_dir, "labelled", max(labelled_sizes), seed=2)
    held_out = simulated_dataset(data_dir, "eval", eval_events, seed=3)
    pretrained = pretrain_once(out, unlabelled, list(pretrain_args))
    budgets = {size: [*finetune_args, *epochs_arguments(labelled_epochs, size)] for size in labelled_sizes}
    if task != "direction":
        return run_task_study(out, pretrained, labelled, held_out, pretrain_events, eval_events, budgets, task,
                              label_columns)

    starts = {"pretrained": (pretrained, False, []), "scratch": (pretrained, True, [])}
    if backbone is not None:
        starts["backbone"] = (Path(backbone), False, list(backbone_args))
    rows, curves = [], {}
    for size in labelled_sizes:
        row = {"labelled_events": size, **epochs_entry(labelled_epochs, size)}
        for name, (start, from_scratch, extra) in starts.items():
            model = finetune_once(out, start, labelled, held_out, size, from_scratch, [*budgets[size], *extra], name)
            curves[f"{METHODS[name]}, {size:,} labels"] = held_out_curve(model)
            metrics = evaluate_model(str(model), str(held_out), str(out / f"report_{name}_{size}"), progress=False)
            row[name] = metrics["overall"]["model"]["mean"]
            row["linefit"] = metrics["overall"]["linefit"]["mean"]
            for kind in ("track", "cascade"):  # the simulator's truth says which; real data has no such column
                if kind in metrics["breakdowns"]:
                    row[f"{name}_{kind}"] = metrics["breakdowns"][kind]["model"]["mean"]
                    row[f"linefit_{kind}"] = metrics["breakdowns"][kind]["linefit"]["mean"]
        rows.append(row)
    results = {"pretrain_events": pretrain_events, "eval_events": eval_events, "random": math.pi / 2, "rows": rows}
    if backbone is not None:
        results["backbone"] = str(backbone)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(results_table(results) + "\n")
    plot_results(results, out / "sample_efficiency.png")
    curves = {label: curve for label, curve in curves.items() if curve}
    if curves:  # fine-tuned with evaluation after every pass (the quickstart's YAML run)
        plot_learning_curves(curves, rows[-1]["linefit"], out / "learning_curves.png")
    return results


def held_out_curve(folder: Path) -> list[tuple[float, float]]:
    """(pass, held-out mean opening angle) after every evaluation a fine-tune made, from its trainer_state.json."""
    state = json.loads((folder / "trainer_state.json").read_text())
    return [(entry["epoch"], entry["eval_mean_opening_angle"]) for entry in state["log_history"]
            if "eval_mean_opening_angle" in entry]


def plot_learning_curves(curves: dict[str, list[tuple[float, float]]], linefit: float, path: Path) -> None:
    """Held-out mean opening angle after each pass of fine-tuning, one line per run ({label: curve}), LineFit beside
    them: where a pretrained start is ahead and where its from-scratch twin catches up."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4))
    for label, curve in curves.items():
        axis.plot(*zip(*curve), "o-", ms=3, label=label)
    axis.axhline(linefit, color="black", ls="--", label="LineFit")
    axis.set(xlabel="passes over the labelled events", ylabel="held-out mean opening angle [rad]",
             title="Fine-tuning, evaluated after every pass")
    axis.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)  # beside the axes: it covers no curve
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def run_task_study(out: Path, pretrained: Path, labelled: Path, held_out: Path, pretrain_events: int,
                   eval_events: int, budgets: dict[int, list[str]], task: str, label_columns: str) -> dict:
    """The study for a regression/classification task: headline figures of both models and the baseline, at each
    size of `budgets` (labelled events: fine-tuning arguments)."""
    prefix = task_prefix(task, label_columns)
    rows = []
    for size, finetune_args in budgets.items():
        row = {"labelled_events": size, "figures": {}}
        for from_scratch in (False, True):
            name = "scratch" if from_scratch else "pretrained"
            model = finetune_once(out, pretrained, labelled, held_out, size, from_scratch, finetune_args,
                                  task=task, label_columns=label_columns)
            metrics = evaluate_model(str(model), str(held_out), str(out / f"report_{prefix}{name}_{size}"),
                                     progress=False, train_dataset=str(labelled))
            for figure, (value, baseline) in task_figures(metrics).items():
                row["figures"].setdefault(figure, {})[name] = value
                row["figures"][figure]["baseline"] = baseline
        rows.append(row)
    results = {"pretrain_events": pretrain_events, "eval_events": eval_events, "task": task,
               "label_columns": label_columns, "baseline": metrics["baseline"], "rows": rows}
    stem = prefix[:-1]
    (out / f"results_{stem}.json").write_text(json.dumps(results, indent=2))
    (out / f"results_{stem}.md").write_text(results_table(results) + "\n")
    plot_results(results, out / f"sample_efficiency_{stem}.png")
    return results


def task_results_table(results: dict) -> str:
    """A task study's headline figures per labelled-set size: pretrained, from scratch, baseline."""
    lines = ["| labelled events | figure | pretrained | from scratch | baseline |", "|---|---|---|---|---|"]
    for row in results["rows"]:
        for figure, values in row["figures"].items():
            lines.append(f"| {row['labelled_events']:,} | {figure} | {values['pretrained']:.4f} | "
                         f"{values['scratch']:.4f} | {values['baseline']:.4f} |")
    return "\n".join(lines)


def _methods(results: dict) -> list[str]:
    return [name for name in METHODS if any(name in row for row in results["rows"])]


def results_table(results: dict) -> str:
    """The study's results as a markdown table: mean opening angle (rad) per labelled-set size, a column per
    method (the shipped backbone's where there is one), LineFit and a random guess; or a task's headline figures
    (pretrained, from scratch, baseline)."""
    if "task" in results:
        return task_results_table(results)
    methods = _methods(results)
    lines = ["| labelled events | " + " | ".join(METHODS[name] for name in methods) + " | LineFit | random |",
             "|---" * (len(methods) + 3) + "|"]

    def cells(row: dict, suffix: str = "") -> str:
        return " | ".join(f"{row[name + suffix]:.3f}" if name + suffix in row else "-" for name in methods)

    for row in results["rows"]:
        lines.append(f"| {row['labelled_events']:,} | {cells(row)} | {row['linefit']:.3f} | {results['random']:.3f} |")
        for kind in ("track", "cascade"):
            if f"pretrained_{kind}" in row:
                lines.append(f"| {kind}s only | {cells(row, '_' + kind)} | {row[f'linefit_{kind}']:.3f} | "
                             f"{results['random']:.3f} |")
    return "\n".join(lines)


def plot_results(results: dict, path: Path) -> None:
    """The paper's Figure 2 (right): mean opening angle against labelled events, both models and LineFit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    sizes = [row["labelled_events"] for row in rows]
    if "task" in results:
        plot_task_results(results, sizes, path, plt)
        return
    figure, axis = plt.subplots(figsize=(6, 4))
    labels = {"pretrained": ("o-", "PolarBERT, pretrained"), "scratch": ("s-", "same model, from scratch"),
              "backbone": ("D-", "PolarBERT, shipped backbone")}
    for name in _methods(results):
        marker, label = labels[name]
        axis.plot([row["labelled_events"] for row in rows if name in row], [row[name] for row in rows if name in row],
                  marker, label=label)
    axis.plot(sizes, [row["linefit"] for row in rows], "^--", label="LineFit")
    axis.axhline(results["random"], color="grey", ls=":", label="random guess")
    axis.set_xscale("log")
    axis.set(xlabel="labelled events for fine-tuning", ylabel="mean opening angle [rad]",
             title=f"Sample efficiency ({results['pretrain_events']:,} events pretraining)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_task_results(results: dict, sizes: list[int], path: Path, plt) -> None:
    """One panel per headline figure (resolution, AUC, ...): pretrained, scratch and baseline against N."""
    names = list(results["rows"][0]["figures"])
    figure, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 4), squeeze=False)
    for axis, name in zip(axes[0], names):
        values = [row["figures"][name] for row in results["rows"]]
        axis.plot(sizes, [v["pretrained"] for v in values], "o-", label="PolarBERT, pretrained")
        axis.plot(sizes, [v["scratch"] for v in values], "s-", label="same model, from scratch")
        axis.plot(sizes, [v["baseline"] for v in values], "^--", label=f"baseline: {results['baseline']['kind']}")
        axis.set_xscale("log")
        axis.set(xlabel="labelled events for fine-tuning", ylabel=name, title=name)
    axes[0][0].legend(fontsize=8)
    figure.suptitle(f"{results['task']} of {results['label_columns']} ({results['pretrain_events']:,} events "
                    "pretraining)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
