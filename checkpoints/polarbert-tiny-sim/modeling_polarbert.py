"""PolarBERT: a BERT-style foundation model for IceCube events (Timiryasov, Tastet and Ruchayskiy, NeurIPS 2024
ML4PS workshop, "PolarBERT: A Foundation Model for IceCube").

An event is a time-ordered sequence of pulses. Each pulse is a DOM id (a token of a 5,160-word vocabulary) plus
three continuous features (scaled time, scaled log-charge, auxiliary flag). The model is pretrained by masking
DOM ids and predicting them (plus the event's total charge from a CLS token), then fine-tuned to reconstruct the
neutrino direction from the CLS token.

The batch contract (what `PolarBertFeatureExtractor` and the collators built on it produce):

    dom_ids         int64 (batch, L)       DOM ids 0..num_doms-1; `pad_token_id` at padding, `mask_token_id` where masked
    features        float (batch, L, F)    [(time - time_offset) / time_scale, log10(charge) / charge_scale,
                                            auxiliary - auxiliary_offset (, (time - t_event) / event_time_scale)],
                                           zero at padding; F = config.num_pulse_features (3, or 4 with the
                                           extractor's `event_time_reference`). The extractor owns these settings;
                                           the model reads charge_scale and auxiliary_offset (its config's copies)
    attention_mask  int   (batch, L)       1 for real pulses, 0 for padding
    labels          pretraining: int64 (batch, L), the true DOM id at masked positions and -100 elsewhere;
                    direction: float (batch, 3), unit vectors of the direction the neutrino came from;
                    sequence classification/regression (`PolarBertSequenceClassificationCollator`): float
                    (batch, num_labels) regression targets in physical units or multi-label 0/1, or int64 (batch,)
                    class indices
    total_charge    float (batch,)         pretraining only: log10 of the summed charge of ALL the event's pulses

    masked_positions int64 (K,)            pretraining, optional: the flat indices `row * L + column` of the K masked
                                           pulses (where labels != -100), ascending. With them the sparse DOM head
                                           needs no host synchronisation to find the masked pulses.

L is the longest event of the batch (at most the extractor's `max_pulses` after down-sampling, or more when every pulse is kept).
The CLS token is prepended inside the model, so hidden states have L + 1 positions, the CLS at position 0.

Packed batches (`PolarBertPretrainingCollator(..., pack_length=T)`, no padding between events): several events
share a row of T tokens, each as [its CLS slot, its pulses], padding only at the end of a row. The tensors above
become (rows, T) (labels: -100 at CLS slots), and one more key says where the events are:

    cls_positions   int64 (batch,)         flat index `row * T + column` of each event's CLS slot, in event order

The model puts its CLS vector into those slots and lets a token attend only to the tokens of its own event (a
block-diagonal mask, through the same attention interface: eager, sdpa and flex_attention, not flash attention).
`last_hidden_state` is then (rows, T, hidden_size) with no extra CLS position; `pooler_output` stays (batch,
hidden_size), one CLS vector per event.

Heads and Auto classes: `PolarBertModel` is `AutoModel`; `PolarBertForMaskedDOM` is `AutoModelForMaskedLM` and
`AutoModelForPreTraining`; `PolarBertForSequenceClassification` (energy, event type, vertex: any event-level
regression or classification, with Transformers' `num_labels` / `problem_type` contract) is
`AutoModelForSequenceClassification`. `PolarBertForDirection` has no Auto class: Transformers has none for a
unit-vector regression, and `AutoModelForSequenceClassification.from_pretrained` resolves a model type to one class
only. Load it with `PolarBertForDirection.from_pretrained`, or without the package (remote code) with
`transformers.dynamic_module_utils.get_class_from_dynamic_module("modeling_polarbert.PolarBertForDirection",
folder_or_hub_id).from_pretrained(folder_or_hub_id)`; every saved folder carries this file for it.

This file travels to the Hub as remote code: it imports only torch, transformers and its own configuration.
"""

import csv
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.dynamic_module_utils import custom_object_save
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput, cached_file

from .configuration_polarbert import SHARED_SETTINGS, PolarBertConfig, extractor_settings_for_model


