"""The model card written beside every saved PolarBERT model (README.md, what the Hub shows)."""

from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

CARD_TEMPLATE = """---
{card_data}
---

# {title}

PolarBERT is a BERT-style foundation model for the IceCube Neutrino Observatory (Hallin et al., "PolarBERT: a
foundation model for IceCube", NeurIPS 2024 ML4PS workshop), here as a native Hugging Face Transformers model.
An event is a time-ordered sequence of pulses: a DOM id (one of 5,160 optical modules) plus scaled time, charge and
auxiliary flag. The model is pretrained by masking DOM ids and predicting them (and the event's total charge),
then fine-tuned for the direction the neutrino came from or for an event-level quantity (energy, event type, vertex).

This checkpoint: **{architecture}**, {parameters:,} parameters, hidden size {hidden_size}, {layers} layers,
{heads} heads, DOM positions in the embedding: {use_dom_positions}.{task}

## Use

```python
from transformers import AutoModel
model = AutoModel.from_pretrained("{repo}", trust_remote_code=True)   # the backbone
```

{use}
Inputs follow the batch contract of `modeling_polarbert.py` (`dom_ids`, `features`, `attention_mask`); build them
with `{collator}(model.config)` from a dataset made by `polarbert prepare`.

## Training data

{training_data}

## Evaluation

{evaluation}

## Limitations

- Events are down-sampled to {max_pulses} pulses (primary pulses first); the paper found that this costs accuracy on
  the most energetic events. `polarbert evaluate --all-pulses` evaluates with every pulse.
- Trained on simulation. A model trained on this project's own simulator has not seen real IceCube ice or
  detector effects beyond what the simulator models (docs/simulator.md).
- The direction is the one the neutrino came from (Kaggle convention); angles in radians.
"""


def write_model_card(
    folder: str | Path,
    model,
    training_data: str = "Not recorded.",
    metrics: dict | None = None,
    repo_id: str | None = None,
) -> Path:
    """Write folder/README.md with Hub metadata (library, tags, license) and the measured figures."""
    folder = Path(folder)
    config = model.config
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
    if type(model).__name__ == "PolarBertForSequenceClassification":
        task = (f" Task: {config.problem_type} of `{', '.join(config.label_columns or [])}` (`id2label`: "
                f"{config.id2label}).")
        use = (f'`AutoModelForSequenceClassification.from_pretrained("{repo_id or folder}", trust_remote_code=True)` '
               "gives this model (regression `logits` in the targets' units), and `polarbert evaluate` its metrics "
               "beside the baseline.")
        collator = "PolarBertSequenceClassificationCollator"
    else:
        task = ""
        use = (f'With the `polarbert` package installed, `PolarBertForDirection.from_pretrained("{repo_id or folder}")` '
               f"gives the direction model, and `polarbert predict {repo_id or folder} KAGGLE_DIR --split test --out "
               "submission.csv` writes a Kaggle submission.")
        collator = "PolarBertDirectionCollator"
    card = CARD_TEMPLATE.format(
        task=task,
        use=use,
        collator=collator,
        card_data=card_data.to_yaml(),
        title=repo_id or folder.name,
        architecture=type(model).__name__,
        parameters=model.num_parameters(),
        hidden_size=config.hidden_size,
        layers=config.num_hidden_layers,
        heads=config.num_attention_heads,
        use_dom_positions=config.use_dom_positions,
        repo=repo_id or str(folder),
        training_data=training_data,
        evaluation=evaluation,
        max_pulses=config.max_pulses,
    )
    path = folder / "README.md"
    ModelCard(card).save(path)
    return path
