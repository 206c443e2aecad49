"""Loading what the pipeline saved, for training and inference alike: a dataset written by `polarbert prepare`,
and a PolarBERT model folder or Hub id (config and weights checked before transformers would give a cryptic error
or a traceback)."""

import json
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.errors import HFValidationError
from safetensors import safe_open

from .configuration_polarbert import PolarBertConfig
from .kaggle_layout import DIRECTION_COLUMNS


def check_is_polarbert_folder(path: str) -> dict:
    """The config.json (as a dict) of a PolarBERT model folder or Hub id; a clear error for anything else (a path
    that is neither a folder nor a reachable Hub id, a folder without a config, another model type) before
    transformers gives a cryptic one or a connection traceback."""
    folder = Path(path)
    if folder.is_dir():
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise ValueError(f"{path} is not a saved model: it has no config.json")
        try:
            config = json.loads(config_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{config_file} is not valid JSON ({error})") from None
    elif folder.exists():
        raise ValueError(f"{path} is a file, not a model folder")
    else:
        config = hub_model_config(str(path))
    model_type = config.get("model_type")
    if model_type != PolarBertConfig.model_type:
        raise ValueError(f"{path} is not a PolarBERT model (model_type {model_type!r}, expected 'polarbert')")
    return config


def hub_model_config(model_id: str) -> dict:
    """config.json of a Hub model (from the local cache if it is there), or "no such model folder" at once: a
    plain lookup of the model (no retries) decides, instead of a download that retries a dead connection for
    half a minute and then fails with a traceback."""
    try:
        return PolarBertConfig.get_config_dict(model_id, local_files_only=True)[0]
    except (OSError, HFValidationError):
        pass
    try:
        HfApi().model_info(model_id, timeout=10)
    except Exception:  # invalid id, unknown repository, no connection: all the same to the user
        raise FileNotFoundError(f"no such model folder: {model_id} (nor a model id reachable on the Hugging Face "
                                f"Hub)") from None
    return PolarBertConfig.get_config_dict(model_id)[0]


def safetensors_names(folder: str) -> set[str]:
    """The tensor names of a folder's safetensors weights; one clear error naming the file for missing, truncated
    or corrupt ones (before transformers fails on them with a traceback)."""
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise ValueError(f"{folder} holds no model.safetensors: not a saved model")
    names = set()
    for file in files:
        try:
            with safe_open(file, framework="pt") as weights:
                names.update(weights.keys())
        except Exception as error:  # safetensors raises its own SafetensorError, an Exception subclass
            raise ValueError(f"{file} is not a readable safetensors file (truncated or corrupt: {error})") from None
    return names


def load_prepared_dataset(path: str, require_labels: bool = False):
    """A folder written by `polarbert prepare`, memory-mapped."""
    import datasets

    if not (Path(path) / "dataset_info.json").is_file() and not (Path(path) / "state.json").is_file():
        raise FileNotFoundError(f"{path} is not a dataset written by `polarbert prepare`")
    dataset = datasets.load_from_disk(path)
    if require_labels and not set(DIRECTION_COLUMNS) <= set(dataset.column_names):
        raise ValueError(f"{path} has no azimuth/zenith labels (a test split?): direction training needs labels")
    return dataset