def load_dom_positions(num_doms: int) -> torch.Tensor:
    """DOM positions in metres, (num_doms, 3), from the sensor_geometry.csv shipped beside this file.

    A checkpoint carries its geometry as a buffer (`embeddings.dom_positions`), and loading one never calls this.
    It is needed only to build a model with `use_dom_positions=True` whose weights hold no geometry: a fresh model,
    or one loaded from a checkpoint saved without positions. The Hub's remote-code copy of this file has no CSV
    beside it, so such a build fails here rather than embed NaN positions and predict garbage.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sensor_geometry.csv")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"use_dom_positions=True needs the detector geometry, but this model's weights hold none and there is "
            f"no {path}: load a checkpoint saved with use_dom_positions=True (it carries the geometry), or build "
            f"the model with the polarbert package installed (it ships sensor_geometry.csv)"
        )
    with open(path, newline="") as handle:
        rows = [(float(row["x"]), float(row["y"]), float(row["z"])) for row in csv.DictReader(handle)]
    if len(rows) != num_doms:
        raise ValueError(f"{path} holds {len(rows)} DOMs but the config says num_doms={num_doms}")
    return torch.tensor(rows, dtype=torch.float32)


# --------------------------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------------------------


class PolarBertEmbeddings(nn.Module):
    """Pulse embedding of the paper's Figure 1: [DOM-id embedding (hidden/2) ; linear(features) (hidden/2)]; without
    `use_dom_embeddings`, linear(features) (hidden).

    No positional encoding: pulse times already order the sequence (paper, section 3). With `use_dom_positions`,
    a linear embedding of the DOM's (x, y, z) / position_scale is added to the whole vector, and with
    `event_position_reference` one of the DOM's position relative to the event's reference point.
    """

    def __init__(self, config: PolarBertConfig):
        super().__init__()
        self.config = config
        half = config.hidden_size // 2
        if config.use_dom_embeddings:
            self.dom_embeddings = nn.Embedding(config.vocab_size, half, padding_idx=config.pad_token_id)
        self.feature_embeddings = nn.Linear(config.num_pulse_features, half if config.use_dom_embeddings else
                                            config.hidden_size)
        if config.use_dom_positions:
            # Rows for the padding and mask ids stay zero: a masked pulse must not leak its DOM's position.
            self.register_buffer("dom_positions", torch.zeros(config.vocab_size, 3), persistent=True)
            self.position_embeddings = nn.Linear(3, config.hidden_size)
        if config.event_position_reference is not None:
            self.event_position_embeddings = nn.Linear(3, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, dom_ids: torch.LongTensor, features: torch.Tensor, event_index: torch.LongTensor, num_events: int
    ) -> torch.Tensor:
        """`event_index` (batch, L): the event of each token (its row, or its packed event), of `num_events`."""
        features = features.to(self.feature_embeddings.weight.dtype)
        # (batch, L, hidden_size)
        embeddings = self.feature_embeddings(features)
        if self.config.use_dom_embeddings:
            embeddings = torch.cat([self.dom_embeddings(dom_ids), embeddings], dim=-1)
        if self.config.use_dom_positions:
            positions = self.dom_positions[dom_ids]  # metres; zero for the padding and mask ids
            scaled = positions / self.config.position_scale
            embeddings = embeddings + self.position_embeddings(scaled.to(embeddings.dtype))
        if self.config.event_position_reference is not None:
            relative = self.event_relative_positions(dom_ids, features, positions, event_index, num_events)
            embeddings = embeddings + self.event_position_embeddings(relative.to(embeddings.dtype))
        return self.dropout(embeddings)

    def event_relative_positions(self, dom_ids, features, positions, event_index, num_events) -> torch.Tensor:
        """(batch, L, 3) `(xyz - xyz_event) / event_position_scale`, 0 at padding and masked pulses.

        `xyz_event` is the charge-weighted mean position of the event's visible primary pulses (all its visible
        pulses when none is primary). Visible means a real DOM id: a masked pulse (mask id) adds nothing to the
        reference point and gets no relative position, so neither reveals its DOM. Charge and primary flag come
        from `features`, undoing the feature extractor's scaling. Scatter sums over `event_index` serve one event
        per row and packed rows alike, without a host synchronisation."""
        config = self.config
        visible = dom_ids < config.num_doms
        charge = torch.pow(10.0, features[..., 1].float() * config.charge_scale)
        primary = visible & (features[..., 2].float() + config.auxiliary_offset < 0.5)
        flat_event = event_index.reshape(-1)

        def per_event(values: torch.Tensor) -> torch.Tensor:  # (batch, L, ...) -> (num_events, ...) sums
            flat = values.reshape(len(flat_event), -1)
            return flat.new_zeros(num_events, flat.shape[1]).index_add_(0, flat_event, flat)

        has_primary = per_event(primary.float()).squeeze(-1) > 0
        in_reference = primary | (visible & ~has_primary[event_index])
        weight = torch.where(in_reference, charge, torch.zeros_like(charge))
        centre = per_event(weight.unsqueeze(-1) * positions.float()) / per_event(weight).clamp_min(1e-12)
        relative = (positions.float() - centre[event_index]) * visible.unsqueeze(-1)
        return relative / config.event_position_scale


# --------------------------------------------------------------------------------------------------------------
# Attention and the encoder
# --------------------------------------------------------------------------------------------------------------


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain softmax attention; query/key/value are (batch, heads, L, head_dim), the mask is additive (batch, 1, L, L)."""
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            attention_mask = torch.zeros_like(attention_mask, dtype=attn_weights.dtype).masked_fill(
                ~attention_mask, torch.finfo(attn_weights.dtype).min
            )
        attn_weights = attn_weights + attention_mask
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()  # (batch, L, heads, head_dim)
    return attn_output, attn_weights


