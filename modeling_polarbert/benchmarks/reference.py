"""The public reference implementation of PolarBERT, timed on the same batches and device as ours.

The reference is timinar/PolarBERT on GitHub: `polarbert.flash_model.FlashTransformer`, a Lightning module whose
batches are `((x, l), (y, c))`. Its code is NOT part of this repository and must never be committed: put a copy in
`reference/` (git-ignored), e.g. from a clone or a mirror of that repository,

    mkdir -p reference && git --git-dir=PATH/TO/PolarBERT/.git archive HEAD src/polarbert | tar -x -C reference

so that `reference/src/polarbert/flash_model.py` exists (a `reference/polarbert/` folder works too). It needs
`pytorch_lightning` (or `lightning`, whose `lightning.pytorch` is used under that name) besides torch; nothing else
of it is imported (its training script also wants wandb, which is not needed here).

What this file holds is ours: building the reference's config and batches from ours, and timing its training step
(forward, its loss, backward, its AdamW) and its Lightning `fit` loop.

Its batch, read from its code (`IceCubeDataset`, `IceCubeEmbedding`, `SimpleTransformer.shared_step`), snapshot
4969a6f of 2025-05-19: `x` float32 (B, 127, 4) = [(time - 1e4) / 3e4, log10(charge) / 3, auxiliary - 0.5,
sensor_id + 1] with zeros as padding, `l` the pulse counts, `y` unused in pretraining, `c` the total charge in p.e.
(its loss takes log10). It masks DOM ids inside the model (a quarter of the primary pulses, drawn on the device).
A newer layout with `x = {"features": (B, 127, 3), "dom_id": (B, 127)}` is recognised from its embedding's code.
"""

import contextlib
import importlib
import inspect
import sys
import time
from pathlib import Path

import torch

from ..collators import PolarBertPretrainingCollator
from .batches import benchmark_config, make_batches
from .measuring import GpuBusySampler, peak_memory_mb
from .results import Result


# The git-ignored copy in the repository, as the benchmark runs from its root (`--reference` points elsewhere).
REFERENCE_DIR = Path("reference")


def import_reference(reference_dir: Path = REFERENCE_DIR):
    """The reference's `FlashTransformer` class, from the copy in `reference_dir` (a clear error if it is absent)."""
    reference_dir = Path(reference_dir)
    source = reference_dir / "src" if (reference_dir / "src" / "polarbert").is_dir() else reference_dir
    if not (source / "polarbert" / "flash_model.py").is_file():
        raise FileNotFoundError(f"no copy of the reference implementation in {reference_dir} (expected "
                                "src/polarbert/flash_model.py; see modeling_polarbert/benchmarks/reference.py)")
    try:
        importlib.import_module("pytorch_lightning")
    except ImportError:
        try:
            sys.modules["pytorch_lightning"] = importlib.import_module("lightning.pytorch")
        except ImportError as error:
            raise ImportError("the reference implementation needs pytorch_lightning (or lightning)") from error
    if str(source) not in sys.path:
        sys.path.insert(0, str(source))
    return importlib.import_module("polarbert.flash_model").FlashTransformer


def reference_config(config, learning_rate: float = 5e-4) -> dict:
    """The reference's config dict (`model` and `training` sections) for the model size of our `PolarBertConfig`."""
    return {
        "model": {
            "embedding_dim": config.hidden_size,
            "dom_embed_dim": config.hidden_size // 2,  # as ours: half DOM embedding, half features
            "num_heads": config.num_attention_heads,
            "hidden_size": config.intermediate_size,
            "num_layers": config.num_hidden_layers,
            "lambda_charge": config.charge_loss_weight,
            "model_name": "reference",
        },
        "training": {
            "mask_prob": config.mask_ratio,
            "lr_scheduler": "constant",
            "initial_lr": learning_rate,
            "weight_decay": 0.0,
            "gradient_clip_val": 2.0,
        },
    }


def _uses_dict_inputs(model) -> bool:
    return '"dom_id"' in inspect.getsource(type(model.embedding).forward) or \
        "'dom_id'" in inspect.getsource(type(model.embedding).forward)


def reference_batch(batch: dict, total_charge: torch.Tensor, max_pulses: int, dict_inputs: bool = False):
    """One of our padded batches (dom_ids, features, attention_mask) -> the reference's ((x, l), (y, c)),
    padded to `max_pulses` columns as its memory-mapped dataset is."""
    mask = batch["attention_mask"].bool()
    extra = max_pulses - mask.shape[1]
    pad = torch.nn.functional.pad
    features = pad(batch["features"][..., :3], (0, 0, 0, extra)).float()  # its three: time, charge, auxiliary
    dom_ids = batch["dom_ids"]
    if "labels" in batch and batch["labels"].dim() == 2:  # our masking undone: the reference masks by itself
        dom_ids = torch.where(batch["labels"] != -100, batch["labels"], dom_ids)
    dom_id = pad(torch.where(mask, dom_ids + 1, 0), (0, extra))  # its ids start at 1; 0 is padding
    lengths = mask.sum(dim=1).float()
    charge = torch.pow(10.0, total_charge.double()).float()
    if dict_inputs:
        x = {"features": features, "dom_id": dom_id}
    else:
        x = torch.cat([features, dom_id.unsqueeze(-1).float()], dim=-1)  # (B, max_pulses, 4)
    return (x, lengths), (None, charge)


