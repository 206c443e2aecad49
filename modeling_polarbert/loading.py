"""Loading what the pipeline saved, for training and inference alike: a dataset written by `polarbert prepare`,
and a PolarBERT model folder (checked before transformers would give a cryptic error)."""

import json
from pathlib import Path

from .configuration_polarbert import PolarBertConfig
from .kaggle_layout import LABEL_COLUMNS


def check_is_polarbert_folder(path: str) -> None:
    """A clear error for a model folder that is not a PolarBERT model, before transformers gives a cryptic one.
    A path that does not exist is left to transformers (it may be a Hub id)."""
    config_file = Path(path) / "config.json"
    if Path(path).exists():
        if not config_file.is_file():
            raise ValueError(f"{path} is not a saved model: it has no config.json")
        model_type = json.loads(config_file.read_text()).get("model_type")
        if model_type != PolarBertConfig.model_type:
            raise ValueError(f"{path} is not a PolarBERT model (model_type {model_type!r}, expected 'polarbert')")


def load_prepared_dataset(path: str, require_labels: bool = False):
    """A folder written by `polarbert prepare`, memory-mapped."""
    import datasets

    if not (Path(path) / "dataset_info.json").is_file() and not (Path(path) / "state.json").is_file():
        raise FileNotFoundError(f"{path} is not a dataset written by `polarbert prepare`")
    dataset = datasets.load_from_disk(path)
    if require_labels and not set(LABEL_COLUMNS) <= set(dataset.column_names):
        raise ValueError(f"{path} has no azimuth/zenith labels (a test split?): direction training needs labels")
    return dataset
