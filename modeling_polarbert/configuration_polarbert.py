"""PolarBERT configuration: the architecture, and what the architecture needs to know of its inputs.

Input processing (pulse selection, scaling, padding) is the feature extractor's (`feature_extraction_polarbert.py`,
saved as `preprocessor_config.json`), as Wav2Vec2's sampling rate and normalisation are its feature extractor's. The
model reads a few facts of the extractor's output: how many feature columns a pulse has, and how to turn the charge
and flag columns back into a charge and a flag (for the event's reference point). The config holds those facts
(`SHARED_SETTINGS`), written from the extractor, and the model's `from_pretrained` refuses a folder whose
preprocessor_config.json disagrees with them. Today's config.json files, which also held the extractor's settings,
load through `convert_legacy_config` (`from_dict`).

This file travels to the Hub as remote code next to `modeling_polarbert.py`, so it imports nothing but
transformers.
"""

from transformers import PretrainedConfig
from transformers.utils import logging

logger = logging.get_logger(__name__)

DIRECTION_LOSSES = ("angle", "vmf", "angle+vmf")
EVENT_POSITION_REFERENCES = (None, "charge_weighted_mean")
# The facts that the config and the feature extractor both hold: the extractor owns them (it writes its output by
# them), the model reads its input by them. The model's door (`PolarBertPreTrainedModel.from_pretrained`) compares
# them, and `extractor_settings_for_model` reads them from a preprocessor_config.json.
SHARED_SETTINGS = ("num_doms", "pad_token_id", "num_pulse_features", "charge_scale", "auxiliary_offset")
# The extractor's settings that config.json held until 2026-12-07; `convert_legacy_config` drops them on load.
LEGACY_PREPROCESSING_SETTINGS = ("max_pulses", "time_offset", "time_scale", "event_time_reference", "event_time_scale",
                                 "pad_to_multiple_of")


def legacy_num_pulse_features(settings: dict) -> int:
    """The number of feature columns of a config.json or preprocessor_config.json written before 2026-12-07, which
    did not record it: time, charge, flag, and the time within the event with an `event_time_reference`."""
    return 3 if settings.get("event_time_reference") is None else 4


def convert_legacy_config(config_dict: dict) -> dict:
    """A config.json saved before 2026-12-07 (with the extractor's settings, `LEGACY_PREPROCESSING_SETTINGS`) as
    today's: those settings dropped (the folder's preprocessor_config.json holds them too) and `num_pulse_features`
    written in their place. Today's dicts come back unchanged."""
    legacy = [name for name in LEGACY_PREPROCESSING_SETTINGS if name in config_dict]
    if not legacy:
        return config_dict
    converted = {name: value for name, value in config_dict.items() if name not in legacy}
    converted.setdefault("num_pulse_features", legacy_num_pulse_features(config_dict))
    logger.info("PolarBertConfig: a config.json written before 2026-12-07, converted on load (%s are the feature "
                "extractor's, in preprocessor_config.json)", ", ".join(legacy))
    return converted


def extractor_settings_for_model(extractor_dict: dict) -> dict:
    """The `SHARED_SETTINGS` that a preprocessor_config.json holds (one written before 2026-12-07 has no
    `num_pulse_features`: it follows from its `event_time_reference`)."""
    settings = {name: extractor_dict[name] for name in SHARED_SETTINGS if name in extractor_dict}
    settings.setdefault("num_pulse_features", legacy_num_pulse_features(extractor_dict))
    return settings


