"""The model card written beside every saved PolarBERT model (README.md, what the Hub shows), and the export of a
pretrained backbone as a small half-precision checkpoint to ship."""

from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

MAX_SHIPPED_FILE_BYTES = 16 * 2**20  # each file of a checkpoint committed to the repository

# The paper (University of Copenhagen); the README and model_card.md carry the same entry.
CITATION_BIBTEX = """@inproceedings{timiryasov2024polarbert,
  title     = {{PolarBERT}: A Foundation Model for {IceCube}},
  author    = {Timiryasov, Inar and Tastet, Jean-Loup and Ruchayskiy, Oleg},
  booktitle = {Machine Learning and the Physical Sciences Workshop, NeurIPS 2024},
  year      = {2024}
}"""

CARD_TEMPLATE = """---
{card_data}
---

# {title}

PolarBERT is a BERT-style foundation model for the IceCube Neutrino Observatory (Timiryasov, Tastet and
Ruchayskiy, "PolarBERT: A Foundation Model for IceCube", NeurIPS 2024 workshop Machine Learning and the Physical
Sciences), here as a native Hugging Face Transformers model.
An event is a time-ordered sequence of pulses: a DOM id (one of 5,160 optical modules) plus scaled time, charge and
auxiliary flag. The model is pretrained by masking DOM ids and predicting them (and the event's total charge),
then fine-tuned for the direction the neutrino came from or for an event-level quantity (energy, event type, vertex).

This checkpoint: **{architecture}**, {parameters:,} parameters, hidden size {hidden_size}, {layers} layers,
{heads} heads, DOM positions in the embedding: {use_dom_positions}, relative to the event's reference point:
{event_position_reference}.

{use}## Training data

{training_data}

## Evaluation

{evaluation}

## Limitations

- Events are down-sampled to {max_pulses} pulses (primary pulses first); the paper found that this costs accuracy on
  the most energetic events. `polarbert evaluate --all-pulses` evaluates with every pulse.
- Trained on simulation. A model trained on this project's own simulator has not seen real IceCube ice or
  detector effects beyond what the simulator models (docs/simulator.md).
- The direction is the one the neutrino came from (Kaggle convention); angles in radians.

## Citation

```bibtex
{citation}
```
"""


USE_DIRECTION = """## Use

With only `transformers` and `torch` installed (pandas to read a Kaggle batch file), from this repository to the
direction each event came from. Transformers has no Auto class for a unit-vector regression, so the class comes
from this repository's code by name:

```python
import pandas as pd
import torch
from transformers import AutoFeatureExtractor
from transformers.dynamic_module_utils import get_class_from_dynamic_module

extractor = AutoFeatureExtractor.from_pretrained("{repo}", trust_remote_code=True)
PolarBertForDirection = get_class_from_dynamic_module("modeling_polarbert.PolarBertForDirection", "{repo}")
model = PolarBertForDirection.from_pretrained("{repo}").eval()

pulses = pd.read_parquet("test/batch_661.parquet")  # a Kaggle batch file: one row per pulse, event_id the index
events = [{{"event_id": i, **pulses.loc[[i]].to_dict("list")}} for i in pulses.index.unique()[:3]]
with torch.no_grad():
    direction = model(**extractor(events, return_tensors="pt")).direction  # (3, 3) unit vectors
azimuth = torch.atan2(direction[:, 1], direction[:, 0]) % (2 * torch.pi)
zenith = torch.arccos(direction[:, 2].clamp(-1, 1))
```

An event is a mapping of its pulses' `sensor_id`, `time` (ns), `charge` (p.e.) and `auxiliary` (as in the Kaggle
files) and its `event_id`: the feature extractor down-samples events of more than {max_pulses} pulses exactly as
`polarbert predict` does, drawing from the event_id, scales the features and pads (`keep_all_pulses=True` keeps
every pulse). `AutoModel.from_pretrained("{repo}", trust_remote_code=True)` gives the backbone. With the `polarbert`
package installed, `PolarBertForDirection.from_pretrained("{repo}")` loads it too, and `polarbert predict {repo}
KAGGLE_DIR --split test --out submission.csv` writes a Kaggle submission.

"""

