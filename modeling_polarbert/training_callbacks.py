"""Callbacks of the training runs: `StopOnNonFiniteLoss` (a NaN or inf loss ends the run with a message) and
`StopAtTimeLimit` (a wall-clock budget, with the learning-rate schedule fitted to the steps that fit in it)."""

import logging
import math
import time

import torch
from transformers import TrainerCallback, TrainingArguments, get_scheduler

logger = logging.getLogger(__name__)


class StopOnNonFiniteLoss(TrainerCallback):
    """A loss that turns NaN or inf stops the run with a message instead of training on garbage."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise FloatingPointError(
                f"training loss became {loss} at step {state.global_step}; stopping. The last checkpoint in "
                f"{args.output_dir} is intact: lower the learning rate or check the data, then resume from it."
            )


class StopAtTimeLimit(TrainerCallback):
    """Stops training once `max_seconds` have passed since the training loop began, and saves a checkpoint there
    (unless `save_strategy` is "no"; the scripts save the final model in any case).

    So that the learning-rate schedule still ends where it should (a cosine decays to zero) instead of being cut
    off half way, the callback measures the time per optimizer step after the first `skip_steps` (start-up:
    DataLoader workers, kernel warm-up) over `calibration_steps` steps, and shortens the run to the steps that
    fit in the remaining time: `state.max_steps` becomes that number and the `LambdaLR` schedule that `Trainer`
    built is re-made for it (transformers' `get_scheduler`, same type, warm-up and options). At the end of every
    epoch the estimate is refined with the rate measured since calibration began, which counts per-epoch costs
    (sampler, evaluation) too. The run is only ever shortened, never lengthened past its epochs or `max_steps`.
    `clock` is injectable for tests."""

    def __init__(self, max_seconds: float, skip_steps: int = 5, calibration_steps: int = 20, clock=time.monotonic):
        if not max_seconds > 0:
            raise ValueError(f"max_train_seconds must be positive, got {max_seconds}")
        self.max_seconds, self.skip_steps, self.calibration_steps, self.clock = (
            max_seconds, skip_steps, calibration_steps, clock
        )

    def on_train_begin(self, args, state, control, **kwargs):
        self.start, self.first_step = self.clock(), state.global_step
        self.reference, self.fitted_steps = None, None

    def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
        now = self.clock()
        if self.reference is None:
            if state.global_step - self.first_step >= self.skip_steps:
                self.reference = (now, state.global_step)
        elif self.fitted_steps is None and state.global_step - self.reference[1] >= self.calibration_steps:
            self._fit(args, state, now, lr_scheduler)
        out_of_time = now - self.start >= self.max_seconds
        if out_of_time or (self.fitted_steps is not None and state.global_step >= self.fitted_steps):
            control.should_training_stop = True
            control.should_save = args.save_strategy != "no"
            if out_of_time:
                logger.info("time limit of %.0f s reached at step %d (epoch %.2f)", self.max_seconds,
                            state.global_step, state.epoch or 0.0)

    def on_epoch_end(self, args, state, control, lr_scheduler=None, **kwargs):
        if self.fitted_steps is not None and not control.should_training_stop:
            self._fit(args, state, self.clock(), lr_scheduler)

    def _fit(self, args, state, now: float, lr_scheduler) -> None:
        reference_time, reference_step = self.reference
        if state.global_step <= reference_step:
            return
        seconds_per_step = (now - reference_time) / (state.global_step - reference_step)
        remaining = self.max_seconds - (now - self.start)
        fitted = state.global_step + max(int(remaining / max(seconds_per_step, 1e-9)), 0)
        fitted = max(min(fitted, state.max_steps), state.global_step + 1)
        if fitted != self.fitted_steps:
            self.fitted_steps = state.max_steps = fitted
            refit_schedule(lr_scheduler, args, fitted)
            logger.info("%.3f s per step: training for %d steps to fit %.0f s", seconds_per_step, fitted,
                        self.max_seconds)


def refit_schedule(lr_scheduler, args: TrainingArguments, num_training_steps: int) -> bool:
    """Make Trainer's learning-rate schedule (a `LambdaLR`, as transformers' schedules are) the one `get_scheduler`
    gives for `num_training_steps`, keeping its current step; returns False (and changes nothing) for a schedule of
    another kind. The new schedule is built on a throwaway optimizer so that the real one's state is untouched."""
    scheduler = getattr(lr_scheduler, "scheduler", lr_scheduler)  # Accelerate may wrap it
    if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
        return False
    throwaway = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    fresh = get_scheduler(
        args.lr_scheduler_type, throwaway, num_warmup_steps=args.get_warmup_steps(num_training_steps),
        num_training_steps=num_training_steps, scheduler_specific_kwargs=args.lr_scheduler_kwargs,
    )
    if not isinstance(fresh, torch.optim.lr_scheduler.LambdaLR):
        return False
    scheduler.lr_lambdas = [fresh.lr_lambdas[0]] * len(scheduler.optimizer.param_groups)
    # Re-take the current step under the new lambdas: `step()` sets every group's lr to base_lr * lambda(step) and
    # what `get_last_lr()` (Trainer's logged lr) returns, through the scheduler's public interface.
    scheduler.last_epoch -= 1
    scheduler.step()
    return True
