"""The callbacks of the training runs (modeling_polarbert.training_callbacks): a non-finite loss stops the run; a
wall-clock budget stops it and fits the learning-rate schedule to the steps that fit."""

import math
from types import SimpleNamespace

import pytest
import torch
from transformers import TrainerControl, TrainerState, get_scheduler

from modeling_polarbert import PolarBertConfig, PolarBertForMaskedDOM
from modeling_polarbert.collators import PolarBertPretrainingCollator
from modeling_polarbert.loading import load_prepared_dataset
from modeling_polarbert.pulse_dataset import as_pulse_dataset
from modeling_polarbert.trainer import PolarBertTrainer
from modeling_polarbert.training_args import PolarBertTrainingArguments
from modeling_polarbert.training_callbacks import StopAtTimeLimit, StopOnNonFiniteLoss


def test_a_non_finite_loss_stops_the_run():
    state = SimpleNamespace(global_step=17)
    callback = StopOnNonFiniteLoss()
    callback.on_log(SimpleNamespace(output_dir="x"), state, None, logs={"loss": 1.5})
    with pytest.raises(FloatingPointError, match="step 17"):
        callback.on_log(SimpleNamespace(output_dir="x"), state, None, logs={"loss": float("nan")})


def _timed_steps(tmp_path, max_seconds, seconds_per_step, max_steps=1000, save_strategy="steps"):
    """Drive StopAtTimeLimit as Trainer does (optimizer step, scheduler step, on_step_end) under a fake clock;
    return (state, control, learning rates used at each step, callback)."""
    args = PolarBertTrainingArguments(output_dir=str(tmp_path), lr_scheduler_type="cosine", warmup_steps=0,
                                      learning_rate=1.0, save_strategy=save_strategy, report_to="none")
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=0, num_training_steps=max_steps)
    state, control, now = TrainerState(max_steps=max_steps), TrainerControl(), [0.0]
    callback = StopAtTimeLimit(max_seconds, skip_steps=5, calibration_steps=20, clock=lambda: now[0])
    callback.on_train_begin(args, state, control)
    learning_rates = []
    while not control.should_training_stop and state.global_step < state.max_steps:
        now[0] += seconds_per_step(state.global_step)
        learning_rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
        state.global_step += 1
        callback.on_step_end(args, state, control, lr_scheduler=scheduler)
    return state, control, learning_rates, callback


def test_time_limit_fits_the_cosine_schedule_to_the_steps_that_fit(tmp_path):
    state, control, learning_rates, _ = _timed_steps(tmp_path, max_seconds=100, seconds_per_step=lambda step: 2.0)
    # 2 s per step, 100 s: 50 steps, and the cosine is re-made for 50 once measured (after 5 + 20 steps).
    assert state.global_step == state.max_steps == 50 and control.should_training_stop
    assert learning_rates[24] == pytest.approx(0.5 * (1 + math.cos(math.pi * 24 / 1000)))  # the 1000-step cosine
    assert learning_rates[25] == pytest.approx(0.5 * (1 + math.cos(math.pi * 25 / 50)))  # refitted: half-way
    assert learning_rates[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 49 / 50)))  # close to zero at the end
    assert control.should_save  # a checkpoint where it stopped


def test_time_limit_stops_a_run_that_slows_down_in_time(tmp_path):
    state, control, _, callback = _timed_steps(tmp_path, max_seconds=100, save_strategy="no",
                                               seconds_per_step=lambda step: 2.0 if step < 30 else 5.0)
    elapsed = 30 * 2.0 + (state.global_step - 30) * 5.0
    assert control.should_training_stop and 100 <= elapsed < 105  # stopped by the clock, at the first step past it
    assert state.global_step < callback.fitted_steps  # before the steps the early rate promised
    assert not control.should_save  # save_strategy "no": the scripts save the final model themselves


def test_time_limit_never_lengthens_a_run(tmp_path):
    state, control, learning_rates, callback = _timed_steps(tmp_path, max_seconds=1000, max_steps=40,
                                                            seconds_per_step=lambda step: 1.0)
    assert state.global_step == state.max_steps == 40 and callback.fitted_steps == 40
    assert learning_rates[39] == pytest.approx(0.5 * (1 + math.cos(math.pi * 39 / 40)))
    with pytest.raises(ValueError, match="positive"):
        StopAtTimeLimit(0)


def test_inside_trainer_the_time_limit_refits_the_real_schedule_and_ends_it_at_zero(simulated, tmp_path):
    config = PolarBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                             sparse_prediction=True)
    args = PolarBertTrainingArguments(
        output_dir=str(tmp_path), num_train_epochs=1000, per_device_train_batch_size=32, learning_rate=1e-3,
        lr_scheduler_type="cosine", warmup_steps=0, use_cpu=True, save_strategy="no", eval_strategy="no",
        report_to="none", disable_tqdm=True, logging_steps=1, label_names=["labels", "total_charge"],
        remove_unused_columns=False)
    ticks = iter(range(10**6))  # one second per look at the clock: per step, and at train and epoch boundaries
    trainer = PolarBertTrainer(
        model=PolarBertForMaskedDOM(config), args=args,
        train_dataset=as_pulse_dataset(load_prepared_dataset(str(simulated / "prepared"))),
        data_collator=PolarBertPretrainingCollator(config, seed=0),
        callbacks=[StopAtTimeLimit(30, skip_steps=2, calibration_steps=10, clock=lambda: float(next(ticks)))])
    trainer.train()
    # 1 s per step and 30 s: calibrated at step 12 for 30 steps, refined at the end of epoch 1 (16 steps, a tick).
    assert 25 <= trainer.state.global_step <= 30 < 1000 * math.ceil(500 / 32)
    assert trainer.state.max_steps == trainer.state.global_step  # the fitted length, reached
    rate = {entry["step"]: entry["learning_rate"] for entry in trainer.state.log_history if "learning_rate" in entry}
    assert rate[12] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 11 / 16000)))  # the planned cosine
    assert rate[13] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 12 / 30)))  # refitted: 30 steps
    assert rate[trainer.state.global_step] < 0.02e-3  # and it ends near zero