USE_SEQUENCE = """## Use

An event-level {problem_type} of `{label_columns}` (`id2label`: {id2label}). With only `transformers` and `torch`
installed (pandas to read a Kaggle batch file):

```python
import pandas as pd
import torch
from transformers import AutoFeatureExtractor, AutoModelForSequenceClassification

extractor = AutoFeatureExtractor.from_pretrained("{repo}", trust_remote_code=True)
model = AutoModelForSequenceClassification.from_pretrained("{repo}", trust_remote_code=True).eval()

pulses = pd.read_parquet("test/batch_661.parquet")  # a Kaggle batch file: one row per pulse, event_id the index
events = [{{"event_id": i, **pulses.loc[[i]].to_dict("list")}} for i in pulses.index.unique()[:3]]
with torch.no_grad():
    logits = model(**extractor(events, return_tensors="pt")).logits  # (3, num_labels)
```

Regression `logits` are in the targets' units (a `log10:` column is its log10); classification `logits` are the
classes' scores, named by `model.config.id2label`. With the `polarbert` package installed, `polarbert evaluate`
gives its metrics beside the simplest baseline (a fit on the event's total charge, or the majority class).

"""

USE_BACKBONE = """## Use

A pretrained backbone: it has no trained head, so fine-tune it for directions first
(`python scripts/finetune.py configs/finetune_paper.yaml --model_name_or_path {repo}`; `polarbert predict` refuses
it) or for another event-level task (`--task regression --label_columns log10:energy`). With only `transformers` and `torch` installed, its event embeddings:

```python
import pandas as pd
from transformers import AutoFeatureExtractor, AutoModel

extractor = AutoFeatureExtractor.from_pretrained("{repo}", trust_remote_code=True)
backbone = AutoModel.from_pretrained("{repo}", trust_remote_code=True).eval()

pulses = pd.read_parquet("test/batch_661.parquet")  # a Kaggle batch file: one row per pulse, event_id the index
events = [{{"event_id": i, **pulses.loc[[i]].to_dict("list")}} for i in pulses.index.unique()[:3]]
embeddings = backbone(**extractor(events, return_tensors="pt")).pooler_output  # (3, hidden_size), the CLS vectors
```

An event is a mapping of its pulses' `sensor_id`, `time` (ns), `charge` (p.e.) and `auxiliary` (as in the Kaggle
files) and its `event_id`: the feature extractor down-samples events of more than {max_pulses} pulses exactly as
`polarbert predict` does, drawing from the event_id, scales the features and pads (`keep_all_pulses=True` keeps
every pulse).

"""


def _use_section(model, repo: str, max_pulses: int) -> str:
    """The card's Use section for the checkpoint's head: direction, another event-level task, or none."""
    config = model.config
    name = type(model).__name__
    if name == "PolarBertForDirection":
        return USE_DIRECTION.format(repo=repo, max_pulses=max_pulses)
    if name == "PolarBertForSequenceClassification":
        return USE_SEQUENCE.format(repo=repo, problem_type=config.problem_type, id2label=config.id2label,
                                   label_columns=", ".join(config.label_columns or []))
    return USE_BACKBONE.format(repo=repo, max_pulses=max_pulses)


