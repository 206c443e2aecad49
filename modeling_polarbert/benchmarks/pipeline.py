"""The data pipeline and the whole paths around the model: the collator alone with DataLoader workers, `Trainer`
pretraining end to end with the real collators, prediction over a prepared dataset."""

import math
import time

import torch

from ..collators import PolarBertPretrainingCollator
from ..modeling_polarbert import PolarBertForDirection, PolarBertForMaskedDOM
from .batches import benchmark_config, collator_for
from .measuring import GpuBusySampler, peak_memory_mb, synchronize
from .results import Result


def benchmark_collator(dataset, config, batch_size: int, workers: int, batches: int, model: str) -> Result:
    """The data pipeline alone: DataLoader over the Arrow fast path (`dataset`) with the pretraining collator."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         collate_fn=PolarBertPretrainingCollator(config, seed=0))
    events, start, iterator = 0, None, iter(loader)
    for number in range(batches + 1):
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            batch = next(iterator)
        if number == 0:  # the first batch pays the workers' start-up
            start = time.perf_counter()
            continue
        events += len(batch["dom_ids"])
    seconds = time.perf_counter() - start
    return Result(f"collator, {workers} workers", "random", "-", False, model=model,
                  events_per_second=events / seconds, ms_per_step=1000 * seconds / batches)


def benchmark_trainer(args, dataset, device, batching: str) -> Result:
    """The real pretraining path: PolarBertTrainer + PolarBertPretrainingCollator (padded or packed) +
    length-grouped sampling + DataLoader workers, timed after `warmup` steps, with the GPU's busy share."""
    import tempfile

    from transformers import TrainerCallback, TrainingArguments

    from ..trainer import PolarBertTrainer

    stamps = []

    class StepTimer(TrainerCallback):
        def on_step_end(self, training_args, state, control, **kwargs):
            synchronize(device)
            stamps.append(time.perf_counter())
            if len(stamps) == args.warmup:
                busy.__enter__()

    config = benchmark_config(args)
    torch.manual_seed(0)
    model = PolarBertForMaskedDOM(config)
    model.set_attn_implementation(args.trainer_attention)
    steps = args.trainer_steps + args.warmup
    training_args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="polarbert-benchmark-"), per_device_train_batch_size=args.batch_size,
        max_steps=steps, learning_rate=1e-4, bf16=device.type == "cuda", save_strategy="no",
        report_to="none", disable_tqdm=True, logging_steps=10_000, train_sampling_strategy="group_by_length",
        dataloader_num_workers=args.trainer_workers, dataloader_pin_memory=device.type == "cuda",
        dataloader_persistent_workers=args.trainer_workers > 0, use_cpu=device.type == "cpu",
        remove_unused_columns=False, torch_compile=args.trainer_compile, logging_nan_inf_filter=False,
        optim="adamw_torch_fused" if device.type == "cuda" else "adamw_torch",
    )
    collator = collator_for(config, True, batching, args)
    trainer = PolarBertTrainer(model=model, args=training_args, train_dataset=dataset, data_collator=collator,
                               callbacks=[StepTimer()])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    busy = GpuBusySampler(device)
    trainer.train()
    busy.__exit__(None, None, None)
    timed = len(stamps) - args.warmup
    seconds = stamps[-1] - stamps[args.warmup - 1]
    result = Result("Trainer pretraining, end to end", batching, args.trainer_attention, args.trainer_compile,
                    model=args.model)
    result.events_per_second = timed * args.batch_size / seconds
    result.ms_per_step = 1000 * seconds / timed
    result.peak_memory_mb = peak_memory_mb(device)
    result.busy_share = busy.share
    result.note = f"{args.trainer_workers} workers, {timed} steps after {args.warmup}"
    return result


def benchmark_prediction(args, dataset, device, dtype) -> Result:
    """Inference as `polarbert predict` runs it: every event of the dataset through the deterministic direction
    collator, DataLoader workers, the model in `dtype`."""
    from ..prediction import predict_directions

    config = benchmark_config(args)
    torch.manual_seed(0)
    model = PolarBertForDirection(config).to(device, dtype).eval()
    model.set_attn_implementation(args.trainer_attention)
    subset = dataset.dataset.select(range(min(len(dataset), args.batch_size * 2)))
    predict_directions(model, subset, batch_size=args.predict_batch_size, progress=False)  # warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with GpuBusySampler(device) as busy:
        start = time.perf_counter()
        predictions = predict_directions(model, dataset.dataset, batch_size=args.predict_batch_size, progress=False,
                                         num_workers=args.trainer_workers)
        seconds = time.perf_counter() - start
    assert len(predictions["direction"]) == len(dataset)
    batches = math.ceil(len(dataset) / args.predict_batch_size)
    return Result("prediction over the whole dataset", "in order", args.trainer_attention, False, model=args.model,
                  events_per_second=len(dataset) / seconds, ms_per_step=1000 * seconds / batches,
                  peak_memory_mb=peak_memory_mb(device), busy_share=busy.share,
                  note=f"{len(dataset):,} events, batch {args.predict_batch_size}, {args.trainer_workers} workers, "
                       f"{str(dtype).replace('torch.', '')}")
