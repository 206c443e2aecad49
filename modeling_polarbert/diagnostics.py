"""Why does a model (not) learn? Measurements taken while a direction model trains, for docs/results.md.

`LearningDiagnostics` is a `TrainerCallback`: every `every` optimiser steps it records the gradient norm of each
part of the network (DOM embedding, feature embedding, position embedding, each block, the head) and, on a fixed
batch of held-out events, what the network's output depends on:

- `cls_spread`: the spread of the CLS vector across events (std over events, averaged over dimensions) over its
  rms size. Near 0: the CLS vector is the same for every event, the network ignores its input.
- `direction_resultant`: the length of the mean predicted unit vector. 1: one constant direction for all events.
- `time_sensitivity`: the mean angle (rad) the prediction moves when every event's time features are replaced by
  those of another event (its pulses kept): how much the output depends on the timing of the pulses.
- `dead_head_units`: the fraction of the direction head's hidden ReLU units that are zero for every event.
- `head_output_norm`, `head_bias_share`: the mean length of the head's raw 3-vector (before it is normalised), and
  the length of the last layer's bias over it. A share near 1: the bias alone sets the direction.

`with_time_of_other_events` is the swap behind `time_sensitivity` (and behind the track/cascade script's time-swap
AUC). `count_host_syncs` lists the ops of a step that would synchronise a GPU with the host (the benchmark and
the tests hold the training step to none).

`input_scales` measures, on a collated batch, the size of the parts that make up a pulse embedding, and how large
the within-event time differences that a direction needs are next to the event-to-event offsets.

`backbone_vectors` and `linear_probe_angle` measure how much direction a frozen backbone's output carries, read
linearly (`scripts/linear_probe.py`): whether pretraining kept it, against a random backbone of the same shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback


def parameter_groups(model) -> dict[str, list[torch.nn.Parameter]]:
    """The parts of a PolarBertFor... model whose gradient norms are worth reading apart."""
    backbone = model.polarbert
    groups = {
        "feature_embedding": list(backbone.embeddings.feature_embeddings.parameters()),
        "cls_token": [backbone.cls_embedding],
    }
    if hasattr(backbone.embeddings, "dom_embeddings"):  # not without `use_dom_embeddings`
        groups["dom_embedding"] = list(backbone.embeddings.dom_embeddings.parameters())
    if hasattr(backbone.embeddings, "position_embeddings"):
        groups["position_embedding"] = list(backbone.embeddings.position_embeddings.parameters())
    for index, layer in enumerate(backbone.layers):
        groups[f"layer_{index}"] = list(layer.parameters())
    head = getattr(model, "direction_head", None)
    if head is not None:
        groups["direction_head"] = list(head.parameters())
    return groups


def gradient_norms(model) -> dict[str, float]:
    norms = {}
    for name, parameters in parameter_groups(model).items():
        squares = [p.grad.detach().float().pow(2).sum() for p in parameters if p.grad is not None]
        norms[name] = float(torch.stack(squares).sum().sqrt()) if squares else 0.0
    return norms


def exact_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle between unit vectors, exact down to 0 (atan2 of sine and cosine; the training loss clips its arccos
    at 0.0014 rad, which would hide a model that does not move at all)."""
    return torch.atan2(torch.linalg.cross(a, b).norm(dim=-1), (a * b).sum(dim=-1))


