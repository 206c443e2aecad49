"""Training (modeling_polarbert.training): the runs end to end at a size of seconds, resume, Hub folder, bad input,
several processes, a time limit."""

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, TrainingArguments

from modeling_polarbert import PolarBertConfig, PolarBertForMaskedDOM, PolarBertModel
from modeling_polarbert.collators import PolarBertPretrainingCollator
from modeling_polarbert.loading import load_prepared_dataset
from modeling_polarbert.numpy_directions import angles_to_unit_vector, opening_angle
from modeling_polarbert.prediction import load_direction_model, predict_directions
from modeling_polarbert.preparation import prepare_kaggle
from modeling_polarbert.pulse_dataset import as_pulse_dataset
from modeling_polarbert.simulation import simulate_kaggle_dir
from modeling_polarbert.task_metrics import compute_pretraining_metrics, preprocess_pretraining_logits
from modeling_polarbert.trainer import PolarBertTrainer
from modeling_polarbert.training import run_finetuning, run_pretraining

ROOT = Path(__file__).resolve().parent.parent

TINY = ["--config_overrides", "hidden_size=32,num_hidden_layers=1,num_attention_heads=2,intermediate_size=64",
        "--per_device_train_batch_size", "32", "--per_device_eval_batch_size", "64", "--save_strategy", "no",
        "--eval_strategy", "no"]

def run_pretrain(output_dir, dataset, *extra):
    return run_pretraining([str(ROOT / "configs/pretrain_tiny.yaml"), "--train_dataset", str(dataset),
                          "--output_dir", str(output_dir), "--eval_events", "100", *TINY, *extra])


def test_pretraining_lowers_the_masked_dom_loss(simulated, tmp_path):
    metrics = run_pretrain(tmp_path / "run", simulated / "prepared", "--max_steps", "30", "--learning_rate", "3e-3",
                           "--logging_steps", "5")
    history = json.loads((tmp_path / "run" / "trainer_state.json").read_text())["log_history"]
    logged = [entry for entry in history if "masked_dom_loss" in entry]
    assert len(logged) == 6
    # The charge term falls within a few steps (the paper: "quickly reaches nearly zero"); the DOM term starts at
    # the uniform guess log(5160) and is logged beside it.
    assert logged[-1]["loss"] < 0.8 * logged[0]["loss"]
    assert logged[-1]["charge_loss"] < 0.5 * logged[0]["charge_loss"]
    assert abs(logged[0]["masked_dom_loss"] - math.log(5160)) < 0.3
    assert {"eval_masked_dom_cross_entropy", "eval_masked_dom_accuracy", "eval_charge_mse"} <= metrics.keys()
    assert metrics["eval_masked_dom_cross_entropy"] < math.log(5160) + 0.2
    assert type(AutoModel.from_pretrained(tmp_path / "run")).__name__ == "PolarBertModel"


def test_packed_pretraining_from_the_training_config_trains_as_the_padded_run(simulated, tmp_path):
    common = ["--max_steps", "3", "--learning_rate", "3e-3", "--logging_steps", "1", "--max_train_events", "200"]
    run_pretrain(tmp_path / "padded", simulated / "prepared", *common)
    run_pretrain(tmp_path / "packed", simulated / "prepared", *common, "--pack_length", "256")
    # The same events and draws, laid out without padding: the same losses and (to float noise) the same weights.
    losses = {}
    for name in ("padded", "packed"):
        history = json.loads((tmp_path / name / "trainer_state.json").read_text())["log_history"]
        losses[name] = [entry["loss"] for entry in history if "loss" in entry]
    assert len(losses["packed"]) == 3 and np.allclose(losses["packed"], losses["padded"], atol=2e-4), losses
    padded, packed = load_file(tmp_path / "padded" / "model.safetensors"), load_file(tmp_path / "packed" / "model.safetensors")
    for name in padded:
        assert torch.allclose(packed[name], padded[name], atol=1e-4), name