class PolarBertAttention(nn.Module):
    """Bidirectional multi-head self-attention, dispatched through transformers' attention interface."""

    def __init__(self, config: PolarBertConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False  # an event is a set of pulses in time order, each may look at all the others
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        head_shape = (*input_shape, self.num_heads, self.head_dim)
        # (batch, heads, L, head_dim)
        query = self.q_proj(hidden_states).view(head_shape).transpose(1, 2)
        key = self.k_proj(hidden_states).view(head_shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(head_shape).transpose(1, 2)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.config.attention_probs_dropout_prob if self.training else 0.0,
            scaling=self.scaling,
            is_causal=False,
            **kwargs,
        )
        attn_output = attn_output.reshape(*input_shape, -1).contiguous()
        return self.o_proj(attn_output), attn_weights


class PolarBertMLP(nn.Module):
    def __init__(self, config: PolarBertConfig):
        super().__init__()
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act_fn = ACT2FN[config.hidden_act]
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.up_proj(hidden_states)))


class PolarBertLayer(GradientCheckpointingLayer):
    """Pre-layer-norm transformer block (Xiong et al. 2020), as in the paper: x + attn(LN(x)), then x + mlp(LN(x)).

    With `model.gradient_checkpointing_enable()` its activations are recomputed in the backward pass instead of
    stored (the 159 M model of the paper's scaling study at large batches); hidden_states must stay positional."""

    def __init__(self, config: PolarBertConfig):
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = PolarBertAttention(config)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = PolarBertMLP(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attn_output, attn_weights = self.attention(self.attention_norm(hidden_states), attention_mask, **kwargs)
        hidden_states = hidden_states + self.dropout(attn_output)
        hidden_states = hidden_states + self.dropout(self.mlp(self.mlp_norm(hidden_states)))
        return hidden_states, attn_weights


# --------------------------------------------------------------------------------------------------------------
# Pretrained-model base: weight initialisation, input checks, Hub metadata
# --------------------------------------------------------------------------------------------------------------

# Every checkpoint's config lists all the classes, so that a MaskedDOM or Direction checkpoint also loads with
# AutoModel (the backbone) through remote code; save_pretrained on its own would write only the saved class.
# PolarBertForDirection has no Auto class (see the module docstring).
AUTO_MAP = {
    "AutoConfig": "configuration_polarbert.PolarBertConfig",
    "AutoModel": "modeling_polarbert.PolarBertModel",
    "AutoModelForMaskedLM": "modeling_polarbert.PolarBertForMaskedDOM",
    "AutoModelForPreTraining": "modeling_polarbert.PolarBertForMaskedDOM",
    "AutoModelForSequenceClassification": "modeling_polarbert.PolarBertForSequenceClassification",
}


def preprocessor_disagreements(config: PolarBertConfig, path, kwargs: dict) -> list[str]:
    """The `SHARED_SETTINGS` (what the model reads of its inputs: DOM ids, feature columns, charge and flag) in which
    the feature extractor saved beside a model (preprocessor_config.json in the same folder or Hub repository)
    differs from its config; settings the caller passes as keyword arguments are theirs to set."""
    download = {key: kwargs[key] for key in ("cache_dir", "force_download", "local_files_only", "token", "revision",
                                               "subfolder") if key in kwargs}
    try:
        file = cached_file(str(path), "preprocessor_config.json", _raise_exceptions_for_missing_entries=False,
                           **download)
    except (OSError, ValueError):
        return []
    if file is None:
        return []
    with open(file) as handle:
        saved = extractor_settings_for_model(json.load(handle))
    return [f"{name}: preprocessor_config.json {saved[name]!r}, config.json {getattr(config, name)!r}"
            for name in SHARED_SETTINGS
            if name in saved and name not in kwargs and saved[name] != getattr(config, name)]


class PolarBertPreTrainedModel(PreTrainedModel):
    config_class = PolarBertConfig
    config: PolarBertConfig
    base_model_prefix = "polarbert"
    main_input_name = "dom_ids"
    _no_split_modules = ["PolarBertLayer"]
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # The losses are per-batch means; Trainer must not pass num_items_in_batch into forward.
    accepts_loss_kwargs = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        """Linear layers, embeddings and LayerNorms as in BERT; then our own parameters, the geometry buffer and the
        regression targets' statistics (buffers that mirror the config, never saved with the weights)."""
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, PolarBertModel):
            init.normal_(module.cls_embedding, mean=0.0, std=std)
        elif isinstance(module, PolarBertForSequenceClassification):
            mean, scale = module.target_statistics(self.config)
            init.copy_(module.target_mean, mean)
            init.copy_(module.target_std, scale)
        elif isinstance(module, PolarBertEmbeddings) and self.config.use_dom_positions:
            if not getattr(module.dom_positions, "_is_hf_initialized", False):
                positions = torch.zeros_like(module.dom_positions)
                positions[: self.config.num_doms] = load_dom_positions(self.config.num_doms)
                init.copy_(module.dom_positions, positions)
        elif isinstance(module, nn.Linear) and getattr(module, "zero_init", False):
            init.zeros_(module.weight)  # a head's output layer with `zero_init_direction_head`

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """As `PreTrainedModel.from_pretrained`, and a folder whose feature extractor disagrees with its config on what
        the model reads of its inputs (`SHARED_SETTINGS`) is refused: fed pulses it reads otherwise, the model would
        predict garbage without a word. The model's door is the one check, because every way of loading a model
        passes here (the class, the Auto classes, remote code), while `AutoFeatureExtractor` of transformers 5.25
        builds the extractor without ever seeing the folder. A config.json saved before 2026-12-07 (with the
        extractor's settings in it) is converted on load (`PolarBertConfig.from_dict`). Settings the caller passes
        as keyword arguments are theirs to set and are not checked."""
        loaded = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, loading_info) with output_loading_info
        differ = preprocessor_disagreements(model.config, pretrained_model_name_or_path, kwargs)
        if differ:
            raise ValueError(f"{pretrained_model_name_or_path}: preprocessor_config.json and config.json disagree ("
                             + "; ".join(differ) + "); the config records the extractor's, "
                             "PolarBertConfig(**extractor.model_settings(), ...)")
        return loaded

    def save_pretrained(self, save_directory, *args, **kwargs):
        self.config.auto_map = dict(AUTO_MAP)
        if self._auto_class is None and kwargs.get("is_main_process", True):
            # Transformers copies the code only for a class registered with an Auto class; a class without one
            # (direction, or any class loaded without the package) ships it too, so the folder loads as remote code.
            os.makedirs(save_directory, exist_ok=True)
            custom_object_save(self, save_directory)
        return super().save_pretrained(save_directory, *args, **kwargs)

    def _check_inputs(self, dom_ids, features, attention_mask, cls_positions):
        """Bad input raises a ValueError naming it, instead of a silent wrong answer or a CUDA device assert.

        Shapes are checked always (free). Values only with `config.check_inputs`: each value check reads a result
        back from the device, a host synchronisation that stalls a GPU step; the collators check the same on CPU."""
        if dom_ids.dim() != 2:
            raise ValueError(f"dom_ids must be (batch, L), got shape {tuple(dom_ids.shape)}")
        expected = (*dom_ids.shape, self.config.num_pulse_features)
        if features.shape != expected:
            raise ValueError(f"features must be (batch, L, num_pulse_features) = {expected}, got {tuple(features.shape)}")
        if attention_mask is not None and attention_mask.shape != dom_ids.shape:
            raise ValueError(f"attention_mask must have the shape of dom_ids {tuple(dom_ids.shape)}")
        if cls_positions is not None and cls_positions.dim() != 1:
            raise ValueError(f"cls_positions must be (batch,), got shape {tuple(cls_positions.shape)}")
        if not self.config.check_inputs or torch.compiler.is_compiling():
            return  # data-dependent checks would also break a compiled graph
        if dom_ids.numel() and (dom_ids.min() < 0 or dom_ids.max() >= self.config.vocab_size):
            raise ValueError(
                f"dom_ids must lie in [0, {self.config.vocab_size}) (DOMs, then pad {self.config.pad_token_id} and "
                f"mask {self.config.mask_token_id}); got values in [{int(dom_ids.min())}, {int(dom_ids.max())}]"
            )
        if not torch.isfinite(features).all():
            bad_events = torch.nonzero(~torch.isfinite(features).all(dim=(1, 2))).flatten().tolist()
            raise ValueError(f"features hold NaN or inf in batch rows {bad_events[:10]}")
        if cls_positions is not None and len(cls_positions) and (
            cls_positions.min() < 0 or cls_positions.max() >= dom_ids.numel()
        ):
            raise ValueError(f"cls_positions must be flat indices into the packed (rows, T) = {tuple(dom_ids.shape)}")


