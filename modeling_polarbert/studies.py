"""The paper's sample-efficiency study on simulated events: pretrain once, fine-tune from the pretrained weights
and from scratch on N labelled events for each N, evaluate everything on one held-out set with LineFit beside it,
and write a table (results.md, results.json) and a plot like the paper's Figure 2 (right).

What `scripts/sample_efficiency.py` and `scripts/quickstart.py` run. Every step is skipped when its output already
exists, so an interrupted study resumes where it stopped.
"""

import json
import math
from pathlib import Path

from .evaluation import evaluate_model
from .preparation import prepare_kaggle
from .simulation import simulate_kaggle_dir
from .training import run_finetuning, run_pretraining

# The YAML runs the study starts from; they sit beside the package in the repository (configs/).
CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def simulated_dataset(data_dir: Path, name: str, n_events: int, seed: int, split: str = "train") -> Path:
    """Simulate a Kaggle-layout directory and prepare it, unless both already exist; return the prepared folder."""
    kaggle_dir, prepared = data_dir / f"kaggle_{name}", data_dir / f"prepared_{name}"
    if not prepared.exists():
        if not (kaggle_dir / f"{split}_meta.parquet").exists():
            simulate_kaggle_dir(kaggle_dir, n_events=n_events, seed=seed, split=split, batch_size=50_000)
        prepare_kaggle(kaggle_dir, prepared, split=split, progress=False)
    return prepared


def pretrain_once(out: Path, train: Path, extra: list[str]) -> Path:
    """`out/pretrained`, pretrained on `train` unless it already exists."""
    folder = out / "pretrained"
    if not (folder / "model.safetensors").exists():
        run_pretraining([str(CONFIGS / "pretrain_tiny.yaml"), "--train_dataset", str(train), "--output_dir", str(folder),
                       *extra])
    return folder


def finetune_once(out: Path, pretrained: Path, train: Path, evaluation: Path, size: int, from_scratch: bool,
                  extra: list[str]) -> Path:
    """`out/{pretrained,scratch}_{size}`, fine-tuned on the first `size` events of `train` unless it exists."""
    folder = out / f"{'scratch' if from_scratch else 'pretrained'}_{size}"
    if not (folder / "model.safetensors").exists():
        run_finetuning([str(CONFIGS / "finetune_tiny.yaml"), "--model_name_or_path", str(pretrained),
                       "--from_scratch", str(from_scratch).lower(), "--train_dataset", str(train),
                       "--eval_dataset", str(evaluation), "--max_train_events", str(size),
                       "--output_dir", str(folder), *extra])
    return folder


def run_study(out: Path, data_dir: Path, pretrain_events: int, labelled_sizes: list[int], eval_events: int,
              pretrain_args: list[str] = (), finetune_args: list[str] = ()) -> dict:
    """Pretrain once, fine-tune both ways at every size, evaluate everything on one held-out set."""
    out.mkdir(parents=True, exist_ok=True)
    unlabelled = simulated_dataset(data_dir, "pretrain", pretrain_events, seed=1)
    labelled = simulated_dataset(data_dir, "labelled", max(labelled_sizes), seed=2)
    held_out = simulated_dataset(data_dir, "eval", eval_events, seed=3)
    pretrained = pretrain_once(out, unlabelled, list(pretrain_args))

    rows = []
    for size in labelled_sizes:
        row = {"labelled_events": size}
        for from_scratch in (False, True):
            name = "scratch" if from_scratch else "pretrained"
            model = finetune_once(out, pretrained, labelled, held_out, size, from_scratch, list(finetune_args))
            metrics = evaluate_model(str(model), str(held_out), str(out / f"report_{name}_{size}"), progress=False)
            row[name] = metrics["overall"]["model"]["mean"]
            row["linefit"] = metrics["overall"]["linefit"]["mean"]
            for kind in ("track", "cascade"):  # the simulator's truth says which; real data has no such column
                if kind in metrics["breakdowns"]:
                    row[f"{name}_{kind}"] = metrics["breakdowns"][kind]["model"]["mean"]
                    row[f"linefit_{kind}"] = metrics["breakdowns"][kind]["linefit"]["mean"]
        rows.append(row)
    results = {"pretrain_events": pretrain_events, "eval_events": eval_events, "random": math.pi / 2, "rows": rows}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(results_table(results) + "\n")
    plot_results(results, out / "sample_efficiency.png")
    return results


def results_table(results: dict) -> str:
    """The study's results as a markdown table: mean opening angle (rad) per labelled-set size."""
    lines = ["| labelled events | pretrained | from scratch | LineFit | random |", "|---|---|---|---|---|"]
    for row in results["rows"]:
        lines.append(f"| {row['labelled_events']:,} | {row['pretrained']:.3f} | {row['scratch']:.3f} | "
                     f"{row['linefit']:.3f} | {results['random']:.3f} |")
        for kind in ("track", "cascade"):
            if f"pretrained_{kind}" in row:
                lines.append(f"| {kind}s only | {row[f'pretrained_{kind}']:.3f} | {row[f'scratch_{kind}']:.3f} | "
                             f"{row[f'linefit_{kind}']:.3f} | {results['random']:.3f} |")
    return "\n".join(lines)


def plot_results(results: dict, path: Path) -> None:
    """The paper's Figure 2 (right): mean opening angle against labelled events, both models and LineFit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [row["labelled_events"] for row in results["rows"]]
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(sizes, [row["pretrained"] for row in results["rows"]], "o-", label="PolarBERT, pretrained")
    axis.plot(sizes, [row["scratch"] for row in results["rows"]], "s-", label="same model, from scratch")
    axis.plot(sizes, [row["linefit"] for row in results["rows"]], "^--", label="LineFit")
    axis.axhline(results["random"], color="grey", ls=":", label="random guess")
    axis.set_xscale("log")
    axis.set(xlabel="labelled events for fine-tuning", ylabel="mean opening angle [rad]",
             title=f"Sample efficiency ({results['pretrain_events']:,} events pretraining)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