def test_resume_from_checkpoint_gives_the_uninterrupted_result(simulated, tmp_path):
    common = ["--max_steps", "6", "--save_strategy", "steps", "--save_steps", "3", "--save_total_limit", "5",
              "--learning_rate", "3e-3"]
    run_pretrain(tmp_path / "whole", simulated / "prepared", *common)
    # A run stopped after step 3 is a folder holding checkpoint-3; resume it.
    shutil.copytree(tmp_path / "whole" / "checkpoint-3", tmp_path / "resumed" / "checkpoint-3")
    run_pretrain(tmp_path / "resumed", simulated / "prepared", *common,
                 "--resume_from_checkpoint", str(tmp_path / "resumed" / "checkpoint-3"))
    whole = load_file(tmp_path / "whole" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "model.safetensors")
    assert whole.keys() == resumed.keys()
    for name in whole:
        assert torch.allclose(whole[name], resumed[name], atol=1e-6), name
    interrupted = load_file(tmp_path / "whole" / "checkpoint-3" / "model.safetensors")
    # every checkpoint carries the feature extractor, with its code
    checkpoint_files = set(os.listdir(tmp_path / "whole" / "checkpoint-3"))
    assert {"preprocessor_config.json", "feature_extraction_polarbert.py"} <= checkpoint_files
    assert not all(torch.equal(interrupted[name], whole[name]) for name in whole)  # steps 4-6 did change it


def test_finetune_from_pretrained_and_from_scratch(simulated, tmp_path):
    run_pretrain(tmp_path / "pretrained", simulated / "prepared", "--max_steps", "2")
    args = [str(ROOT / "configs/finetune_tiny.yaml"), "--train_dataset", str(simulated / "prepared"),
            "--eval_dataset", str(simulated / "prepared"), "--max_train_events", "100", "--max_eval_events", "50",
            "--model_name_or_path", str(tmp_path / "pretrained"), "--max_steps", "3", "--save_strategy", "no",
            "--eval_strategy", "no"]
    metrics = run_finetuning([*args, "--output_dir", str(tmp_path / "from_pretrained")])
    assert 0 < metrics["eval_mean_opening_angle"] < math.pi
    run_finetuning([*args, "--output_dir", str(tmp_path / "from_scratch"), "--from_scratch", "true"])
    pretrained = load_file(tmp_path / "pretrained" / "model.safetensors")
    # Fine-tuned weights moved away from the pretrained ones by few steps; the scratch twin started elsewhere.
    name = "polarbert.embeddings.feature_embeddings.weight"  # the one embedding every input option has
    start = pretrained[name]
    tuned = load_file(tmp_path / "from_pretrained" / "model.safetensors")[name]
    scratch = load_file(tmp_path / "from_scratch" / "model.safetensors")[name]
    assert (tuned - start).abs().mean() < (scratch - start).abs().mean()
    card = (tmp_path / "from_pretrained" / "README.md").read_text()
    assert card.startswith("---") and "library_name: transformers" in card and "eval_mean_opening_angle" in card
    # The card's snippet to directions: no Auto class for it, so the class by name from the remote code.
    assert 'get_class_from_dynamic_module("modeling_polarbert.PolarBertForDirection"' in card
    # A pretraining card shows the backbone, and says it has no trained head.
    pretrained_card = (tmp_path / "pretrained" / "README.md").read_text()
    assert "it has no trained head" in pretrained_card
    assert "AutoModelForSequenceClassification" not in pretrained_card

    run_finetuning([*args, "--output_dir", str(tmp_path / "frozen"), "--freeze_backbone", "true"])
    frozen = load_file(tmp_path / "frozen" / "model.safetensors")
    for name, tensor in frozen.items():
        if name.startswith("polarbert."):
            assert torch.equal(tensor, pretrained[name]), name
    assert not torch.equal(frozen["direction_head.0.weight"],
                           load_file(tmp_path / "from_pretrained" / "model.safetensors")["direction_head.0.weight"])