def _to(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, dict):
        return {key: _to(item, device) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_to(item, device) for item in value)
    return value


def build_reference(config, reference_dir: Path = REFERENCE_DIR):
    FlashTransformer = import_reference(reference_dir)
    torch.manual_seed(0)
    return FlashTransformer(reference_config(config))


def time_reference_steps(model, batches, device: torch.device, warmup: int, dtype: torch.dtype) -> tuple[float, int]:
    """Seconds for the batches after `warmup` of them, and their events: the reference's training step as its
    Lightning module defines it (shared_step -> DOM loss + lambda x charge loss), backward, its own AdamW."""
    model.to(device).train()
    optimizer = model.configure_optimizers()
    if isinstance(optimizer, (tuple, list)):
        optimizer = optimizer[0][0]
    batches = [_to(batch, device) for batch in batches]
    autocast = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()

    def step(batch):
        with autocast:
            dom_loss, charge_loss = model.shared_step(batch)
            loss = dom_loss + model.lambda_charge * charge_loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for batch in batches[:warmup]:
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for batch in batches[warmup:]:
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    events = sum(len(batch[0][1]) for batch in batches[warmup:])
    return time.perf_counter() - start, events


def time_reference_fit(model, batches, device: torch.device, warmup: int, precision: str) -> tuple[float, int]:
    """The reference's own loop: a Lightning `Trainer.fit` over the given (CPU) batches, the way its
    pretraining script builds it (gradient clipping 2.0, its precision setting), logging and checkpoints off.
    Timed from the end of the `warmup`-th step to the end of the last one."""
    import pytorch_lightning as pl

    stamps = []

    class StepTimer(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if device.type == "cuda":
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False,
                                         pin_memory=device.type == "cuda")
    trainer = pl.Trainer(
        max_steps=len(batches), accelerator="gpu" if device.type == "cuda" else "cpu", devices=1,
        precision=precision, gradient_clip_val=model.config["training"]["gradient_clip_val"], logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[StepTimer()],
        num_sanity_val_steps=0, limit_val_batches=0,
    )
    trainer.fit(model, train_dataloaders=loader)
    events = sum(len(batch[0][1]) for batch in batches[warmup:])
    return stamps[-1] - stamps[warmup - 1], events


def benchmark_reference(args, dataset, device, dtype) -> list:
    config = benchmark_config(args)
    try:
        model = build_reference(config, Path(args.reference))
    except (FileNotFoundError, ImportError) as error:
        return [Result("reference (timinar/PolarBERT) step", "padded", "sdpa", False, model=args.model,
                       note=f"not run: {error}")]
    dict_inputs = _uses_dict_inputs(model)
    collator = PolarBertPretrainingCollator(config, seed=0)
    ours = make_batches(dataset, collator, args.batch_size, "padded", args.steps + args.warmup, seed=1,
                        max_pulses=collator.max_pulses)
    batches = [reference_batch(b, b["total_charge"], collator.max_pulses, dict_inputs) for b in ours]
    parameters = sum(p.numel() for p in model.parameters())
    results = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with GpuBusySampler(device) as busy:
        seconds, events = time_reference_steps(model, batches, device, args.warmup, dtype)
    results.append(Result("reference (timinar/PolarBERT) step", "padded", "sdpa", False, model=args.model,
                          events_per_second=events / seconds,
                          ms_per_step=1000 * seconds / (len(batches) - args.warmup),
                          peak_memory_mb=peak_memory_mb(device), busy_share=busy.share,
                          note=f"{parameters / 1e6:.1f} M parameters; its step: dense DOM logits, in-model masking"))
    model = build_reference(config, Path(args.reference))
    precision = "bf16-mixed" if dtype == torch.bfloat16 else "32-true"
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        with GpuBusySampler(device) as busy:
            seconds, events = time_reference_fit(model, batches, device, args.warmup, precision)
        results.append(Result("reference (timinar/PolarBERT) Lightning fit", "padded", "sdpa", False,
                              model=args.model, events_per_second=events / seconds,
                              ms_per_step=1000 * seconds / (len(batches) - args.warmup),
                              peak_memory_mb=peak_memory_mb(device), busy_share=busy.share,
                              note=f"{precision}, batches prepared in memory (its data loading not counted)"))
    except Exception as error:  # its Lightning version may differ from what it was written for
        results.append(Result("reference (timinar/PolarBERT) Lightning fit", "padded", "sdpa", False,
                              model=args.model, note=f"failed: {str(error).splitlines()[0][:80]}"))
    return results
