"""PolarBERT for IceCube as a native Hugging Face Transformers model.

Importing the package registers the config and models with the Auto classes, so that
`AutoModel.from_pretrained(folder)` works on any saved PolarBERT folder, and marks them for auto classes so that
`save_pretrained` / `push_to_hub` ship the code beside the weights (loadable with `trust_remote_code=True`).
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
)

from .configuration_polarbert import PolarBertConfig
from .modeling_polarbert import (
    PolarBertDirectionOutput,
    PolarBertForDirection,
    PolarBertForMaskedDOM,
    PolarBertMaskedDOMOutput,
    PolarBertModel,
    PolarBertPreTrainedModel,
    angles_to_unit_vector,
    opening_angle,
    unit_vector_to_angles,
)

AutoConfig.register("polarbert", PolarBertConfig)
AutoModel.register(PolarBertConfig, PolarBertModel)
AutoModelForMaskedLM.register(PolarBertConfig, PolarBertForMaskedDOM)
AutoModelForPreTraining.register(PolarBertConfig, PolarBertForMaskedDOM)
# Transformers' auto class for sequence-level heads, regression included: one event in, one direction out.
AutoModelForSequenceClassification.register(PolarBertConfig, PolarBertForDirection)

PolarBertConfig.register_for_auto_class()
PolarBertModel.register_for_auto_class("AutoModel")
PolarBertForMaskedDOM.register_for_auto_class("AutoModelForMaskedLM")
PolarBertForDirection.register_for_auto_class("AutoModelForSequenceClassification")

__all__ = [
    "PolarBertConfig",
    "PolarBertPreTrainedModel",
    "PolarBertModel",
    "PolarBertForMaskedDOM",
    "PolarBertForDirection",
    "PolarBertMaskedDOMOutput",
    "PolarBertDirectionOutput",
    "angles_to_unit_vector",
    "unit_vector_to_angles",
    "opening_angle",
]