def test_finetune_regression_and_classification_from_the_same_pretrained_folder(simulated, tmp_path):
    import datasets

    run_pretrain(tmp_path / "pretrained", simulated / "prepared", "--max_steps", "2")
    args = [str(ROOT / "configs/finetune_tiny.yaml"), "--train_dataset", str(simulated / "prepared"),
            "--eval_dataset", str(simulated / "prepared"), "--max_train_events", "400", "--max_eval_events", "100",
            "--model_name_or_path", str(tmp_path / "pretrained"), "--max_steps", "3", "--save_strategy", "no",
            "--eval_strategy", "no"]
    energy = run_finetuning([*args, "--output_dir", str(tmp_path / "energy"), "--task", "regression",
                            "--label_columns", "log10:energy,vertex_z"])
    assert {"eval_log10_energy_resolution", "eval_log10_energy_bias", "eval_vertex_z_resolution"} <= energy.keys()
    config = json.loads((tmp_path / "energy" / "config.json").read_text())
    assert config["architectures"] == ["PolarBertForSequenceClassification"]
    assert config["problem_type"] == "regression" and config["label_columns"] == ["log10:energy", "vertex_z"]
    assert config["id2label"] == {"0": "log10:energy", "1": "vertex_z"}
    # The standardisation is that of the training events (the first 400).
    train = datasets.load_from_disk(str(simulated / "prepared")).select(range(400))
    np.testing.assert_allclose(config["target_mean"], [np.mean(np.log10(train["energy"])), np.mean(train["vertex_z"])])
    np.testing.assert_allclose(config["target_std"], [np.std(np.log10(train["energy"])), np.std(train["vertex_z"])])
    pretrained = load_file(tmp_path / "pretrained" / "model.safetensors")
    tuned = load_file(tmp_path / "energy" / "model.safetensors")
    name = "polarbert.embeddings.feature_embeddings.weight"
    assert (tuned[name] - pretrained[name]).abs().max() < 0.05  # started from the pretrained backbone

    track = run_finetuning([*args, "--output_dir", str(tmp_path / "track"), "--task", "classification",
                           "--label_columns", "is_track"])
    assert 0 <= track["eval_accuracy"] <= 1 and 0 <= track["eval_roc_auc"] <= 1
    config = json.loads((tmp_path / "track" / "config.json").read_text())
    assert config["problem_type"] == "single_label_classification"
    assert config["id2label"] == {"0": "False", "1": "True"} and config["label2id"] == {"False": 0, "True": 1}
    with pytest.raises(ValueError, match="needs --label_columns"):
        run_finetuning([*args, "--output_dir", str(tmp_path / "x"), "--task", "regression"])
    with pytest.raises(ValueError, match="--task must be one of"):
        run_finetuning([*args, "--output_dir", str(tmp_path / "x"), "--task", "energy"])


def test_finetune_checks_the_label_columns_before_training(simulated, tmp_path):
    import datasets

    dataset = datasets.load_from_disk(str(simulated / "prepared"))
    first_below = int(np.asarray(dataset["event_id"])[np.flatnonzero(np.asarray(dataset["vertex_z"]) <= 0)[0]])
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/finetune.py"), str(ROOT / "configs/finetune_tiny.yaml"),
         "--train_dataset", str(simulated / "prepared"), "--eval_dataset", str(simulated / "prepared"),
         "--task", "regression", "--label_columns", "log10:energy,log10:vertex_z", "--output_dir", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"column 'vertex_z' must be positive for 'log10:vertex_z'; event_id {first_below} has" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written
    with pytest.raises(ValueError, match=r"no column 'flavour' for the labels"):
        run_finetuning([str(ROOT / "configs/finetune_tiny.yaml"), "--train_dataset", str(simulated / "prepared"),
                       "--eval_dataset", str(simulated / "prepared"), "--task", "classification",
                       "--label_columns", "flavour", "--output_dir", str(tmp_path / "out")])


