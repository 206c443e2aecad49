"""Predictions of a fine-tuned model: directions over a prepared dataset, or streamed over a Kaggle-layout split
into the competition's submission file (event_id, azimuth, zenith); and the outputs of an event-level
regression/classification model (`PolarBertForSequenceClassification`) over a prepared dataset."""

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers.utils import FEATURE_EXTRACTOR_NAME

from .collators import PolarBertDirectionCollator, PolarBertSequenceClassificationCollator
from .feature_extraction_polarbert import PolarBertFeatureExtractor
from .kaggle_layout import inspect_kaggle, submission_writer
from .loading import check_is_polarbert_folder, safetensors_names
from .modeling_polarbert import PolarBertForDirection, PolarBertForSequenceClassification
from .numpy_directions import unit_vector_to_angles
from .pulse_dataset import as_pulse_dataset

def load_direction_model(path: str, device: str | torch.device | None = None) -> PolarBertForDirection:
    """A fine-tuned PolarBertForDirection in eval mode. Refuses, with a clear error, whatever would predict
    garbage without a word: a checkpoint whose direction head was never trained (pretraining, backbone or another
    task), missing or unreadable weights, a saved feature extractor that disagrees with the model's config."""
    finetune = (f"Fine-tune a direction model first: python scripts/finetune.py configs/finetune_tiny.yaml "
                f"--model_name_or_path {path} --output_dir DIRECTION_MODEL")
    return load_fine_tuned(path, PolarBertForDirection, "direction", "direction_head", finetune, device)


def load_sequence_model(path: str, device: str | torch.device | None = None) -> PolarBertForSequenceClassification:
    """A fine-tuned PolarBertForSequenceClassification in eval mode, with the refusals of `load_direction_model`."""
    finetune = (f"Fine-tune one first: python scripts/finetune.py configs/finetune_tiny.yaml --model_name_or_path "
                f"{path} --task regression --label_columns log10:energy --output_dir TASK_MODEL")
    return load_fine_tuned(path, PolarBertForSequenceClassification, "regression/classification", "classifier",
                           finetune, device)


def load_fine_tuned(path: str, model_class, task: str, head: str, finetune: str, device=None):
    """`model_class` from `path` in eval mode, after checking that the folder holds that class (a `task` model) with
    its trained head (the module named `head`) and every weight; `finetune` says how to make one."""
    config = check_is_polarbert_folder(path)
    architectures = config.get("architectures") or []
    if architectures and model_class.__name__ not in architectures:
        # Another head (pretraining, a backbone, or another task's): this one's weights would be random.
        raise ValueError(f"{path} holds a {' / '.join(architectures)} checkpoint, not a {task} model: its {task} "
                         f"head was never trained. {finetune}")
    # Decided before loading, so that no load report about randomly initialised weights comes first.
    if Path(path).is_dir() and not any(name.startswith(f"{head}.") for name in safetensors_names(path)):
        raise ValueError(f"{path}: its weights hold no {head} tensors: the {task} head was never trained. {finetune}")
    model, loading_info = model_class.from_pretrained(path, output_loading_info=True)
    check_has_weights(path, loading_info["missing_keys"])  # from_pretrained refused a disagreeing extractor
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval()


def feature_extractor_of(model) -> PolarBertFeatureExtractor:
    """The feature extractor saved with a loaded model (its folder's preprocessor_config.json, as a Transformers
    pipeline loads the processor from the model's `name_or_path`), or `for_model(model.config)` for a model that has
    none (built in memory, or saved without one)."""
    folder = model.name_or_path
    if folder and Path(folder, FEATURE_EXTRACTOR_NAME).is_file():
        return PolarBertFeatureExtractor.from_pretrained(folder)
    return PolarBertFeatureExtractor.for_model(model.config)


