"""Training (modeling_polarbert.training): the runs end to end at a size of seconds, resume, Hub folder, bad input."""

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
from transformers import AutoModel, EvalPrediction, TrainingArguments

from modeling_polarbert.preparation import prepare_kaggle
from modeling_polarbert.simulation import simulate_kaggle_dir
from modeling_polarbert.training import (
    DataArguments,
    ModelArguments,
    StopOnNonFiniteLoss,
    compute_pretraining_metrics,
    parse_arguments,
    preprocess_pretraining_logits,
    run_finetuning,
    run_pretraining,
)

ROOT = Path(__file__).resolve().parent.parent

TINY = ["--config_overrides", "hidden_size=32,num_hidden_layers=1,num_attention_heads=2,intermediate_size=64",
        "--per_device_train_batch_size", "32", "--per_device_eval_batch_size", "64", "--save_strategy", "no",
        "--eval_strategy", "no"]

def run_pretrain(output_dir, dataset, *extra):
    return run_pretraining([str(ROOT / "configs/pretrain_tiny.yaml"), "--train_dataset", str(dataset),
                          "--output_dir", str(output_dir), "--eval_events", "100", *TINY, *extra])


def test_yaml_sets_defaults_and_the_command_line_overrides(tmp_path):
    model_args, data_args, training_args = parse_arguments(
        (ModelArguments, DataArguments, TrainingArguments),
        [str(ROOT / "configs/finetune_tiny.yaml"), "--learning_rate", "0.5", "--output_dir", str(tmp_path)],
    )
    assert training_args.learning_rate == 0.5  # overridden
    assert training_args.optim == "schedule_free_adamw"  # from the YAML file
    assert data_args.train_dataset == "data/quickstart/prepared/train"
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rat: 0.1\n")
    with pytest.raises(ValueError, match="unknown argument"):
        parse_arguments((ModelArguments, DataArguments, TrainingArguments), [str(bad)])


def test_pretraining_metrics_count_masked_pulses_only():
    labels = torch.tensor([[3, -100, 1], [-100, 2, -100]])
    logits = torch.full((2, 3, 5), -10.0)
    logits[0, 0, 3] = 10.0  # right
    logits[0, 2, 4] = 10.0  # wrong (label 1)
    logits[1, 1, 2] = 10.0  # right
    logits[1, 0, 0] = 10.0  # unmasked: must not count
    charge = torch.tensor([1.0, 2.0])
    cross_entropy, hits, charge_prediction = preprocess_pretraining_logits(
        (logits, charge), (labels, torch.tensor([1.5, 2.0]))
    )
    metrics = compute_pretraining_metrics(EvalPrediction(
        predictions=(cross_entropy.numpy(), hits.numpy(), charge_prediction.numpy()),
        label_ids=(labels.numpy(), np.array([1.5, 2.0])),
    ))
    assert metrics["masked_dom_accuracy"] == pytest.approx(2 / 3)
    assert metrics["charge_mse"] == pytest.approx(0.125)
    expected = torch.nn.functional.cross_entropy(logits[labels != -100], labels[labels != -100])
    assert metrics["masked_dom_cross_entropy"] == pytest.approx(expected.item(), rel=1e-5)


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
    start = pretrained["polarbert.embeddings.dom_embeddings.weight"]
    tuned = load_file(tmp_path / "from_pretrained" / "model.safetensors")["polarbert.embeddings.dom_embeddings.weight"]
    scratch = load_file(tmp_path / "from_scratch" / "model.safetensors")["polarbert.embeddings.dom_embeddings.weight"]
    assert (tuned - start).abs().mean() < (scratch - start).abs().mean()
    card = (tmp_path / "from_pretrained" / "README.md").read_text()
    assert card.startswith("---") and "library_name: transformers" in card and "eval_mean_opening_angle" in card

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
    name = "polarbert.embeddings.dom_embeddings.weight"
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


def test_a_non_finite_loss_stops_the_run():
    state = SimpleNamespace(global_step=17)
    callback = StopOnNonFiniteLoss()
    callback.on_log(SimpleNamespace(output_dir="x"), state, None, logs={"loss": 1.5})
    with pytest.raises(FloatingPointError, match="step 17"):
        callback.on_log(SimpleNamespace(output_dir="x"), state, None, logs={"loss": float("nan")})


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
            "README.md"} <= names
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