def test_scripts_reject_bad_input_with_a_clear_error(simulated, tmp_path):
    # A folder that is not a PolarBERT model.
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/finetune.py"), str(ROOT / "configs/finetune_tiny.yaml"),
         "--model_name_or_path", str(tmp_path / "bert"), "--train_dataset", str(simulated / "prepared"),
         "--eval_dataset", str(simulated / "prepared"), "--output_dir", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 2 and "is not a PolarBERT model" in result.stderr
    # A dataset without labels given to fine-tuning.
    simulate_kaggle_dir(tmp_path / "test_split", n_events=50, seed=3, split="test")
    prepare_kaggle(tmp_path / "test_split", tmp_path / "unlabelled", split="test", progress=False)
    with pytest.raises(ValueError, match="no azimuth/zenith labels"):
        run_finetuning([str(ROOT / "configs/finetune_tiny.yaml"), "--train_dataset", str(tmp_path / "unlabelled"),
                       "--output_dir", str(tmp_path / "out")])
    with pytest.raises(FileNotFoundError, match="not a dataset"):
        run_finetuning([str(ROOT / "configs/finetune_tiny.yaml"), "--train_dataset", str(tmp_path / "nowhere"),
                       "--output_dir", str(tmp_path / "out")])


REMOTE_LOAD = textwrap.dedent(
    """
    import sys
    sys.modules["modeling_polarbert"] = None  # a clean process: the installed package cannot be imported
    from transformers import AutoModel
    from transformers.dynamic_module_utils import get_class_from_dynamic_module
    backbone = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
    direction = get_class_from_dynamic_module("modeling_polarbert.PolarBertForDirection", sys.argv[1])
    direction = direction.from_pretrained(sys.argv[1])
    print(type(backbone).__name__, type(direction).__name__)
    """
)


