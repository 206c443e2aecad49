"""PolarBERT for IceCube as a native Hugging Face Transformers model."""

from .configuration_polarbert import PolarBertConfig

__all__ = ["PolarBertConfig"]
