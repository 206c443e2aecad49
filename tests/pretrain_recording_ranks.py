"""`scripts/pretrain.py` that also records, per process, what the multi-process test checks (tests/test_training.py):

    torchrun --nproc_per_node 2 tests/pretrain_recording_ranks.py RECORD_DIR configs/pretrain_tiny.yaml ...

writes RECORD_DIR/rank_{R}_events.txt (the event ids of each training batch the process collated, one batch a line)
and RECORD_DIR/rank_{R}.safetensors (the process's weights when training ends); the run is otherwise the script's,
`modeling_polarbert.training.run_pretraining`.
"""

import dataclasses
import os
import sys
from pathlib import Path

from safetensors.torch import save_file
from transformers import TrainerCallback

from modeling_polarbert import training

RECORD_DIR = Path(sys.argv.pop(1))
RANK = int(os.environ.get("RANK", 0))


class RecordingCollator(training.MASKED_DOM.collator_class):
    def __call__(self, events):
        if not self.deterministic:  # the training collator, not the evaluation one
            with open(RECORD_DIR / f"rank_{RANK}_events.txt", "a") as file:
                file.write(" ".join(str(event_id) for event_id in events["event_id"]) + "\n")
        return super().__call__(events)


class SaveWeightsAtTrainEnd(TrainerCallback):
    def on_train_end(self, args, state, control, model=None, **kwargs):
        weights = {name: tensor.detach().clone().contiguous() for name, tensor in model.state_dict().items()}
        save_file(weights, RECORD_DIR / f"rank_{RANK}.safetensors")


class RecordingTrainer(training.PolarBertTrainer):
    def __init__(self, *args, callbacks=(), **kwargs):
        super().__init__(*args, callbacks=[*callbacks, SaveWeightsAtTrainEnd()], **kwargs)


if __name__ == "__main__":
    RECORD_DIR.mkdir(parents=True, exist_ok=True)
    # The pretraining head's entry of the registry (tasks.py), with the recording collator in it.
    training.MASKED_DOM = dataclasses.replace(training.MASKED_DOM, collator_class=RecordingCollator)
    training.PolarBertTrainer = RecordingTrainer
    training.run_pretraining()
