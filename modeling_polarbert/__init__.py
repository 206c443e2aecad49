"""PolarBERT for IceCube as a native Hugging Face Transformers model.

Importing the package registers the config and models with the Auto classes, so that
`AutoModel.from_pretrained(folder)` works on any saved PolarBERT folder, and marks them for auto classes so that
`save_pretrained` / `push_to_hub` ship the code beside the weights (loadable with `trust_remote_code=True`). The
feature extractor (events -> model inputs) registers with `AutoFeatureExtractor` the same way, and the data
collators are exported here as Transformers exports its own.
"""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
)

from .collators import (
    PolarBertDirectionCollator,
    PolarBertPretrainingCollator,
    PolarBertSequenceClassificationCollator,
)
from .configuration_polarbert import PolarBertConfig
from .feature_extraction_polarbert import PolarBertFeatureExtractor
from .modeling_polarbert import (
    PolarBertDirectionOutput,
    PolarBertForDirection,
    PolarBertForMaskedDOM,
    PolarBertForSequenceClassification,
    PolarBertMaskedDOMOutput,
    PolarBertModel,
    PolarBertPreTrainedModel,
    angles_to_unit_vector,
    opening_angle,
    unit_vector_to_angles,
)
from .pulse_dataset import PolarBertPulseDataset, as_pulse_dataset

AutoConfig.register("polarbert", PolarBertConfig)
AutoModel.register(PolarBertConfig, PolarBertModel)
AutoModelForMaskedLM.register(PolarBertConfig, PolarBertForMaskedDOM)
AutoModelForPreTraining.register(PolarBertConfig, PolarBertForMaskedDOM)
# Transformers' auto class for sequence-level heads, regression included (energy, event type, vertex).
# PolarBertForDirection has no Auto class: Transformers has none for a unit-vector regression, and one model type
# maps to one class per Auto class (see the docstring of modeling_polarbert.py).
AutoModelForSequenceClassification.register(PolarBertConfig, PolarBertForSequenceClassification)
AutoFeatureExtractor.register(PolarBertConfig, PolarBertFeatureExtractor)

PolarBertConfig.register_for_auto_class()
PolarBertModel.register_for_auto_class("AutoModel")
PolarBertForMaskedDOM.register_for_auto_class("AutoModelForMaskedLM")
PolarBertForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
PolarBertFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")

__all__ = [
    "PolarBertConfig",
    "PolarBertFeatureExtractor",
    "PolarBertPretrainingCollator",
    "PolarBertDirectionCollator",
    "PolarBertSequenceClassificationCollator",
    "PolarBertPulseDataset",
    "as_pulse_dataset",
    "PolarBertPreTrainedModel",
    "PolarBertModel",
    "PolarBertForMaskedDOM",
    "PolarBertForDirection",
    "PolarBertForSequenceClassification",
    "PolarBertMaskedDOMOutput",
    "PolarBertDirectionOutput",
    "angles_to_unit_vector",
    "unit_vector_to_angles",
    "opening_angle",
]
