"""Predictions of a fine-tuned model: directions over a prepared dataset, or streamed over a Kaggle-layout split
into the competition's submission file (event_id, azimuth, zenith); and the outputs of an event-level
regression/classification model (`PolarBertForSequenceClassification`) over a prepared dataset."""

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .collators import PolarBertDirectionCollator, PolarBertSequenceClassificationCollator, as_training_dataset
from .configuration_polarbert import PolarBertConfig
from .kaggle_layout import inspect_kaggle, submission_writer
from .loading import check_is_polarbert_folder
from .modeling_polarbert import PolarBertForDirection, PolarBertForSequenceClassification
from .numpy_directions import unit_vector_to_angles

SEQUENCE_CLASS = PolarBertForSequenceClassification.__name__


def load_direction_model(path: str, device: str | torch.device | None = None) -> PolarBertForDirection:
    """A fine-tuned PolarBertForDirection in eval mode, with a clear error for a folder that is not one."""
    check_is_polarbert_folder(path)
    if is_sequence_model(path):
        raise ValueError(f"{path} is a {SEQUENCE_CLASS} (an event-level regression/classification model), "
                         "not a direction model")
    model = PolarBertForDirection.from_pretrained(path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval()


def is_sequence_model(path: str) -> bool:
    """Whether a saved folder holds a PolarBertForSequenceClassification (its config's `architectures` say so)."""
    return SEQUENCE_CLASS in (PolarBertConfig.from_pretrained(path).architectures or [])


def load_sequence_model(path: str, device: str | torch.device | None = None) -> PolarBertForSequenceClassification:
    """A fine-tuned PolarBertForSequenceClassification in eval mode, with a clear error for any other folder."""
    check_is_polarbert_folder(path)
    if not is_sequence_model(path):
        raise ValueError(f"{path} is not a fine-tuned {SEQUENCE_CLASS}")
    model = PolarBertForSequenceClassification.from_pretrained(path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval()


@torch.no_grad()
def predict_directions(
    model: PolarBertForDirection, dataset, batch_size: int = 256, all_pulses: bool = False, progress: bool = True
) -> dict[str, np.ndarray]:
    """Unit direction vectors (N, 3), and kappa (N,) for a vMF model, for every event of a `datasets.Dataset`.

    Pulse selection is deterministic per event (`deterministic=True`), so the same event always gets the same
    prediction, whichever batch it lands in; `all_pulses` keeps every pulse of long events.
    """
    collator = PolarBertDirectionCollator(model.config, deterministic=True, keep_all_pulses=all_pulses)
    loader, order = event_loader(dataset, collator, batch_size, all_pulses)
    device = model.device
    directions, kappas = [], []
    for batch in tqdm(loader, desc="predicting", unit="batch", disable=not progress):
        batch.pop("labels", None)
        outputs = model(**{name: tensor.to(device, non_blocking=True) for name, tensor in batch.items()})
        directions.append(outputs.direction.float().cpu().numpy())
        if outputs.kappa is not None:
            kappas.append(outputs.kappa.float().cpu().numpy())
    in_dataset_order = np.argsort(order)
    direction = np.concatenate(directions)[in_dataset_order] if directions else np.zeros((0, 3), np.float32)
    return {"direction": direction, "kappa": np.concatenate(kappas)[in_dataset_order] if kappas else None}


def event_loader(dataset, collator, batch_size: int, all_pulses: bool) -> tuple[DataLoader, np.ndarray]:
    """A DataLoader over a dataset's events and the order it visits them in (dataset positions)."""
    events = as_training_dataset(dataset)
    if not all_pulses:
        return DataLoader(events, batch_size=batch_size, shuffle=False, collate_fn=collator), np.arange(len(events))
    # Events of up to ~100,000 pulses: batch them by length under a token budget, or one long event would pad a
    # whole batch to its length.
    order = np.argsort(events.lengths, kind="stable")
    batches = token_budget_batches(events.lengths[order], batch_size * (collator.config.max_pulses + 1))
    return DataLoader(events, batch_sampler=[order[batch].tolist() for batch in batches], collate_fn=collator), order


def token_budget_batches(sorted_lengths: np.ndarray, max_tokens: int) -> list[np.ndarray]:
    """Split positions 0..N-1 of length-sorted events into consecutive batches whose padded size (events x the
    longest) stays within `max_tokens`; an event longer than the budget gets a batch of its own."""
    batches, start = [], 0
    for end in range(1, len(sorted_lengths) + 1):
        if end - start > 1 and (end - start) * sorted_lengths[end - 1] > max_tokens:
            batches.append(np.arange(start, end - 1))
            start = end - 1
    if start < len(sorted_lengths):
        batches.append(np.arange(start, len(sorted_lengths)))
    return batches


@torch.no_grad()
def predict_sequence_logits(
    model: PolarBertForSequenceClassification, dataset, batch_size: int = 256, all_pulses: bool = False,
    progress: bool = True,
) -> np.ndarray:
    """(N, num_labels) float32 `logits` for every event of a `datasets.Dataset`, in dataset order: regression
    targets in physical units, or class scores (see `task_metrics.class_probabilities`). Deterministic pulse selection,
    as `predict_directions`."""
    collator = PolarBertSequenceClassificationCollator(model.config, deterministic=True, keep_all_pulses=all_pulses)
    loader, order = event_loader(dataset, collator, batch_size, all_pulses)
    device, logits = model.device, []
    for batch in tqdm(loader, desc="predicting", unit="batch", disable=not progress):
        batch.pop("labels", None)
        outputs = model(**{name: tensor.to(device, non_blocking=True) for name, tensor in batch.items()})
        logits.append(outputs.logits.float().cpu().numpy())
    if not logits:
        return np.zeros((0, model.config.num_labels), np.float32)
    return np.concatenate(logits)[np.argsort(order)]


def predict_kaggle_dir(
    model_path: str, kaggle_dir: str, out: str, split: str = "test", batch_size: int = 256, progress: bool = True
) -> Path:
    """Write `out` (CSV: event_id, azimuth, zenith), one row per meta event in meta order, batch file by batch file,
    so the full test set never has to be in memory. Every batch file is checked before anything is written, and
    the CSV appears only once complete."""
    import datasets

    from .preparation import convert_batch

    model = load_direction_model(model_path)
    source = inspect_kaggle(kaggle_dir, split, require_labels=False)
    out = Path(out)
    rows = 0
    with submission_writer(out) as write:
        for batch_id in tqdm(source.batch_ids, desc=f"{split} batches", unit="batch", disable=not progress):
            table = convert_batch(source, batch_id)
            directions = predict_directions(model, datasets.Dataset(table), batch_size, progress=False)
            azimuth, zenith = unit_vector_to_angles(directions["direction"])
            write(table.column("event_id").to_numpy(), azimuth, zenith)
            rows += table.num_rows
    print(f"wrote predictions for {rows:,} events to {out}")
    return out