# --------------------------------------------------------------------------------------------------------------
# The backbone
# --------------------------------------------------------------------------------------------------------------


class PolarBertModel(PolarBertPreTrainedModel):
    """The PolarBERT encoder: embeddings, a trainable CLS token in front, pre-LN blocks and a final LayerNorm.

    Returns `last_hidden_state` (batch, L + 1, hidden_size) with the CLS token at position 0, and `pooler_output`
    (batch, hidden_size), the CLS vector that the task heads read. Packed batches (with `cls_positions`, see the
    module docstring) give `last_hidden_state` (rows, T, hidden_size) and the same `pooler_output`.
    """

    def __init__(self, config: PolarBertConfig):
        super().__init__(config)
        self.embeddings = PolarBertEmbeddings(config)
        self.cls_embedding = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.layers = nn.ModuleList([PolarBertLayer(config) for _ in range(config.num_hidden_layers)])
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding | None:
        return getattr(self.embeddings, "dom_embeddings", None)  # None without `use_dom_embeddings`

    def set_input_embeddings(self, value: nn.Embedding):
        self.embeddings.dom_embeddings = value

    def forward(
        self,
        dom_ids: torch.LongTensor,
        features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cls_positions: torch.LongTensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        self._check_inputs(dom_ids, features, attention_mask, cls_positions)
        if attention_mask is None:
            attention_mask = dom_ids != self.config.pad_token_id
        if cls_positions is None:
            # One event per row: the CLS token goes in front of it.
            event_index = torch.arange(len(dom_ids), device=dom_ids.device).unsqueeze(1).expand_as(dom_ids)
            pulse_embeddings = self.embeddings(dom_ids, features, event_index, num_events=len(dom_ids))
            cls = self.cls_embedding.to(pulse_embeddings.dtype)
            hidden_states = torch.cat([cls.expand(len(dom_ids), -1, -1), pulse_embeddings], dim=1)  # (batch, L + 1, hidden)
            token_mask = F.pad(attention_mask.to(torch.bool), (1, 0), value=True)
            event_of_token = None
        else:
            # Packed rows: each event's CLS vector goes into the slot the collator left in front of its pulses.
            is_cls = torch.zeros(dom_ids.numel(), dtype=torch.bool, device=dom_ids.device)
            is_cls = is_cls.index_fill(0, cls_positions, True).view_as(dom_ids)  # (rows, T)
            # Events are numbered in the order of their CLS slots, which is the flattened rows' order.
            event_index = (is_cls.flatten().cumsum(0) - 1).clamp_min(0).view_as(dom_ids)
            pulse_embeddings = self.embeddings(dom_ids, features, event_index, num_events=len(cls_positions))
            cls = self.cls_embedding.to(pulse_embeddings.dtype)
            hidden_states = torch.where(is_cls.unsqueeze(-1), cls, pulse_embeddings)
            token_mask = attention_mask.to(torch.bool) | is_cls
            # Tokens of one event share the number of CLS slots up to them in their row.
            event_of_token = is_cls.cumsum(dim=1)
        attention_mask = self._attention_mask(hidden_states, token_mask, event_of_token)

        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers:
            hidden_states, attn_weights = layer(hidden_states, attention_mask, **kwargs)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            if output_attentions:
                all_attentions += (attn_weights,)
        hidden_states = self.final_norm(hidden_states)
        if cls_positions is None:
            pooled = hidden_states[:, 0]
        else:
            pooled = hidden_states.flatten(0, 1)[cls_positions]  # (batch, hidden), in event order
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden_states,
            pooler_output=pooled,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
        )

    def _attention_mask(self, hidden_states, token_mask, event_of_token):
        """The mask in the form the attention implementation wants: a token sees every real token of its event.

        The padding goes in as a mask function rather than as the 2D mask, because Transformers reads a 2D mask
        back to the host to see whether it has any padding (a synchronisation every step). Flash attention takes
        the 2D mask (and synchronises in Transformers' un-padding); it has no block-diagonal form here."""
        if "flash" in self.config._attn_implementation:
            if event_of_token is not None:
                raise ValueError("packed batches (cls_positions) need attn_implementation eager, sdpa or "
                                 f"flex_attention, not {self.config._attn_implementation}")
            return create_bidirectional_mask(config=self.config, inputs_embeds=hidden_states, attention_mask=token_mask)

        def visible(batch_idx, head_idx, q_idx, kv_idx):
            seen = token_mask[batch_idx, kv_idx]
            if event_of_token is not None:
                seen = seen & (event_of_token[batch_idx, q_idx] == event_of_token[batch_idx, kv_idx])
            return seen

        return create_bidirectional_mask(
            config=self.config, inputs_embeds=hidden_states, attention_mask=None, and_mask_function=visible
        )


