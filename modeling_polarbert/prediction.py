"""Direction predictions from a fine-tuned model: over a prepared dataset, or streamed over a Kaggle-layout split
into the competition's submission file (event_id, azimuth, zenith)."""

import csv
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .collators import PolarBertDirectionCollator, as_training_dataset
from .metrics import unit_vector_to_angles
from .modeling_polarbert import PolarBertForDirection


def load_direction_model(path: str, device: str | torch.device | None = None) -> PolarBertForDirection:
    """A fine-tuned PolarBertForDirection in eval mode, with a clear error for a folder that is not one."""
    from .training import check_is_polarbert_folder

    check_is_polarbert_folder(path)
    model = PolarBertForDirection.from_pretrained(path)
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
    loader = DataLoader(as_training_dataset(dataset), batch_size=batch_size, shuffle=False, collate_fn=collator)
    device = model.device
    directions, kappas = [], []
    for batch in tqdm(loader, desc="predicting", unit="batch", disable=not progress):
        batch.pop("labels", None)
        outputs = model(**{name: tensor.to(device, non_blocking=True) for name, tensor in batch.items()})
        directions.append(outputs.direction.float().cpu().numpy())
        if outputs.kappa is not None:
            kappas.append(outputs.kappa.float().cpu().numpy())
    empty = np.zeros((0, 3), dtype=np.float32)
    return {
        "direction": np.concatenate(directions) if directions else empty,
        "kappa": np.concatenate(kappas) if kappas else None,
    }


def predict_kaggle_dir(
    model_path: str, kaggle_dir: str, out: str, split: str = "test", batch_size: int = 256, progress: bool = True
) -> Path:
    """Write `out` (CSV: event_id, azimuth, zenith), one row per meta event in meta order, batch file by batch file,
    so the full test set never has to be in memory. Every batch file is checked before anything is written, and
    the CSV appears only once complete."""
    import datasets

    from .preparation import convert_batch, inspect_kaggle

    model = load_direction_model(model_path)
    source = inspect_kaggle(kaggle_dir, split, require_labels=False)
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    rows = 0
    try:
        with open(partial, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["event_id", "azimuth", "zenith"])
            for batch_id in tqdm(source.batch_ids, desc=f"{split} batches", unit="batch", disable=not progress):
                table = convert_batch(source, batch_id)
                directions = predict_directions(model, datasets.Dataset(table), batch_size, progress=False)
                azimuth, zenith = unit_vector_to_angles(directions["direction"])
                writer.writerows(zip(table.column("event_id").to_pylist(), azimuth.tolist(), zenith.tolist()))
                rows += table.num_rows
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    print(f"wrote predictions for {rows:,} events to {out}")
    return out