@torch.no_grad()
def output_dependence(model, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """What the output of a direction model depends on, on one batch (see the module docstring)."""
    was_training = model.training
    model.eval()
    inputs = {key: batch[key] for key in ("dom_ids", "features", "attention_mask")}
    hidden = {}
    handle = model.direction_head[1].register_forward_hook(lambda module, args, output: hidden.setdefault("h", output))
    try:
        output = model(**inputs)
    finally:
        handle.remove()
    cls = output.last_hidden_state[:, 0].float()
    raw = model.direction_head(output.last_hidden_state[:, 0]).float()
    raw_norm = raw.norm(dim=-1).mean()
    direction = output.direction.float()
    shuffled = with_time_of_other_events(inputs["features"], inputs["attention_mask"])
    moved = model(inputs["dom_ids"], shuffled, inputs["attention_mask"]).direction.float()
    model.train(was_training)
    return {
        "cls_spread": float(cls.std(dim=0).mean() / cls.pow(2).mean().sqrt()),
        "direction_resultant": float(direction.mean(dim=0).norm()),
        "time_sensitivity": float(exact_angle(direction, moved).mean()),
        "dead_head_units": float((hidden["h"] <= 0).all(dim=0).float().mean()),
        "head_output_norm": float(raw_norm),
        "head_bias_share": float(model.direction_head[-1].bias.float().norm() / raw_norm),
    }


def with_time_of_other_events(features: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """A padded batch's features with each event's time columns (time, and time within the event where there is
    one) taken from the event before it in the batch (rolled by one), pulse by pulse; where only one of the two has
    a pulse, its own time stays. DOMs, charges and flags are kept: what is left of the timing is another event's."""
    shuffled = features.clone()
    rolled = torch.roll(features, shifts=1, dims=0)
    both = attention_mask.bool() & torch.roll(attention_mask, shifts=1, dims=0).bool()
    for column in [0] + ([3] if features.shape[-1] > 3 else []):
        shuffled[..., column] = torch.where(both, rolled[..., column], features[..., column])
    return shuffled


# Aten ops that need a value on the host (item/bool, boolean indexing, nonzero ...): each is a GPU->CPU
# synchronisation on an accelerator. On the CPU they cost nothing, but they are the same calls.
HOST_SYNC_OPS = {"_local_scalar_dense", "nonzero", "masked_select", "is_nonzero", "_unique2", "unique_consecutive",
                 "unique_dim", "repeat_interleave"}


def count_host_syncs(step, batch) -> list[str]:
    """The names of the host-sync ops (`HOST_SYNC_OPS`) that `step(batch)` calls, in call order."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counter(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.calls = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket.__name__ in HOST_SYNC_OPS:
                self.calls.append(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    with Counter() as counter:
        step(batch)
    return counter.calls


@torch.no_grad()
def input_scales(model, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """Sizes (rms over real pulses and dimensions) of the pulse-embedding parts, and of the time signal."""
    embeddings = model.polarbert.embeddings
    real = batch["attention_mask"].bool()
    features = batch["features"][real].float()
    parts = {"feature_embedding_rms": embeddings.feature_embeddings(features)}
    if hasattr(embeddings, "dom_embeddings"):
        parts["dom_embedding_rms"] = embeddings.dom_embeddings(batch["dom_ids"][real])
    if hasattr(embeddings, "position_embeddings"):
        positions = embeddings.dom_positions[batch["dom_ids"][real]] / model.config.position_scale
        parts["position_embedding_rms"] = embeddings.position_embeddings(positions)
    scales = {name: float(value.float().pow(2).mean().sqrt()) for name, value in parts.items()}
    # The absolute-time column: how far pulses of one event spread, against how far events' mean times differ.
    time = batch["features"][..., 0].float()
    counts = real.sum(dim=1).clamp_min(1)
    event_mean = (time * real).sum(dim=1) / counts
    within = ((time - event_mean[:, None]) ** 2 * real).sum(dim=1) / counts
    scales["time_within_event_std"] = float(within.mean().sqrt())
    scales["time_between_events_std"] = float(event_mean.std())
    return scales


class LearningDiagnostics(TrainerCallback):
    """Record `gradient_norms` and `output_dependence` every `every` steps into `path` (JSON lines)."""

    def __init__(self, probe_batch: dict[str, torch.Tensor], path: str | Path, every: int = 50):
        self.probe_batch = probe_batch
        self.path = Path(path)
        self.every = every
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        step = state.global_step + 1
        if step == 1 or step % self.every == 0:
            record = {"step": step, "gradient_norms": gradient_norms(model)}
            record.update(output_dependence(model, self.probe_batch))
            with self.path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")


def summarise(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_diagnostics(runs: dict[str, str | Path], path: str | Path) -> Path:
    """One PNG comparing runs (name -> diagnostics.jsonl) over training steps: the four signs of a collapse."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("direction_resultant", "mean predicted direction length\n(1 = one constant direction)"),
        ("cls_spread", "CLS spread across events / CLS size"),
        ("dead_head_units", "dead ReLU units in the head"),
        ("first_layer_gradient", "gradient norm, first block"),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    for name, jsonl in runs.items():
        records = summarise(jsonl)
        steps = [record["step"] for record in records]
        for axis, (key, label) in zip(axes, panels):
            if key == "first_layer_gradient":
                values = [record["gradient_norms"]["layer_0"] for record in records]
                axis.set_yscale("log")
            else:
                values = [record[key] for record in records]
            axis.plot(steps, values, "o-", ms=3, label=name)
            axis.set(xlabel="optimiser step", title=label)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


__all__ = ["LearningDiagnostics", "gradient_norms", "output_dependence", "with_time_of_other_events", "count_host_syncs",
           "input_scales", "summarise", "plot_diagnostics"]


@torch.no_grad()
def backbone_vectors(backbone, batches) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A frozen backbone's (CLS vectors, mean of the pulse vectors, true unit directions) for every event of
    labelled direction batches (`prediction.event_loader` with a direction collator): what a linear probe reads."""
    cls, mean, labels = [], [], []
    for batch in batches:
        output = backbone(batch["dom_ids"], batch["features"], batch["attention_mask"])
        real = batch["attention_mask"].unsqueeze(-1).float()
        cls.append(output.pooler_output.float())
        mean.append((output.last_hidden_state[:, 1:].float() * real).sum(1) / real.sum(1))
        labels.append(batch["labels"].float())
    return tuple(torch.cat(part).numpy() for part in (cls, mean, labels))


def linear_probe_angle(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                       ridge: float = 1e-3) -> float:
    """Mean opening angle (rad) on the test events of a ridge regression of the unit direction on standardised
    vectors, fitted on the training events: how much direction a representation carries, read linearly."""
    mean, scale = train_x.mean(0), train_x.std(0) + 1e-6
    design = np.c_[(train_x - mean) / scale, np.ones(len(train_x))]
    weights = np.linalg.solve(design.T @ design + ridge * len(design) * np.eye(design.shape[1]), design.T @ train_y)
    predicted = np.c_[(test_x - mean) / scale, np.ones(len(test_x))] @ weights
    predicted /= np.linalg.norm(predicted, axis=1, keepdims=True)
    return float(np.arccos(np.clip((predicted * test_y).sum(1), -1.0, 1.0)).mean())