class PolarBertConfig(PretrainedConfig):
    r"""
    Configuration of a PolarBERT model (Timiryasov, Tastet and Ruchayskiy, "PolarBERT: A Foundation Model for
    IceCube", NeurIPS 2024 ML4PS workshop). The defaults are the paper's 8 M-parameter model.

    An event is a sequence of pulses; each pulse is a DOM id (a token) plus `num_pulse_features` continuous
    features (time, charge, auxiliary flag, and optionally the time within the event), selected, scaled and padded
    by `PolarBertFeatureExtractor`, which owns those settings. A trainable CLS ("regression") token is prepended
    inside the model.

    One config serves every class: `PolarBertModel` (`AutoModel`), `PolarBertForMaskedDOM`
    (`AutoModelForMaskedLM`, `AutoModelForPreTraining`), `PolarBertForSequenceClassification`
    (`AutoModelForSequenceClassification`: energy, event type, vertex, with the standard `num_labels`,
    `problem_type`, `id2label` / `label2id` fields and the `classifier_*`, `label_columns`, `target_*` ones below)
    and `PolarBertForDirection`, which has no Auto class (Transformers has none for a unit-vector regression) and
    loads with `PolarBertForDirection.from_pretrained`.

    Args:
        num_doms (`int`, *optional*, defaults to 5160):
            Number of optical modules (DOMs) in the detector: 86 strings x 60 DOMs. DOM ids are `0..num_doms-1`;
            `pad_token_id = num_doms` and `mask_token_id = num_doms + 1` follow them in the embedding table.
        hidden_size (`int`, *optional*, defaults to 256):
            Width of the encoder (`d_model` in the paper). Half of it embeds the DOM id, half the pulse features.
        num_hidden_layers (`int`, *optional*, defaults to 8):
            Number of pre-layer-norm transformer blocks.
        num_attention_heads (`int`, *optional*, defaults to 8):
            Attention heads per block.
        intermediate_size (`int`, *optional*, defaults to 1024):
            Hidden width of each block's MLP.
        hidden_act (`str`, *optional*, defaults to `"relu"`):
            Activation of the MLPs (the paper found ReLU and SwiGLU equal and used ReLU).
        hidden_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout on the residual branches and the embeddings.
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout on the attention probabilities.
        layer_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of every LayerNorm.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of weights, embeddings, the CLS and mask vectors.
        mask_ratio (`float`, *optional*, defaults to 0.25):
            Fraction of primary (auxiliary = False) pulses whose DOM id is replaced by the mask id in pretraining
            (the paper found 0.25 best).
        charge_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight `lambda` of the MSE on log10(total event charge) in the pretraining loss.
        num_pulse_features (`int`, *optional*, defaults to 3):
            Feature columns of each pulse, the input width of the feature embedding: time, charge, auxiliary flag
            (the paper), and the time within the event with the extractor's `event_time_reference` (4). Written from
            the feature extractor (`extractor.model_settings()`).
        charge_scale (`float`, *optional*, defaults to 3.0):
            How the model reads the charge column: `log10(charge) / charge_scale`, as the feature extractor writes
            it. Only `event_position_reference` reads it (for the charge weights of the reference point). Written
            from the feature extractor, which owns it.
        auxiliary_offset (`float`, *optional*, defaults to 0.5):
            How the model reads the flag column: `auxiliary - auxiliary_offset`; only `event_position_reference`
            reads it (primary pulses). Written from the feature extractor, which owns it.
        position_scale (`float`, *optional*, defaults to 500.0):
            DOM coordinates (m) map to `xyz / position_scale` when `use_dom_positions` is on.
        use_dom_embeddings (`bool`, *optional*, defaults to `True`):
            Embed each pulse's DOM id with a learned vector (the paper: [DOM-id embedding ; feature projection], half
            the hidden size each). `False` (needs `use_dom_positions`, which then tells the DOMs apart) drops the
            5,160-row table and projects the pulse features to the whole hidden size. On few labels the table
            memorises the training events: from scratch on 10 k labels its model reached a training loss of 0.93
            and 1.331 rad held out, the same model without it 1.256 and 1.243, ahead of LineFit's 1.256
            (docs/results.md, centred inputs).
        use_dom_positions (`bool`, *optional*, defaults to `False`):
            Add a learned linear embedding of the DOM's scaled (x, y, z) to every pulse. The model then carries the
            detector geometry as a buffer saved with its weights. The paper needed positions to train from scratch
            on small labelled sets.
        event_position_reference (`str`, *optional*):
            With `use_dom_positions`, also embed each pulse's DOM position relative to the event's reference point,
            `(xyz - xyz_event) / event_position_scale`, where `xyz_event` is the charge-weighted mean position of
            the event's visible primary (HLC) pulses (`"charge_weighted_mean"`; all its visible pulses when it has no
            primary one). `None` (the paper): absolute positions only. A direction lies in the correlation of
            `xyz - xyz_event` with `time - t_event`, which absolute coordinates bury under the event's place in the
            detector (docs/results.md, centred inputs). The model computes it from the DOM ids, so a masked pulse
            neither counts in the reference point nor gets a relative position (no leak in pretraining); it reads
            each pulse's charge and primary flag from `features` through `charge_scale` and `auxiliary_offset`.
            The position embeddings are the model's own inputs, computed inside it: `position_scale` and
            `event_position_scale` are the config's, not the extractor's.
        event_position_scale (`float`, *optional*, defaults to 200.0):
            See `event_position_reference` (m): about the size of an event's light cloud in the ice.
        direction_head_hidden_size (`int`, *optional*):
            Hidden width of the direction MLP head; defaults to `4 * hidden_size` as in the paper.
        zero_init_direction_head (`bool`, *optional*, defaults to `False`):
            Start the direction head's output layer at zero weights. A randomly initialised head adds
            input-dependent noise to a direction that does not yet correlate with the truth; the quickest way down
            the loss is then to remove that noise, which collapses the CLS vector and the head onto one constant
            direction (docs/results.md, the diagnosis). From zero, the first step already points the output along
            the correlation of the CLS features with the labels.
        direction_loss (`str`, *optional*, defaults to `"angle"`):
            Fine-tuning loss: `"angle"` (mean opening angle, the Kaggle metric), `"vmf"` (von Mises-Fisher negative
            log-likelihood, which also predicts a per-event concentration `kappa`), or `"angle+vmf"` (their sum).
        classifier_hidden_size (`int`, *optional*):
            Hidden width of the MLP head of `PolarBertForSequenceClassification` (energy, event type, vertex...);
            defaults to `4 * hidden_size`, as the direction head. Its output size is `num_labels`, and its task
            `problem_type`, both standard `PretrainedConfig` fields (see `id2label`).
        classifier_dropout (`float`, *optional*):
            Dropout on the CLS vector before that head; defaults to `hidden_dropout_prob` (as BERT's).
        label_columns (`list[str]`, *optional*):
            Dataset columns that `PolarBertForSequenceClassification`'s labels come from, in output order, set by
            `scripts/finetune.py --label_columns`. A `"log10:"` prefix means the log10 of the column (e.g.
            `"log10:energy"`). Regression: one output per column; single-label classification: one column whose
            values (bool, int or string) are the classes named in `id2label`; multi-label classification: one
            boolean column per output. Evaluation and prediction read the truth from the same columns.
        target_mean (`list[float]`, *optional*):
            Regression only: the mean of each target over the training events. The head predicts standardised
            targets `(y - target_mean) / target_std` (so that targets of different units weigh alike in the MSE)
            and the model returns `logits` in physical units, `target_mean + target_std * head(CLS)`. None: 0.
        target_std (`list[float]`, *optional*):
            Regression only: the standard deviation of each target over the training events; None: 1.
        sparse_prediction (`bool`, *optional*, defaults to `False`):
            When labels are given, compute the DOM-id logits at the masked pulses only (the name ModernBERT uses).
            The 5,160-way output layer then costs a quarter of the primary pulses instead of every position;
            `logits` become (number of masked pulses, num_doms).
        check_inputs (`bool`, *optional*, defaults to `True`):
            Check the values of the inputs in `forward`: DOM ids in range, finite features, labels that are DOM ids
            or -100 (with `masked_positions` that point at them), unit direction vectors. Shapes are always
            checked. On a GPU every value check reads a result back to the host, a synchronisation that stalls the
            step (docs/performance.md measures it); the collators check the same things on their CPU arrays, so
            fast training turns this off (`configs/pretrain_paper.yaml`).
    """

    model_type = "polarbert"
    # Trainer's evaluation gathers every output but these, which would hold (batch, L + 1, hidden) per step.
    keys_to_ignore_at_inference = ["last_hidden_state", "hidden_states", "attentions"]

    def __init__(
        self,
        num_doms: int = 5160,
        hidden_size: int = 256,
        num_hidden_layers: int = 8,
        num_attention_heads: int = 8,
        intermediate_size: int = 1024,
        hidden_act: str = "relu",
        hidden_dropout_prob: float = 0.0,
        attention_probs_dropout_prob: float = 0.0,
        layer_norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
        mask_ratio: float = 0.25,
        charge_loss_weight: float = 1.0,
        num_pulse_features: int = 3,
        charge_scale: float = 3.0,
        auxiliary_offset: float = 0.5,
        position_scale: float = 500.0,
        use_dom_embeddings: bool = True,
        use_dom_positions: bool = False,
        event_position_reference: str | None = None,
        event_position_scale: float = 200.0,
        direction_head_hidden_size: int | None = None,
        zero_init_direction_head: bool = False,
        direction_loss: str = "angle",
        sparse_prediction: bool = False,
        check_inputs: bool = True,
        classifier_hidden_size: int | None = None,
        classifier_dropout: float | None = None,
        label_columns: list[str] | None = None,
        target_mean: list[float] | None = None,
        target_std: list[float] | None = None,
        **kwargs,
    ):
        if hidden_size % 2 or hidden_size % num_attention_heads:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be even and divisible by num_attention_heads ({num_attention_heads})"
            )
        if direction_loss not in DIRECTION_LOSSES:
            raise ValueError(f"direction_loss must be one of {DIRECTION_LOSSES}, got {direction_loss!r}")
        legacy = [name for name in LEGACY_PREPROCESSING_SETTINGS if name in kwargs]
        if legacy:
            raise ValueError(f"{legacy}: settings of the feature extractor (PolarBertFeatureExtractor), not of the "
                             "model config; the config takes what the model reads of them, "
                             "PolarBertConfig(**extractor.model_settings(), ...)")
        if num_pulse_features < 3:
            raise ValueError(f"num_pulse_features must be at least 3 (time, charge, flag), got {num_pulse_features}")
        if event_position_reference not in EVENT_POSITION_REFERENCES:
            raise ValueError(
                f"event_position_reference must be one of {EVENT_POSITION_REFERENCES}, got {event_position_reference!r}"
            )
        if event_position_reference is not None and not use_dom_positions:
            raise ValueError("event_position_reference needs use_dom_positions=True (the model's detector geometry)")
        if not use_dom_embeddings and not use_dom_positions:
            raise ValueError("use_dom_embeddings=False needs use_dom_positions=True: without either the model cannot "
                             "tell one DOM from another")
        if not 0.0 <= mask_ratio <= 1.0:
            raise ValueError(f"mask_ratio must lie in [0, 1], got {mask_ratio}")
        if target_std is not None and not all(std > 0 for std in target_std):
            raise ValueError(f"target_std must be positive, got {target_std}")
        self.num_doms = num_doms
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.mask_ratio = mask_ratio
        self.charge_loss_weight = charge_loss_weight
        self.num_pulse_features = num_pulse_features
        self.charge_scale = charge_scale
        self.auxiliary_offset = auxiliary_offset
        self.position_scale = position_scale
        self.use_dom_embeddings = use_dom_embeddings
        self.use_dom_positions = use_dom_positions
        self.event_position_reference = event_position_reference
        self.event_position_scale = event_position_scale
        self.direction_head_hidden_size = direction_head_hidden_size or 4 * hidden_size
        self.zero_init_direction_head = zero_init_direction_head
        self.direction_loss = direction_loss
        self.sparse_prediction = sparse_prediction
        self.check_inputs = check_inputs
        self.classifier_hidden_size = classifier_hidden_size or 4 * hidden_size
        self.classifier_dropout = classifier_dropout
        self.label_columns = list(label_columns) if label_columns is not None else None
        self.target_mean = list(target_mean) if target_mean is not None else None
        self.target_std = list(target_std) if target_std is not None else None
        kwargs.setdefault("pad_token_id", num_doms)
        super().__init__(**kwargs)

    @property
    def mask_token_id(self) -> int:
        return self.num_doms + 1

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs):
        """As `PretrainedConfig.from_dict` (every loading path comes here), after converting a config.json written
        before 2026-12-07 (`convert_legacy_config`)."""
        return super().from_dict(convert_legacy_config(config_dict), **kwargs)

    @property
    def vocab_size(self) -> int:
        """Rows of the DOM embedding table: every DOM, then the padding and mask ids."""
        return self.num_doms + 2


__all__ = ["PolarBertConfig"]
