"""PolarBERT configuration.

This file travels to the Hub as remote code next to `modeling_polarbert.py`, so it imports nothing but
transformers.
"""

from transformers import PretrainedConfig

DIRECTION_LOSSES = ("angle", "vmf", "angle+vmf")
EVENT_TIME_REFERENCES = (None, "first_pulse", "charge_weighted_mean")
EVENT_POSITION_REFERENCES = (None, "charge_weighted_mean")


class PolarBertConfig(PretrainedConfig):
    r"""
    Configuration of a PolarBERT model (Timiryasov, Tastet and Ruchayskiy, "PolarBERT: A Foundation Model for
    IceCube", NeurIPS 2024 ML4PS workshop). The defaults are the paper's 8 M-parameter model.

    An event is a sequence of pulses; each pulse is a DOM id (a token) plus three continuous features
    (time, charge, auxiliary flag) that are scaled as every Kaggle solution did (see `time_offset` ...).
    A trainable CLS ("regression") token is prepended inside the model, so a sequence holds at most
    `max_pulses + 1` tokens.

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
        max_pulses (`int`, *optional*, defaults to 127):
            Pulses an event is down-sampled to by the collators (the paper's 127 + 1 CLS = 128 tokens). The model
            itself has no positional encoding and accepts longer sequences (evaluation on every pulse).
        mask_ratio (`float`, *optional*, defaults to 0.25):
            Fraction of primary (auxiliary = False) pulses whose DOM id is replaced by the mask id in pretraining
            (the paper found 0.25 best).
        charge_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight `lambda` of the MSE on log10(total event charge) in the pretraining loss.
        time_offset (`float`, *optional*, defaults to 1e4):
            Pulse time (ns) maps to `(time - time_offset) / time_scale`.
        time_scale (`float`, *optional*, defaults to 3e4):
            See `time_offset`.
        charge_scale (`float`, *optional*, defaults to 3.0):
            Pulse charge (p.e.) maps to `log10(charge) / charge_scale`.
        auxiliary_offset (`float`, *optional*, defaults to 0.5):
            The auxiliary flag maps to `auxiliary - auxiliary_offset`.
        event_time_reference (`str`, *optional*):
            Adds a fourth pulse feature, the time measured within the event: `(time - t_event) / event_time_scale`,
            where `t_event` is the time of the event's first selected pulse (`"first_pulse"`) or the charge-weighted
            mean time of its selected primary (HLC) pulses (`"charge_weighted_mean"`; all its pulses when it has no
            primary one). `None` (the paper): the absolute time only.
            A direction lives in time differences of a few 100 ns inside an event: on the paper's absolute scale
            they are about 0.01, which a linear embedding initialised at N(0, 0.02) makes a hundred times smaller
            than the random DOM-id embedding beside it (docs/results.md, the diagnosis).
        event_time_scale (`float`, *optional*, defaults to 1000.0):
            See `event_time_reference` (ns). Light crosses about 220 m of ice in 1 microsecond.
        position_scale (`float`, *optional*, defaults to 500.0):
            DOM coordinates (m) map to `xyz / position_scale` when `use_dom_positions` is on.
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
        pad_to_multiple_of (`int`, *optional*):
            Collators pad the sequence length to a multiple of this (8 suits tensor cores). A coarse multiple (32)
            also keeps the number of distinct batch shapes small, which `torch.compile` likes.
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
        max_pulses: int = 127,
        mask_ratio: float = 0.25,
        charge_loss_weight: float = 1.0,
        time_offset: float = 1e4,
        time_scale: float = 3e4,
        charge_scale: float = 3.0,
        auxiliary_offset: float = 0.5,
        event_time_reference: str | None = None,
        event_time_scale: float = 1000.0,
        position_scale: float = 500.0,
        use_dom_positions: bool = False,
        event_position_reference: str | None = None,
        event_position_scale: float = 200.0,
        direction_head_hidden_size: int | None = None,
        zero_init_direction_head: bool = False,
        direction_loss: str = "angle",
        sparse_prediction: bool = False,
        pad_to_multiple_of: int | None = None,
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
        if event_time_reference not in EVENT_TIME_REFERENCES:
            raise ValueError(f"event_time_reference must be one of {EVENT_TIME_REFERENCES}, got {event_time_reference!r}")
        if event_position_reference not in EVENT_POSITION_REFERENCES:
            raise ValueError(
                f"event_position_reference must be one of {EVENT_POSITION_REFERENCES}, got {event_position_reference!r}"
            )
        if event_position_reference is not None and not use_dom_positions:
            raise ValueError("event_position_reference needs use_dom_positions=True (the model's detector geometry)")
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
        self.max_pulses = max_pulses
        self.mask_ratio = mask_ratio
        self.charge_loss_weight = charge_loss_weight
        self.time_offset = time_offset
        self.time_scale = time_scale
        self.charge_scale = charge_scale
        self.auxiliary_offset = auxiliary_offset
        self.event_time_reference = event_time_reference
        self.event_time_scale = event_time_scale
        self.position_scale = position_scale
        self.use_dom_positions = use_dom_positions
        self.event_position_reference = event_position_reference
        self.event_position_scale = event_position_scale
        self.direction_head_hidden_size = direction_head_hidden_size or 4 * hidden_size
        self.zero_init_direction_head = zero_init_direction_head
        self.direction_loss = direction_loss
        self.sparse_prediction = sparse_prediction
        self.pad_to_multiple_of = pad_to_multiple_of
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

    @property
    def num_pulse_features(self) -> int:
        """Columns of `features`: time, charge, auxiliary flag, and the time within the event when it is on."""
        return 3 if self.event_time_reference is None else 4

    @property
    def vocab_size(self) -> int:
        """Rows of the DOM embedding table: every DOM, then the padding and mask ids."""
        return self.num_doms + 2


__all__ = ["PolarBertConfig"]
