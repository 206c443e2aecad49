"""The arguments of the training runs (`run_pretraining`, `run_finetuning` in training.py) and where they come from:
three dataclasses read by `HfArgumentParser` from a YAML file plus the command line (`parse_arguments`), the check
that a launcher really started the processes it was asked for (`check_launch`), and the model config that the
model arguments describe (`build_config`, with `--config_overrides`) with its feature extractor
(`build_feature_extractor`: the overrides that name an extractor setting go to the extractor, which owns them).
"""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from transformers import HfArgumentParser, TrainingArguments

from .configuration_polarbert import PolarBertConfig
from .feature_extraction_polarbert import PolarBertFeatureExtractor

# The feature extractor's settings (what its preprocessor_config.json holds): `--config_overrides` naming one of these
# set the extractor, and the model config takes what the model reads of it (`model_settings`).
FEATURE_EXTRACTOR_SETTINGS = frozenset(PolarBertFeatureExtractor().to_dict()) - {"feature_extractor_type"}


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A saved PolarBERT folder (or Hub id) to start from; none: a fresh model."}
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "Config values for a fresh model, or changes to a loaded one, e.g. "
                  "'hidden_size=64,num_hidden_layers=2,num_attention_heads=4,intermediate_size=256'."},
    )
    attn_implementation: str = field(default="sdpa", metadata={"help": "eager, sdpa, flash_attention_2, flex_attention"})
    from_scratch: bool = field(
        default=False, metadata={"help": "Take only the config of model_name_or_path; start from random weights."}
    )
    freeze_backbone: bool = field(default=False, metadata={"help": "Fine-tuning: train the task head only."})
    task: str = field(
        default="direction",
        metadata={"help": "Fine-tuning task: direction (PolarBertForDirection), regression or classification "
                  "(PolarBertForSequenceClassification, labels from --label_columns)."},
    )


@dataclass
class DataArguments:
    train_dataset: str = field(default="data/prepared/train", metadata={"help": "Folder written by `polarbert prepare`."})
    eval_dataset: str | None = field(
        default=None, metadata={"help": "Separate prepared folder for evaluation; none: the last eval_events of train."}
    )
    eval_events: int = field(default=2000, metadata={"help": "Events held out from train when no eval_dataset."})
    max_train_events: int | None = field(default=None, metadata={"help": "Train on the first N events only."})
    max_eval_events: int | None = field(default=None, metadata={"help": "Evaluate on the first N events only."})
    pack_length: int | None = field(
        default=None,
        metadata={"help": "Pack the training events into rows of this many tokens, with no padding between events "
                  "(the padding-free path; attn_implementation eager, sdpa or flex_attention). None: one padded "
                  "row per event. Evaluation batches stay padded."},
    )
    label_columns: str | None = field(
        default=None,
        metadata={"help": "Regression/classification labels: comma-separated dataset columns, 'log10:' to take a "
                  "column's log10, e.g. 'log10:energy', 'vertex_x,vertex_y,vertex_z', 'is_track'."},
    )


@dataclass
class PolarBertTrainingArguments(TrainingArguments):
    """`TrainingArguments` plus a wall-clock budget for the training loop (see `StopAtTimeLimit`)."""

    max_train_seconds: float | None = field(
        default=None,
        metadata={"help": "Stop training after this many seconds of the training loop (evaluation and saving after it "
                  "are extra) and save; the learning-rate schedule is fitted to the steps that fit. Set "
                  "num_train_epochs high enough that time, not epochs, is the limit."},
    )


ARGUMENT_TYPES = (ModelArguments, DataArguments, PolarBertTrainingArguments)


