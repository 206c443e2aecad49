"""`PolarBertTrainer`: `transformers.Trainer` with length-grouped batches read from our Arrow fast path (in an order
that depends on (seed, epoch) alone), an evaluation collator of its own, the loss parts in the training log, our
model card, and the training arguments saved as JSON."""

from pathlib import Path

import numpy as np
import torch
from transformers import Trainer
from transformers.trainer_pt_utils import LengthGroupedSampler

from .hub import write_model_card
from .training_callbacks import StopAtTimeLimit


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """Trainer's length-grouped sampler, with its order a function of (seed, epoch) alone. Trainer calls
    `set_epoch` at every epoch, also when it resumes from a checkpoint, so a resumed run sees the batches of an
    uninterrupted one.

    The order is exactly that of transformers' `get_length_grouped_indices` (random permutation, mega-batches of
    up to 50 batches sorted by length, the longest batch first), computed with numpy: the Python sort there takes
    seconds per epoch for millions of events, time in which the GPU waits."""

    def __init__(self, batch_size: int, lengths, seed: int):
        super().__init__(batch_size, lengths=np.asarray(lengths, dtype=np.int64))
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator = torch.Generator().manual_seed(self.seed + epoch)

    def __iter__(self):
        lengths = self.lengths
        multiple = min(len(lengths) // (self.batch_size * 4), 50) or 1
        size = multiple * self.batch_size
        indices = torch.randperm(len(lengths), generator=self.generator).numpy()
        # A stable sort on the negated lengths orders ties as Python's sorted(..., reverse=True) does.
        megabatches = [part[np.argsort(-lengths[part], kind="stable")] for part in
                       (indices[start:start + size] for start in range(0, len(lengths), size))]
        longest = int(np.argmax([lengths[part[0]] for part in megabatches]))
        megabatches[0][0], megabatches[longest][0] = megabatches[longest][0], megabatches[0][0]
        return iter(np.concatenate(megabatches).tolist())


class PolarBertTrainer(Trainer):
    """`Trainer` with three additions:

    - length-grouped batches (training and evaluation) read their lengths from our Arrow fast-path dataset
      (`as_pulse_dataset`), because Trainer only knows how to read them from a `datasets.Dataset` column;
    - evaluation and prediction may use their own collator (`eval_data_collator`): a deterministic one selects and
      masks the same pulses of an event at every evaluation, so eval metrics are comparable between steps;
    - the training log carries the loss parts a PolarBERT output reports (masked-DOM CE, charge MSE).
    """

    LOSS_PARTS = ("masked_dom_loss", "charge_loss")

    def __init__(self, *args, eval_data_collator=None, training_data: str = "Not recorded.", **kwargs):
        super().__init__(*args, **kwargs)
        if getattr(self.args, "max_train_seconds", None) is not None:
            self.add_callback(StopAtTimeLimit(self.args.max_train_seconds))
        self.eval_data_collator = eval_data_collator
        self.training_data = training_data
        self._loss_part_sums = {}
        self._loss_part_steps = 0

    def save_model(self, output_dir=None, _internal_call=False):
        """Save as Trainer does (the final model and every checkpoint come through here), but the training
        arguments as JSON instead of the pickle Trainer writes (training_args.bin). The push that a user's call
        makes comes after the swap, so that no pickle reaches the Hub."""
        super().save_model(output_dir, _internal_call=True)
        pickled = Path(output_dir if output_dir is not None else self.args.output_dir) / "training_args.bin"
        if self.args.should_save and pickled.exists():  # Trainer calls save_model on every process; one writes
            pickled.unlink()
            pickled.with_name("training_args.json").write_text(self.args.to_json_string())
        if self.args.push_to_hub and not _internal_call:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)

    def create_model_card(self, *args, **kwargs):
        """Our card (README.md with Hub metadata and the last evaluation) instead of Trainer's generic one; also
        what `push_to_hub` uploads."""
        if not self.is_world_process_zero():
            return
        evaluations = [entry for entry in self.state.log_history if any(key.startswith("eval_") for key in entry)]
        metrics = {key: value for key, value in evaluations[-1].items() if key.startswith("eval_")} if evaluations else None
        write_model_card(
            self.args.output_dir, self.accelerator.unwrap_model(self.model), training_data=self.training_data,
            metrics=metrics, repo_id=self.args.hub_model_id, feature_extractor=self.processing_class,
        )

    def _with_eval_collator(self, build_dataloader, dataset):
        if self.eval_data_collator is None:
            return build_dataloader(dataset)
        train_collator, self.data_collator = self.data_collator, self.eval_data_collator
        try:
            return build_dataloader(dataset)
        finally:
            self.data_collator = train_collator

    def get_eval_dataloader(self, eval_dataset=None):
        return self._with_eval_collator(super().get_eval_dataloader, eval_dataset)

    def get_test_dataloader(self, test_dataset):
        return self._with_eval_collator(super().get_test_dataloader, test_dataset)

    def _length_grouped_sampler(self, dataset, batch_size: int):
        """Our sampler where Trainer would group by length and the dataset is the fast path; else None."""
        if self.args.train_sampling_strategy != "group_by_length" or not hasattr(dataset, "lengths"):
            return None
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return EpochSeededLengthGroupedSampler(batch_size, lengths=dataset.lengths, seed=seed)

    # Trainer has no public hook for its samplers: `get_train_dataloader` / `get_eval_dataloader` would have to be
    # re-written whole (accelerate's preparation, worker seeding) to change the sampler alone, so these two
    # private methods are overridden, each falling back to Trainer's own.
    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        sampler = self._length_grouped_sampler(dataset, self.args.train_batch_size * self.args.gradient_accumulation_steps)
        return sampler if sampler is not None else super()._get_train_sampler(train_dataset)

    def _get_eval_sampler(self, eval_dataset):
        sampler = self._length_grouped_sampler(eval_dataset, self.args.eval_batch_size)
        return sampler if sampler is not None else super()._get_eval_sampler(eval_dataset)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if model.training:
            for name in self.LOSS_PARTS:
                part = outputs.get(name) if isinstance(outputs, dict) else None
                if part is not None:
                    self._loss_part_sums[name] = self._loss_part_sums.get(name, 0.0) + part.detach().float()
            self._loss_part_steps += 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs, *args, **kwargs):
        if "loss" in logs and self._loss_part_steps:
            for name, total in self._loss_part_sums.items():
                logs[name] = round(float(total) / self._loss_part_steps, 4)
            self._loss_part_sums, self._loss_part_steps = {}, 0
        super().log(logs, *args, **kwargs)
