"""PolarBERT for IceCube as a native Hugging Face Transformers model.

Importing the package registers the config and models with the Auto classes, so that
`AutoModel.from_pretrained(folder)` works on any saved PolarBERT folder, and marks them for auto classes so that
`save_pretrained` / `push_to_hub` ship the code beside the weights (loadable with `trust_remote_code=True`). The
feature extractor (events -> model inputs) registers with `AutoFeatureExtractor` the same way, and the data
collators are exported here as Transformers exports its own.
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

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
from .tasks import HEADS

AutoConfig.register("polarbert", PolarBertConfig)
AutoModel.register(PolarBertConfig, PolarBertModel)  # the backbone of every head
# Each head with the Auto classes its entry in tasks.py names (PolarBertForDirection has none: see there).
for head in HEADS:
    for auto_class in head.auto_classes:
        auto_class.register(PolarBertConfig, head.model_class)
AutoFeatureExtractor.register(PolarBertConfig, PolarBertFeatureExtractor)

PolarBertConfig.register_for_auto_class()
PolarBertModel.register_for_auto_class("AutoModel")
for head in HEADS:
    if head.auto_classes:
        head.model_class.register_for_auto_class(head.auto_classes[0].__name__)
del head  # the loop's name is not part of the package
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
