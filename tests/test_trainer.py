"""`PolarBertTrainer` (modeling_polarbert.trainer): its length-grouped order, and what it saves."""

import json

import numpy as np
import pytest
import torch
from transformers import TrainingArguments
from transformers.trainer_pt_utils import get_length_grouped_indices

from modeling_polarbert import PolarBertConfig, PolarBertForMaskedDOM
from modeling_polarbert.collators import PolarBertPretrainingCollator
from modeling_polarbert.loading import load_prepared_dataset
from modeling_polarbert.pulse_dataset import as_pulse_dataset
from modeling_polarbert.trainer import EpochSeededLengthGroupedSampler, PolarBertTrainer


@pytest.mark.parametrize("n_events,batch_size,seed", [(100_003, 512, 0), (37, 8, 1), (5, 64, 2)])
def test_length_grouped_order_is_transformers_order(n_events, batch_size, seed):
    lengths = np.random.default_rng(seed).integers(1, 50, n_events)  # many ties
    sampler = EpochSeededLengthGroupedSampler(batch_size, lengths=lengths, seed=seed)
    sampler.set_epoch(3)
    expected = get_length_grouped_indices(lengths.tolist(), batch_size, generator=torch.Generator().manual_seed(seed + 3))
    assert list(sampler) == expected and len(sampler) == n_events


def test_the_training_arguments_are_saved_as_json_not_as_a_pickle_in_the_model_and_every_checkpoint(simulated, tmp_path):
    config = PolarBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=2, save_steps=1, per_device_train_batch_size=16,
                             use_cpu=True, report_to="none", disable_tqdm=True, remove_unused_columns=False)
    trainer = PolarBertTrainer(
        model=PolarBertForMaskedDOM(config), args=args, data_collator=PolarBertPretrainingCollator(config, seed=0),
        train_dataset=as_pulse_dataset(load_prepared_dataset(str(simulated / "prepared")).select(range(64))))
    trainer.train()
    trainer.save_model()
    for folder in (tmp_path, tmp_path / "checkpoint-1", tmp_path / "checkpoint-2"):
        assert not (folder / "training_args.bin").exists(), folder
        assert json.loads((folder / "training_args.json").read_text())["max_steps"] == 2, folder