# --------------------------------------------------------------------------------------------------------------
# Pretraining: masked DOM prediction + total charge
# --------------------------------------------------------------------------------------------------------------


@dataclass
class PolarBertMaskedDOMOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, with `labels`):
            `masked_dom_loss + config.charge_loss_weight * charge_loss`.
        logits (`torch.FloatTensor`):
            DOM-id scores, (batch, L, num_doms) for every pulse; with `config.sparse_prediction` and `labels`,
            (number of masked pulses, num_doms) for the masked pulses only, in row-major order of `labels != -100`.
        charge_prediction (`torch.FloatTensor` of shape `(batch,)`):
            Predicted log10 of the event's total charge, read from the CLS token.
        masked_dom_loss (`torch.FloatTensor` of shape `()`):
            Cross-entropy over the masked pulses.
        charge_loss (`torch.FloatTensor` of shape `()`):
            MSE between `charge_prediction` and `total_charge`.
        last_hidden_state, hidden_states, attentions: as `PolarBertModel` returns them.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    charge_prediction: torch.FloatTensor | None = None
    masked_dom_loss: torch.FloatTensor | None = None
    charge_loss: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class PolarBertForMaskedDOM(PolarBertPreTrainedModel):
    """PolarBERT with the pretraining heads: DOM-id logits at every pulse and log10(total charge) from the CLS token.

    loss = cross-entropy over the masked pulses (labels -100 elsewhere) + charge_loss_weight x MSE(total charge),
    the paper's equation (1).
    """

    def __init__(self, config: PolarBertConfig):
        super().__init__(config)
        self.polarbert = PolarBertModel(config)
        self.dom_head = nn.Linear(config.hidden_size, config.num_doms)  # the "unembedding" layer
        self.charge_head = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(
        self,
        dom_ids: torch.LongTensor,
        features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        total_charge: torch.Tensor | None = None,
        masked_positions: torch.LongTensor | None = None,
        cls_positions: torch.LongTensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        **kwargs,
    ) -> PolarBertMaskedDOMOutput:
        outputs = self.polarbert(
            dom_ids, features, attention_mask, cls_positions=cls_positions, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, **kwargs,
        )
        # (batch, L, hidden_size) aligned with dom_ids and labels: the prepended CLS dropped (packed rows have none)
        pulse_states = outputs.last_hidden_state if cls_positions is not None else outputs.last_hidden_state[:, 1:]
        charge_prediction = self.charge_head(outputs.pooler_output).squeeze(-1).float()

        if labels is not None:
            self._check_labels(labels, dom_ids, masked_positions)
        if labels is not None and self.config.sparse_prediction:
            # The 5,160-way output layer is the largest single cost of a step: run it on masked pulses only.
            if masked_positions is None:  # found here at the cost of a host sync; the collators pass them
                masked_positions = torch.nonzero(labels.reshape(-1) != -100).squeeze(-1)
            logits = self.dom_head(pulse_states.reshape(-1, pulse_states.shape[-1])[masked_positions])
            targets = labels.reshape(-1)[masked_positions]
        else:
            logits = self.dom_head(pulse_states)
            targets = None if labels is None else labels.reshape(-1)

        loss = masked_dom_loss = charge_loss = None
        if labels is not None:
            logits_2d = logits.reshape(-1, self.config.num_doms).float()
            # Mean over the masked pulses as sum / count, so that a batch with nothing masked (events without
            # primary pulses) gets 0 without a branch on the data, which would cost a host sync.
            summed = F.cross_entropy(logits_2d, targets, ignore_index=-100, reduction="sum")
            masked_dom_loss = summed / (targets != -100).sum().clamp_min(1)
            loss = masked_dom_loss
        if total_charge is not None:
            charge_loss = F.mse_loss(charge_prediction, total_charge.float())
            loss = charge_loss * self.config.charge_loss_weight + (loss if loss is not None else 0.0)
        return PolarBertMaskedDOMOutput(
            loss=loss,
            logits=logits,
            charge_prediction=charge_prediction,
            masked_dom_loss=masked_dom_loss,
            charge_loss=charge_loss,
            last_hidden_state=outputs.last_hidden_state,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def _check_labels(self, labels: torch.Tensor, dom_ids: torch.Tensor, masked_positions: torch.Tensor | None):
        if labels.shape != dom_ids.shape:
            raise ValueError(f"labels must have the shape of dom_ids {tuple(dom_ids.shape)}, got {tuple(labels.shape)}")
        if masked_positions is not None and masked_positions.dim() != 1:
            raise ValueError(f"masked_positions must be (K,), got shape {tuple(masked_positions.shape)}")
        if not self.config.check_inputs or torch.compiler.is_compiling():
            return
        valid = (labels == -100) | ((labels >= 0) & (labels < self.config.num_doms))
        if not valid.all():
            raise ValueError(f"labels must be -100 or a DOM id in [0, {self.config.num_doms})")
        if masked_positions is not None:
            flat = labels.reshape(-1)
            in_range = ((masked_positions >= 0) & (masked_positions < flat.numel())).all()
            if not in_range or len(masked_positions) != (flat != -100).sum() or (flat[masked_positions] == -100).any():
                raise ValueError("masked_positions must be the flat indices of exactly the labels that are not -100")


# --------------------------------------------------------------------------------------------------------------
# Fine-tuning: direction reconstruction
# --------------------------------------------------------------------------------------------------------------


def angles_to_unit_vector(azimuth: torch.Tensor, zenith: torch.Tensor) -> torch.Tensor:
    """Kaggle convention: the direction the neutrino came FROM; (..., 3) = (cos az sin zen, sin az sin zen, cos zen)."""
    return torch.stack(
        [torch.cos(azimuth) * torch.sin(zenith), torch.sin(azimuth) * torch.sin(zenith), torch.cos(zenith)], dim=-1
    )


def unit_vector_to_angles(direction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 3) vectors -> (azimuth in [0, 2 pi), zenith in [0, pi]), Kaggle convention."""
    direction = F.normalize(direction.float(), dim=-1)
    azimuth = torch.remainder(torch.atan2(direction[..., 1], direction[..., 0]), 2 * math.pi)
    zenith = torch.arccos(direction[..., 2].clamp(-1.0, 1.0))
    return azimuth, zenith


def opening_angle(predicted: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Angle (radians) between unit vectors. The cosine is clipped just inside [-1, 1]: d arccos/dx is infinite at
    +-1, and a perfect prediction must not turn the gradient into NaN."""
    cosine = (predicted.float() * target.float()).sum(dim=-1).clamp(-1.0 + eps, 1.0 - eps)
    return torch.arccos(cosine)


def von_mises_fisher_nll(direction: torch.Tensor, kappa: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of `target` under a 3-D von Mises-Fisher law with mean `direction`, concentration kappa.

    log C3(kappa) = log kappa - log(4 pi sinh kappa) = log kappa - log(2 pi) - kappa - log(1 - exp(-2 kappa)),
    written so that it neither overflows at large kappa nor loses precision at small kappa.
    """
    kappa = kappa.float()
    log_normaliser = torch.log(kappa) - math.log(2 * math.pi) - kappa - torch.log(-torch.expm1(-2 * kappa))
    return -(log_normaliser + kappa * (direction.float() * target.float()).sum(dim=-1))


@dataclass
class PolarBertDirectionOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, with `labels`):
            Mean opening angle (radians), the vMF negative log-likelihood, or both, by `config.direction_loss`.
        direction (`torch.FloatTensor` of shape `(batch, 3)`):
            Unit vector of the direction the neutrino came from (Kaggle convention).
        kappa (`torch.FloatTensor` of shape `(batch,)`, with a vMF loss):
            Predicted von Mises-Fisher concentration: the larger, the more certain (angular error ~ 1/sqrt(kappa)).
        last_hidden_state, hidden_states, attentions: as `PolarBertModel` returns them.
    """

    loss: torch.FloatTensor | None = None
    direction: torch.FloatTensor | None = None
    kappa: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class PolarBertForDirection(PolarBertPreTrainedModel):
    """PolarBERT with the direction head: an MLP (hidden `direction_head_hidden_size`) on the CLS vector -> 3-vector.

    The 3-vector's direction is the prediction; with a vMF loss its length is the concentration kappa (as the
    Kaggle winners did), so no extra output is needed for the uncertainty. It has no Auto class (see the module
    docstring): load it with `PolarBertForDirection.from_pretrained`.
    """

    def __init__(self, config: PolarBertConfig):
        super().__init__(config)
        self.polarbert = PolarBertModel(config)
        output_layer = nn.Linear(config.direction_head_hidden_size, 3)
        output_layer.zero_init = config.zero_init_direction_head  # read by _init_weights
        self.direction_head = nn.Sequential(
            nn.Linear(config.hidden_size, config.direction_head_hidden_size), ACT2FN[config.hidden_act], output_layer
        )
        self.post_init()

    def forward(
        self,
        dom_ids: torch.LongTensor,
        features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        cls_positions: torch.LongTensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        **kwargs,
    ) -> PolarBertDirectionOutput:
        outputs = self.polarbert(
            dom_ids, features, attention_mask, cls_positions=cls_positions, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, **kwargs,
        )
        raw = self.direction_head(outputs.pooler_output).float()  # (batch, 3)
        length = raw.norm(dim=-1).clamp_min(1e-6)
        direction = raw / length.unsqueeze(-1)
        uses_vmf = "vmf" in self.config.direction_loss
        kappa = length if uses_vmf else None

        loss = None
        if labels is not None:
            labels = self._check_labels(labels, direction, self.config.check_inputs)
            loss = 0.0
            if "angle" in self.config.direction_loss:
                loss = loss + opening_angle(direction, labels).mean()
            if uses_vmf:
                loss = loss + von_mises_fisher_nll(direction, kappa, labels).mean()
        return PolarBertDirectionOutput(
            loss=loss,
            direction=direction,
            kappa=kappa,
            last_hidden_state=outputs.last_hidden_state,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    @staticmethod
    def _check_labels(labels: torch.Tensor, direction: torch.Tensor, check_values: bool) -> torch.Tensor:
        if labels.shape != direction.shape:
            raise ValueError(f"direction labels must be (batch, 3) = {tuple(direction.shape)}, got {tuple(labels.shape)}")
        labels = labels.float()
        if check_values and not torch.compiler.is_compiling():
            norms = labels.norm(dim=-1)
            if not torch.isfinite(norms).all() or ((norms - 1).abs() > 1e-3).any():
                raise ValueError("direction labels must be unit vectors (see angles_to_unit_vector)")
        return labels


# --------------------------------------------------------------------------------------------------------------
# Fine-tuning: any event-level regression or classification (energy, track/cascade, vertex)
# --------------------------------------------------------------------------------------------------------------

PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


class PolarBertForSequenceClassification(PolarBertPreTrainedModel):
    """PolarBERT with an event-level head, Transformers' contract for sequence-level heads (as
    `BertForSequenceClassification`): an MLP (hidden `classifier_hidden_size`) on the CLS vector -> `num_labels`
    outputs, the loss chosen by `config.problem_type`:

    - `"regression"`: MSE of the standardised targets `(labels - target_mean) / target_std`, averaged over events
      and targets (several targets at once, e.g. a vertex); labels float (batch, num_labels), or (batch,) for one
      target. `logits` are in the labels' units: `target_mean + target_std * head(CLS)`.
    - `"single_label_classification"`: cross-entropy; labels int64 (batch,) class indices, names in `id2label`.
    - `"multi_label_classification"`: binary cross-entropy with logits; labels float (batch, num_labels) in [0, 1].

    An unset `problem_type` is inferred from the first labels as BERT infers it (one label: regression; integer
    labels: single-label; otherwise multi-label) and written into the config.
    """

    def __init__(self, config: PolarBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.polarbert = PolarBertModel(config)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Sequential(
            nn.Linear(config.hidden_size, config.classifier_hidden_size),
            ACT2FN[config.hidden_act],
            nn.Linear(config.classifier_hidden_size, config.num_labels),
        )
        # Mirrors of config.target_mean / target_std on the model's device (no host-to-device copy per step).
        mean, scale = self.target_statistics(config)
        self.register_buffer("target_mean", mean, persistent=False)
        self.register_buffer("target_std", scale, persistent=False)
        self.post_init()

    @staticmethod
    def target_statistics(config: PolarBertConfig) -> tuple[torch.Tensor, torch.Tensor]:
        """(num_labels,) mean and std of the regression targets from the config; 0 and 1 where it has none."""
        mean = torch.zeros(config.num_labels) if config.target_mean is None else torch.tensor(config.target_mean)
        scale = torch.ones(config.num_labels) if config.target_std is None else torch.tensor(config.target_std)
        if mean.shape != (config.num_labels,) or scale.shape != (config.num_labels,):
            raise ValueError(
                f"target_mean and target_std need num_labels={config.num_labels} values, got "
                f"{config.target_mean} and {config.target_std}"
            )
        return mean.float(), scale.float()

    def forward(
        self,
        dom_ids: torch.LongTensor,
        features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        cls_positions: torch.LongTensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        **kwargs,
    ) -> SequenceClassifierOutput:
        outputs = self.polarbert(
            dom_ids, features, attention_mask, cls_positions=cls_positions, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, **kwargs,
        )
        raw = self.classifier(self.dropout(outputs.pooler_output)).float()  # (batch, num_labels)
        problem_type = self._problem_type(labels)
        regression = problem_type == "regression"
        logits = raw * self.target_std + self.target_mean if regression else raw

        loss = None
        if labels is not None:
            labels = self._check_labels(labels, problem_type, raw.shape[0])
            if regression:
                loss = F.mse_loss(raw, (labels - self.target_mean) / self.target_std)
            elif problem_type == "single_label_classification":
                loss = F.cross_entropy(raw, labels)
            else:
                loss = F.binary_cross_entropy_with_logits(raw, labels)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )

    def _problem_type(self, labels: torch.Tensor | None) -> str | None:
        """The config's problem type; unset, BERT's inference from the labels (written into the config)."""
        if self.config.problem_type is not None:
            if self.config.problem_type not in PROBLEM_TYPES:
                raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {self.config.problem_type!r}")
            return self.config.problem_type
        if self.num_labels == 1:
            problem_type = "regression"
        elif labels is None:
            return None  # nothing to infer from: logits as the head gives them
        elif labels.dtype in (torch.long, torch.int):
            problem_type = "single_label_classification"
        else:
            problem_type = "multi_label_classification"
        if labels is not None:
            self.config.problem_type = problem_type
        return problem_type

    def _check_labels(self, labels: torch.Tensor, problem_type: str, batch_size: int) -> torch.Tensor:
        """Labels in the shape and dtype the loss needs, or a ValueError saying what is wrong. Shapes always;
        values only with `config.check_inputs` (each value check is a host synchronisation on a GPU)."""
        check_values = self.config.check_inputs and not torch.compiler.is_compiling()
        if problem_type == "single_label_classification":
            if labels.dtype.is_floating_point or labels.numel() != batch_size:
                raise ValueError(
                    f"single-label classification labels must be integer class indices (batch,) = ({batch_size},), "
                    f"got {labels.dtype} {tuple(labels.shape)}"
                )
            labels = labels.reshape(batch_size).long()
            if check_values and ((labels < 0) | (labels >= self.num_labels)).any():
                raise ValueError(f"class indices must lie in [0, num_labels={self.num_labels})")
            return labels
        if labels.numel() != batch_size * self.num_labels:
            raise ValueError(
                f"{problem_type} labels must be (batch, num_labels) = {(batch_size, self.num_labels)}, "
                f"got {tuple(labels.shape)}"
            )
        labels = labels.reshape(batch_size, self.num_labels).float()
        if check_values:
            if not torch.isfinite(labels).all():
                rows = torch.nonzero(~torch.isfinite(labels).all(dim=-1)).flatten().tolist()
                raise ValueError(f"labels hold NaN or inf in batch rows {rows[:10]}")
            if problem_type == "multi_label_classification" and ((labels < 0) | (labels > 1)).any():
                raise ValueError("multi-label classification labels must lie in [0, 1]")
        return labels


__all__ = [
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
    "von_mises_fisher_nll",
]
