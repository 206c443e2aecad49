"""Training and inference steps of the model, timed for every requested variant: attention implementation, batching,
torch.compile, the model's value checks, gradient checkpointing."""

import contextlib

import torch

from ..modeling_polarbert import PolarBertForDirection, PolarBertForMaskedDOM
from .batches import benchmark_config, collator_for, make_batches, to_device
from .measuring import GpuBusySampler, compile_count, model_flops, peak_memory_mb, time_steps
from .results import Result, Results


def make_step(model, device, dtype, training: bool, compiled: bool, backend: str):
    autocast = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()
    forward = torch.compile(model, backend=backend) if compiled else model
    if training:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
        model.train()

        def step(batch):
            with autocast:
                loss = forward(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    else:
        model.eval()

        @torch.inference_mode()
        def step(batch):
            with autocast:
                forward(**batch)

    return step


def benchmark_model(args, config, batches, device, dtype, rate, training: bool, batching: str, attention: str,
                    compiled: bool, checkpointing: bool = False) -> Result:
    what = "pretraining step" if training else "direction inference"
    result = Result(what, batching, attention, compiled, model=args.model)
    notes = []
    if config.check_inputs:
        notes.append("check_inputs on")
    if checkpointing:
        notes.append("gradient checkpointing")
    model_class = PolarBertForMaskedDOM if training else PolarBertForDirection
    torch.manual_seed(0)
    model = model_class(config).to(device)
    try:
        model.set_attn_implementation(attention)
    except (ImportError, ValueError) as error:
        result.note = f"unavailable: {str(error).splitlines()[0][:60]}"
        return result
    if checkpointing:  # transformers >= 5.2x: activation_checkpointing_enable; before: gradient_checkpointing_enable
        getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)()
    step = make_step(model, device, dtype, training, compiled, args.compile_backend)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    graphs_before = compile_count()
    with GpuBusySampler(device) as busy:
        seconds, events, steps = time_steps(step, batches, device, args.warmup, args.time_limit)
    flops = sum(model_flops(config, batch, training) for batch in batches[args.warmup:args.warmup + steps])
    result.events_per_second = events / seconds
    result.ms_per_step = 1000 * seconds / steps
    result.peak_memory_mb = peak_memory_mb(device)
    result.mfu = flops / seconds / rate
    result.busy_share = busy.share
    if compiled:
        notes.append(f"{compile_count() - graphs_before} graph(s) compiled")
    if steps < len(batches) - args.warmup:
        notes.append(f"{steps} timed steps (time limit)")
    result.note = ", ".join(notes)
    return result


def run_model_variants(args, dataset, device, dtype, rate, results: Results) -> None:
    for training, name in ((True, "train"), (False, "infer")):
        if name not in args.parts:
            continue
        for batching in args.batching:
            cache = {}
            for attention in args.attention:
                for compile_option in args.compile:
                    for check_option in (args.check_inputs if training else ["off"]):
                        for checkpoint_option in (args.gradient_checkpointing if training else ["off"]):
                            config = benchmark_config(args, check_inputs=check_option == "on")
                            if batching not in cache:
                                collator = collator_for(config, training, batching, args)
                                batches = make_batches(dataset, collator, args.batch_size, batching,
                                                       args.steps + args.warmup, seed=1,
                                                       max_pulses=collator.max_pulses)
                                cache[batching] = [to_device(batch, device, training) for batch in batches]
                            try:
                                results.append(benchmark_model(
                                    args, config, cache[batching], device, dtype, rate, training, batching,
                                    attention, compile_option == "on", checkpoint_option == "on"))
                            except (RuntimeError, NotImplementedError, ValueError) as error:
                                what = "pretraining step" if training else "direction inference"
                                results.append(Result(what, batching, attention, compile_option == "on",
                                                      model=args.model,
                                                      note=f"failed: {str(error).splitlines()[0][:80]}"))
                            if device.type == "cuda":
                                torch.cuda.empty_cache()