def parse_arguments(dataclass_types, argv: list[str] | None = None):
    """`script.py [config.yaml] [--key value ...]`: the YAML file sets defaults, the command line overrides them."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser(dataclass_types)
    if argv and argv[0].endswith((".yaml", ".yml")):
        path = Path(argv.pop(0))
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} not found")
        values = yaml.safe_load(path.read_text()) or {}
        known = {action.dest for action in parser._actions}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path}: unknown argument(s) {unknown}")
        parser.set_defaults(**values)
    return parser.parse_args_into_dataclasses(args=argv)


# Where a launcher tells a process how many there are: torchrun (WORLD_SIZE, LOCAL_RANK) or MPI.
_WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "LOCAL_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def check_launch(environ=None) -> None:
    """Refuse `accelerate launch --cpu --num_processes N` (N > 1) without MPI: accelerate then starts ONE process
    (its multi-CPU mode spawns through `mpirun`, `--mpirun_hostfile`) and only exports MASTER_ADDR for peers that
    never come, so the run would silently train on one process."""
    environ = os.environ if environ is None else environ
    accelerate_cpu = environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    if accelerate_cpu and "MASTER_ADDR" in environ and not any(name in environ for name in _WORLD_SIZE_VARIABLES):
        raise ValueError(
            "`accelerate launch --cpu` with several processes starts only one here (accelerate spawns CPU processes "
            "through mpirun, --mpirun_hostfile). For N processes on CPU use `accelerate launch --multi_gpu "
            "--num_processes N ...` or `torchrun --nproc_per_node N ...`, with `--use_cpu true --ddp_backend gloo`; "
            "for one process, `python scripts/...`"
        )


def parse_config_overrides(text: str | None) -> dict:
    """'a=1,b=x,c=true,d=null' -> {'a': 1, 'b': 'x', 'c': True, 'd': None}, values read as YAML scalars.

    Not `PretrainedConfig.update_from_string`, which reads the same 'key=value,...' text but behaves otherwise in
    what our runs need (tests/test_training_args.py holds both): it sets attributes of a config already built, so
    a fresh model's `PolarBertConfig.__init__` would neither check the values nor derive the sizes that follow
    from them (`direction_head_hidden_size` and `classifier_hidden_size` from `hidden_size`); it types each value
    after the field's current one, so a field that is None today cannot be set
    (`event_time_reference=charge_weighted_mean`, configs/pretrain_tiny.yaml) nor one set back to None; and an
    int field refuses a float."""
    if not text:
        return {}
    overrides = {}
    for item in text.split(","):
        key, separator, value = item.partition("=")
        if not separator:
            raise ValueError(f"config_overrides: expected key=value, got {item!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def build_feature_extractor(model_args: ModelArguments) -> PolarBertFeatureExtractor:
    """The run's feature extractor: the one saved with `model_name_or_path` (its preprocessor_config.json; for a
    folder saved without one, `for_model` of its config), or the defaults for a fresh model; then the overrides that
    name an extractor setting (`event_time_reference=charge_weighted_mean`, `max_pulses=64`...)."""
    overrides = {key: value for key, value in parse_config_overrides(model_args.config_overrides).items()
                 if key in FEATURE_EXTRACTOR_SETTINGS}
    folder = model_args.model_name_or_path
    if not folder:
        return PolarBertFeatureExtractor(**overrides)
    if Path(folder, "preprocessor_config.json").is_file():
        return PolarBertFeatureExtractor.from_pretrained(folder).with_settings(**overrides)
    return PolarBertFeatureExtractor.for_model(PolarBertConfig.from_pretrained(folder)).with_settings(**overrides)


def build_config(model_args: ModelArguments, feature_extractor: PolarBertFeatureExtractor | None = None,
                 **fixed) -> PolarBertConfig:
    """The config of a fresh model, or that of `model_name_or_path` with the overrides applied, recording what the
    model reads of `feature_extractor` (default: `build_feature_extractor(model_args)`)."""
    extractor = feature_extractor or build_feature_extractor(model_args)
    overrides = {key: value for key, value in {**parse_config_overrides(model_args.config_overrides), **fixed}.items()
                 if key not in FEATURE_EXTRACTOR_SETTINGS}
    overrides.update(extractor.model_settings())
    if model_args.model_name_or_path:
        config = PolarBertConfig.from_pretrained(model_args.model_name_or_path)
        unknown = [key for key in overrides if not hasattr(config, key)]
        if unknown:
            raise ValueError(f"config_overrides: unknown PolarBertConfig field(s) {unknown}")
        for key, value in overrides.items():
            setattr(config, key, value)
        return config
    return PolarBertConfig(**overrides)
