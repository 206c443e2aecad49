"""Two correctness checks of the fast paths: no host sync in a training step; packed equals padded, forward and backward."""

import numpy as np
import torch

from ..collators import PolarBertPretrainingCollator
from ..diagnostics import count_host_syncs
from ..modeling_polarbert import PolarBertForMaskedDOM
from .batches import benchmark_config, collator_for, make_batches, to_device
from .model_steps import make_step
from .results import Result


def check_no_host_sync(args, dataset, device, dtype, batching: str, attention: str) -> Result:
    """One training step (forward, backward, AdamW) under `torch.cuda.set_sync_debug_mode("error")` on a GPU
    (which raises at any synchronisation), or with the host-sync ops counted on a CPU (forward and backward)."""
    config = benchmark_config(args)
    result = Result("check: no host sync in a training step", batching, attention, False, model=args.model)
    collator = collator_for(config, True, batching, args)
    batches = [to_device(b, device, True) for b in make_batches(
        dataset, collator, min(args.batch_size, 256), batching, 3, seed=2, max_pulses=collator.max_pulses)]
    torch.manual_seed(0)
    model = PolarBertForMaskedDOM(config).to(device)
    model.set_attn_implementation(attention)
    if device.type == "cuda":
        step = make_step(model, device, dtype, True, False, args.compile_backend)
        for batch in batches[:2]:  # lazy initialisation (cuBLAS handles, the optimizer's state) happens here
            step(batch)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            step(batches[2])
            result.note = "passed: set_sync_debug_mode('error') raised nothing"
        except RuntimeError as error:
            result.note = f"FAILED: {str(error).splitlines()[0][:90]}"
        finally:
            torch.cuda.set_sync_debug_mode("default")
            torch.cuda.synchronize()
    else:
        model.train()
        calls = count_host_syncs(lambda batch: model(**batch).loss.backward(), batches[2])
        result.note = "passed: no host-sync op counted" if not calls else f"FAILED: {sorted(set(calls))}"
    return result


def check_packed_equals_padded(args, dataset, device, attention: str) -> Result:
    """Loss and gradients of the packed batch against the padded batch of the same events, float32."""
    config = benchmark_config(args)
    result = Result("check: packed = padded, forward + backward", "packed", attention, False, model=args.model)
    lengths = np.asarray(dataset.lengths)
    indices = np.argsort(lengths, kind="stable")[:: max(len(lengths) // 64, 1)][:64].tolist()  # all lengths
    rows = dataset.gather(indices)
    padded = to_device(PolarBertPretrainingCollator(config, seed=0)(rows), device, True)
    packed = to_device(PolarBertPretrainingCollator(config, seed=0, pack_length=args.pack_length)(rows), device, True)
    torch.manual_seed(0)
    model = PolarBertForMaskedDOM(config).to(device).train()
    model.set_attn_implementation(attention)
    cuda = device.type == "cuda"
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32 if cuda else False
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 products, so that the comparison is tight
    try:
        outputs = {}
        for name, batch in (("padded", padded), ("packed", packed)):
            model.zero_grad()
            loss = model(**batch).loss
            loss.backward()
            outputs[name] = (loss.detach(), {n: p.grad.detach().clone() for n, p in model.named_parameters()})
    except (RuntimeError, NotImplementedError) as error:
        result.note = f"not run: {str(error).splitlines()[0][:80]}"
        return result
    finally:
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
    loss_difference = (outputs["packed"][0] - outputs["padded"][0]).abs().item()
    # Relative to the norm of the whole gradient: some parameters' gradients are zero up to rounding (a key bias
    # shifts every score of a row alike, which the softmax ignores), so their own relative differences mean nothing.
    padded_gradient = torch.cat([g.flatten() for g in outputs["padded"][1].values()])
    packed_gradient = torch.cat([g.flatten() for g in outputs["packed"][1].values()])
    gradient_difference = ((packed_gradient - padded_gradient).norm() / padded_gradient.norm()).item()
    largest = max((outputs["packed"][1][n] - g).abs().max().item() for n, g in outputs["padded"][1].items())
    largest /= padded_gradient.abs().max().item()
    passed = loss_difference < 1e-4 and gradient_difference < 1e-4 and largest < 1e-4
    result.note = (f"{'passed' if passed else 'FAILED'}: loss difference {loss_difference:.1e}, gradient "
                   f"difference {gradient_difference:.1e} of its norm, largest element difference {largest:.1e} of "
                   f"the largest element ({len(indices)} events, {len(packed['dom_ids'])} packed rows of "
                   f"{args.pack_length})")
    return result