def test_push_to_hub_uploads_a_complete_loadable_folder(simulated, tmp_path, monkeypatch):
    import transformers.trainer

    uploaded = {}

    class OfflineHub:
        def create_repo(self, repo_id, **kwargs):
            return SimpleNamespace(repo_id=repo_id)

        def upload_folder(self, repo_id, folder_path, ignore_patterns=(), **kwargs):
            uploaded["repo_id"] = repo_id
            shutil.copytree(folder_path, tmp_path / "uploaded", ignore=shutil.ignore_patterns(*ignore_patterns),
                            dirs_exist_ok=True)

    monkeypatch.setattr(transformers.trainer, "hf_api", lambda: OfflineHub())
    run_finetuning([str(ROOT / "configs/finetune_tiny.yaml"), "--train_dataset", str(simulated / "prepared"),
                   "--eval_dataset", str(simulated / "prepared"), "--max_eval_events", "50", "--max_steps", "2",
                   "--output_dir", str(tmp_path / "run"), "--push_to_hub", "true",
                   "--hub_model_id", "icecube/polarbert-test", *TINY])
    assert uploaded["repo_id"] == "icecube/polarbert-test"
    folder = tmp_path / "uploaded"
    names = set(os.listdir(folder))
    assert {"config.json", "model.safetensors", "modeling_polarbert.py", "configuration_polarbert.py",
            "README.md", "preprocessor_config.json", "feature_extraction_polarbert.py"} <= names
    assert not any(name.endswith((".bin", ".pt", ".pth")) for name in names)
    config = json.loads((folder / "config.json").read_text())
    assert {"AutoConfig", "AutoModel", "AutoModelForSequenceClassification"} <= config["auto_map"].keys()
    card = (folder / "README.md").read_text()
    assert "library_name: transformers" in card and "icecube/polarbert-test" in card
    (tmp_path / "load.py").write_text(REMOTE_LOAD)
    result = subprocess.run([sys.executable, str(tmp_path / "load.py"), str(folder)], cwd=tmp_path, timeout=300,
                            capture_output=True, text=True,
                            env=dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules")))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["PolarBertModel", "PolarBertForDirection"]


# ---- several processes (gloo on CPU): torchrun and accelerate launch ------------------------------------------

TWO_PROCESS_TRAINING = ["--eval_events", "100", "--max_train_events", "384", "--per_device_train_batch_size", "16",
                        "--per_device_eval_batch_size", "64", "--save_strategy", "steps", "--save_steps", "6",
                        "--save_total_limit", "5", "--eval_strategy", "no", "--logging_steps", "3",
                        "--ddp_backend", "gloo", "--config_overrides", TINY[1]]


def launch_two_processes(launcher: list[str], record_dir, dataset, output_dir, *extra):
    """tests/pretrain_recording_ranks.py (scripts/pretrain.py plus per-rank records) in 2 processes."""
    command = [*launcher, str(ROOT / "tests/pretrain_recording_ranks.py"), str(record_dir),
               str(ROOT / "configs/pretrain_tiny.yaml"), "--train_dataset", str(dataset),
               "--output_dir", str(output_dir), *TWO_PROCESS_TRAINING, *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def recorded_batches(record_dir, rank: int) -> list[list[int]]:
    lines = (record_dir / f"rank_{rank}_events.txt").read_text().splitlines()
    return [[int(event_id) for event_id in line.split()] for line in lines]


@pytest.fixture(scope="module")
def two_process_runs(simulated, tmp_path_factory):
    """One epoch (384 events, 12 steps of 16 events per process) with `torchrun --nproc_per_node 2`, then the
    same run resumed from its step-6 checkpoint with `accelerate launch --multi_gpu --num_processes 2`."""
    root = tmp_path_factory.mktemp("two_processes")
    launch_two_processes([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"],
                         root / "records", simulated / "prepared", root / "run")
    shutil.copytree(root / "run" / "checkpoint-6", root / "resumed" / "checkpoint-6")
    launch_two_processes([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                          "--main_process_port", "0"],
                         root / "resumed_records", simulated / "prepared", root / "resumed",
                         "--resume_from_checkpoint", str(root / "resumed" / "checkpoint-6"))
    return root


def test_two_processes_see_disjoint_events_that_make_up_the_epoch(simulated, two_process_runs):
    import datasets

    batches = [recorded_batches(two_process_runs / "records", rank) for rank in (0, 1)]
    assert [len(rank_batches) for rank_batches in batches] == [12, 12]
    events = [[event_id for batch in rank_batches for event_id in batch] for rank_batches in batches]
    assert not set(events[0]) & set(events[1])
    assert sorted(events[0] + events[1]) == sorted(datasets.load_from_disk(str(simulated / "prepared"))["event_id"][:384])


def test_two_processes_end_with_identical_weights_and_save_them(two_process_runs):
    rank_0 = load_file(two_process_runs / "records" / "rank_0.safetensors")
    rank_1 = load_file(two_process_runs / "records" / "rank_1.safetensors")
    saved = load_file(two_process_runs / "run" / "model.safetensors")
    assert rank_0.keys() == rank_1.keys() == saved.keys()
    for name in saved:
        assert torch.equal(rank_0[name], rank_1[name]) and torch.equal(rank_0[name], saved[name]), name
    assert type(AutoModel.from_pretrained(two_process_runs / "run")).__name__ == "PolarBertModel"
    assert (two_process_runs / "run" / "training_args.json").is_file()  # written once, by the main process
    assert (two_process_runs / "run" / "README.md").read_text().startswith("---")


def test_two_process_checkpoint_loads_and_resumes_in_two_processes_to_the_uninterrupted_result(two_process_runs):
    checkpoint = PolarBertForMaskedDOM.from_pretrained(two_process_runs / "run" / "checkpoint-6")
    assert checkpoint.num_parameters() > 0
    # The resumed processes collate exactly the batches 7-12 of the uninterrupted ones, and end where they ended.
    for rank in (0, 1):
        uninterrupted = recorded_batches(two_process_runs / "records", rank)
        assert recorded_batches(two_process_runs / "resumed_records", rank) == uninterrupted[6:]
    whole = load_file(two_process_runs / "run" / "model.safetensors")
    resumed = load_file(two_process_runs / "resumed" / "model.safetensors")
    for name in whole:
        assert torch.allclose(whole[name], resumed[name], atol=1e-6), name
    start = load_file(two_process_runs / "run" / "checkpoint-6" / "model.safetensors")
    assert not all(torch.equal(start[name], whole[name]) for name in whole)  # steps 7-12 did change it


def test_two_process_evaluation_gives_the_metrics_of_one_process(simulated, two_process_runs, tmp_path):
    import datasets

    # The 100 held-out events in batches of 64 split unevenly between the processes (64 and 36; accelerate fills
    # the short batch up with repeated events): the gathered metrics must still be those of one process over the
    # 100 events. (Not eval_loss: Trainer averages batch losses, and the filled-up batch has another loss.)
    two_processes = json.loads((two_process_runs / "run" / "eval_results.json").read_text())
    model = PolarBertForMaskedDOM.from_pretrained(two_process_runs / "run")
    evaluation = datasets.load_from_disk(str(simulated / "prepared")).select(range(400, 500))
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, per_device_eval_batch_size=64,
                             train_sampling_strategy="group_by_length", label_names=["labels", "total_charge"],
                             remove_unused_columns=False, report_to="none")
    trainer = PolarBertTrainer(model=model, args=args, eval_dataset=as_pulse_dataset(evaluation),
                               data_collator=PolarBertPretrainingCollator(model.config, deterministic=True),
                               compute_metrics=compute_pretraining_metrics,
                               preprocess_logits_for_metrics=preprocess_pretraining_logits)
    one_process = trainer.evaluate()
    for name in ("eval_masked_dom_cross_entropy", "eval_masked_dom_accuracy", "eval_charge_mse"):
        assert two_processes[name] == pytest.approx(one_process[name], rel=1e-5), name


def test_a_pretraining_run_with_a_time_limit_stops_and_saves(simulated, tmp_path):
    run_pretrain(tmp_path / "run", simulated / "prepared", "--num_train_epochs", "10000", "--max_train_seconds", "2")
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    assert 0 < state["epoch"] < 10000
    assert json.loads((tmp_path / "run" / "training_args.json").read_text())["max_train_seconds"] == 2
    assert type(AutoModel.from_pretrained(tmp_path / "run")).__name__ == "PolarBertModel"


def test_a_schedule_free_model_is_saved_with_the_weights_it_is_evaluated_with(simulated, tmp_path):
    # Without evaluations during training, schedule-free AdamW is still in train mode at the end; the saved model
    # must be the averaged weights that the final evaluation uses.
    metrics = run_finetuning([
        str(ROOT / "configs/finetune_tiny.yaml"), "--train_dataset", str(simulated / "prepared"),
        "--eval_dataset", str(simulated / "prepared"), "--max_train_events", "200", "--max_eval_events", "100",
        "--output_dir", str(tmp_path / "run"), "--max_steps", "8", "--learning_rate", "3e-2", *TINY])
    model = load_direction_model(str(tmp_path / "run"), device="cpu")
    dataset = load_prepared_dataset(str(simulated / "prepared")).select(range(100))
    direction = predict_directions(model, dataset, batch_size=64, progress=False)["direction"]
    truth = angles_to_unit_vector(np.asarray(dataset["azimuth"]), np.asarray(dataset["zenith"]))
    assert float(np.mean(opening_angle(truth, direction))) == pytest.approx(metrics["eval_mean_opening_angle"], abs=1e-5)


def test_finetuning_from_a_bf16_backbone_trains_float32_and_a_frozen_backbone_stays_as_shipped(simulated, tmp_path):
    config = PolarBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    backbone = PolarBertModel(config).to(torch.bfloat16)
    backbone.save_pretrained(tmp_path / "backbone")
    run_finetuning([
        str(ROOT / "configs/finetune_tiny.yaml"), "--model_name_or_path", str(tmp_path / "backbone"),
        "--train_dataset", str(simulated / "prepared"), "--eval_dataset", str(simulated / "prepared"),
        "--max_train_events", "100", "--max_eval_events", "50", "--output_dir", str(tmp_path / "run"),
        "--max_steps", "3", "--freeze_backbone", "true", "--save_strategy", "no", "--eval_strategy", "no"])
    tuned = load_file(tmp_path / "run" / "model.safetensors")
    shipped = load_file(tmp_path / "backbone" / "model.safetensors")
    assert {tensor.dtype for tensor in tuned.values()} == {torch.float32}
    for name, tensor in shipped.items():
        assert torch.equal(tuned[f"polarbert.{name}"], tensor.float()), name