def write_model_card(
    folder: str | Path,
    model,
    training_data: str = "Not recorded.",
    metrics: dict | None = None,
    repo_id: str | None = None,
    feature_extractor=None,
) -> Path:
    """Write folder/README.md with Hub metadata (library, tags, license) and the measured figures; the pulse
    selection it describes is `feature_extractor`'s (the model's `PolarBertFeatureExtractor`; default: its
    defaults)."""
    from .feature_extraction_polarbert import PolarBertFeatureExtractor

    folder = Path(folder)
    config = model.config
    max_pulses = (feature_extractor or PolarBertFeatureExtractor()).max_pulses
    evaluation = "No evaluation recorded."
    if metrics:
        evaluation = "| metric | value |\n|---|---|\n" + "\n".join(
            f"| {name} | {value:.4f} |" if isinstance(value, float) else f"| {name} | {value} |"
            for name, value in metrics.items()
        )
    card_data = ModelCardData(
        library_name="transformers",
        license="apache-2.0",
        tags=["polarbert", "icecube", "neutrino", "physics", "foundation-model", "custom_code"],
    )
    card = CARD_TEMPLATE.format(
        card_data=card_data.to_yaml(),
        title=repo_id or folder.name,
        architecture=type(model).__name__,
        parameters=model.num_parameters(),
        hidden_size=config.hidden_size,
        layers=config.num_hidden_layers,
        heads=config.num_attention_heads,
        use_dom_positions=config.use_dom_positions,
        event_position_reference=config.event_position_reference,
        repo=repo_id or str(folder),
        training_data=training_data,
        evaluation=evaluation,
        max_pulses=max_pulses,
        use=_use_section(model, repo_id or str(folder), max_pulses),
        citation=CITATION_BIBTEX,
    )
    path = folder / "README.md"
    ModelCard(card).save(path)
    return path


def save_backbone(
    pretrained: str | Path,
    out_dir: str | Path,
    training_data: str,
    metrics: dict | None = None,
    dtype: str = "bfloat16",
    max_file_bytes: int = MAX_SHIPPED_FILE_BYTES,
    repo_id: str | None = None,
) -> Path:
    """Save the backbone (`PolarBertModel`, without the masked-DOM head) of a pretraining run in `out_dir`: its
    weights in `dtype` ("bfloat16", "float16", or "float32" for a model small enough to ship losslessly; buffers
    stay float32) safetensors, its config, feature extractor
    (`preprocessor_config.json`), code and a model card (`training_data` and `metrics` go into it); every file
    stays within `max_file_bytes` (weights are sharded if they must be). `repo_id`: the name the card gives it
    (where it will be committed or pushed). Training from it loads float32 master weights (`run_finetuning`);
    `AutoModel.from_pretrained` gives `dtype`."""
    import torch

    from .feature_extraction_polarbert import PolarBertFeatureExtractor
    from .modeling_polarbert import PolarBertModel

    if dtype not in ("bfloat16", "float16", "float32"):
        raise ValueError(f"dtype must be 'bfloat16', 'float16' or 'float32', got {dtype!r}")
    out_dir = Path(out_dir)
    model = PolarBertModel.from_pretrained(pretrained, dtype=torch.float32)
    # Weights only: a buffer such as the DOM coordinates (metres, up to ~600) keeps float32, which bf16's 8-bit
    # mantissa would round to metres.
    for parameter in model.parameters():
        parameter.data = parameter.data.to(getattr(torch, dtype))
    # The shard size counts tensor bytes; 2 % more room for each file's JSON header.
    model.save_pretrained(out_dir, max_shard_size=int(0.98 * max_file_bytes))
    if Path(pretrained, "preprocessor_config.json").is_file():
        extractor = PolarBertFeatureExtractor.from_pretrained(pretrained)  # the run's (model.from_pretrained checked it)
    else:
        extractor = PolarBertFeatureExtractor.for_model(model.config)
    extractor.save_pretrained(out_dir)
    write_model_card(out_dir, model, training_data=training_data, metrics=metrics, repo_id=repo_id,
                     feature_extractor=extractor)
    too_large = [path.name for path in out_dir.iterdir() if path.stat().st_size > max_file_bytes]
    if too_large:
        raise ValueError(f"{out_dir}: {too_large} larger than {max_file_bytes:,} bytes")
    return out_dir