def check_has_weights(path, missing) -> None:
    if missing:
        missing = sorted(missing)
        raise ValueError(f"{path}: the weights lack {len(missing)} tensor(s) of the model ({missing[:4]}"
                         f"{' ...' if len(missing) > 4 else ''}): they would be random")


@torch.no_grad()
def predict_directions(
    model: PolarBertForDirection, dataset, batch_size: int = 256, all_pulses: bool = False, progress: bool = True,
    num_workers: int = 0,
) -> dict[str, np.ndarray]:
    """Unit direction vectors (N, 3), and kappa (N,) for a vMF model, for every event of a `datasets.Dataset`.

    Pulse selection is deterministic per event (`deterministic=True`), so the same event always gets the same
    prediction, whichever batch it lands in; `all_pulses` keeps every pulse of long events. `num_workers`
    DataLoader processes collate while the model runs; the outputs stay on the device until the end, so that the
    loop never waits for the device.
    """
    collator = PolarBertDirectionCollator(model.config, deterministic=True, keep_all_pulses=all_pulses,
                                          feature_extractor=feature_extractor_of(model))
    device = model.device
    loader, order = event_loader(dataset, collator, batch_size, all_pulses, num_workers, device)
    directions, kappas = [], []
    for batch in tqdm(loader, desc="predicting", unit="batch", disable=not progress):
        batch.pop("labels", None)
        outputs = model(**{name: tensor.to(device, non_blocking=True) for name, tensor in batch.items()})
        directions.append(outputs.direction.float())
        if outputs.kappa is not None:
            kappas.append(outputs.kappa.float())
    in_dataset_order = np.argsort(order)
    direction = torch.cat(directions).cpu().numpy()[in_dataset_order] if directions else np.zeros((0, 3), np.float32)
    return {"direction": direction, "kappa": torch.cat(kappas).cpu().numpy()[in_dataset_order] if kappas else None}


def event_loader(dataset, collator, batch_size: int, all_pulses: bool, num_workers: int = 0,
                 device: torch.device | None = None) -> tuple[DataLoader, np.ndarray]:
    """A DataLoader over a dataset's events and the order it visits them in (dataset positions)."""
    events = as_pulse_dataset(dataset)  # no label columns: predictions need none, a test split has none
    if all_pulses:
        # Events of up to ~100,000 pulses: batch them by length under a token budget, or one long event would
        # pad a whole batch to its length.
        order = np.argsort(events.lengths, kind="stable")
        batches = token_budget_batches(events.lengths[order], batch_size * (collator.max_pulses + 1))
        batch_sampler = [order[batch].tolist() for batch in batches]
    else:
        order = np.arange(len(events))
        batch_sampler = [order[start:start + batch_size].tolist() for start in range(0, len(events), batch_size)]
    loader = DataLoader(events, batch_sampler=batch_sampler, collate_fn=collator, num_workers=num_workers,
                        pin_memory=device is not None and device.type == "cuda")
    return loader, order


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
    progress: bool = True, num_workers: int = 0,
) -> np.ndarray:
    """(N, num_labels) float32 `logits` for every event of a `datasets.Dataset`, in dataset order: regression
    targets in physical units, or class scores (see `task_metrics.class_probabilities`). Deterministic pulse selection,
    as `predict_directions`."""
    collator = PolarBertSequenceClassificationCollator(model.config, deterministic=True, keep_all_pulses=all_pulses,
                                                       feature_extractor=feature_extractor_of(model))
    device, logits = model.device, []
    loader, order = event_loader(dataset, collator, batch_size, all_pulses, num_workers, device)
    for batch in tqdm(loader, desc="predicting", unit="batch", disable=not progress):
        batch.pop("labels", None)
        outputs = model(**{name: tensor.to(device, non_blocking=True) for name, tensor in batch.items()})
        logits.append(outputs.logits.float())
    if not logits:
        return np.zeros((0, model.config.num_labels), np.float32)
    return torch.cat(logits).cpu().numpy()[np.argsort(order)]


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
