"""The events a benchmark draws from and the batches it times: the model sizes, the benchmark's model config, the
collator of each batching (padded to 128, random batches padded to their longest, length-grouped, packed)."""

from pathlib import Path

import numpy as np
import torch

from ..collators import PolarBertDirectionCollator, PolarBertPretrainingCollator
from ..configuration_polarbert import PolarBertConfig


MODELS = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256),
    "paper": dict(),  # PolarBertConfig's defaults: the paper's 8 M model
    # The largest model of the paper's scaling study (159 M parameters, trained there at batch 512).
    "159m": dict(hidden_size=1024, num_hidden_layers=12, num_attention_heads=16, intermediate_size=4096),
}


def simulated_dataset(n_events: int, seed: int):
    """An in-memory `datasets.Dataset` of simulated events, built as `polarbert prepare` builds it."""
    import tempfile

    from ..preparation import load_kaggle
    from ..simulation import simulate_kaggle_dir

    folder = Path(tempfile.mkdtemp(prefix="polarbert-benchmark-"))
    simulate_kaggle_dir(folder / "kaggle", n_events=n_events, seed=seed, batch_size=max(n_events, 1), progress=False)
    return load_kaggle(folder / "kaggle", "train")


def load_events(args):
    if args.dataset:
        from ..loading import load_prepared_dataset

        return load_prepared_dataset(args.dataset)
    return simulated_dataset(args.events, seed=0)


def benchmark_config(args, **overrides) -> PolarBertConfig:
    """The config of the model size `--model` names, as fast pretraining runs it (sparse prediction, no value checks)."""
    return PolarBertConfig(**{**MODELS[args.model], "sparse_prediction": True, "check_inputs": False, **overrides})


def collator_for(config, training: bool, batching: str, args, **kwargs):
    collator_class = PolarBertPretrainingCollator if training else PolarBertDirectionCollator
    pack_length = args.pack_length if batching == "packed" else None
    multiple = 8 if args.device.startswith("cuda") and batching != "packed" else None
    return collator_class(config, seed=0, pad_to_multiple_of=multiple, pack_length=pack_length, **kwargs)


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
        batch = collator(dataset.gather(indices.tolist()))
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


def to_device(batch: dict, device: torch.device, training: bool) -> dict:
    batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
    if not training:
        batch.pop("labels", None)
    return batch
