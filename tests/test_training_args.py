"""The arguments of the training runs (modeling_polarbert.training_args): YAML + command line, the launch check,
and the model config that --config_overrides describes."""

from pathlib import Path

import pytest
from transformers import PretrainedConfig, TrainingArguments

from modeling_polarbert import PolarBertConfig, PolarBertFeatureExtractor
from modeling_polarbert.training_args import (
    DataArguments,
    ModelArguments,
    build_config,
    build_feature_extractor,
    check_launch,
    parse_arguments,
    parse_config_overrides,
)

ROOT = Path(__file__).resolve().parent.parent


def test_yaml_sets_defaults_and_the_command_line_overrides(tmp_path):
    model_args, data_args, training_args = parse_arguments(
        (ModelArguments, DataArguments, TrainingArguments),
        [str(ROOT / "configs/finetune_tiny.yaml"), "--learning_rate", "0.5", "--output_dir", str(tmp_path)],
    )
    assert training_args.learning_rate == 0.5  # overridden
    assert training_args.optim == "schedule_free_adamw"  # from the YAML file
    assert data_args.train_dataset == "data/quickstart/prepared_labelled"
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rat: 0.1\n")
    with pytest.raises(ValueError, match="unknown argument"):
        parse_arguments((ModelArguments, DataArguments, TrainingArguments), [str(bad)])


def test_accelerate_cpu_launch_of_several_processes_is_refused_not_run_alone(tmp_path):
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_simple_launcher_cmd_env

    def environment_of(*launch_args):
        args, _, _ = _validate_launch_command(launch_command_parser().parse_args([*launch_args, "script.py"]))
        return prepare_simple_launcher_cmd_env(args)[1]

    # What `accelerate launch --cpu --num_processes 2` hands its one process:
    with pytest.raises(ValueError, match="starts only one"):
        check_launch(environment_of("--cpu", "--num_processes", "2"))
    check_launch(environment_of("--cpu", "--num_processes", "1"))  # one process, as asked
    check_launch({"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "WORLD_SIZE": "2", "RANK": "1"})  # torchrun
    check_launch({"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "PMI_SIZE": "2"})  # mpirun


def test_config_overrides_read_yaml_scalars_and_none():
    assert parse_config_overrides("hidden_size=64, use_dom_positions=true,mask_ratio=0.5,event_time_reference="
                                  "charge_weighted_mean,pad_to_multiple_of=null") == {
        "hidden_size": 64, "use_dom_positions": True, "mask_ratio": 0.5,
        "event_time_reference": "charge_weighted_mean", "pad_to_multiple_of": None}
    assert parse_config_overrides(None) == parse_config_overrides("") == {}
    with pytest.raises(ValueError, match="expected key=value"):
        parse_config_overrides("hidden_size")


def test_a_fresh_config_is_built_from_the_overrides_so_it_checks_them_and_derives_the_head_sizes():
    config = build_config(ModelArguments(config_overrides="hidden_size=64,num_hidden_layers=2,num_attention_heads=4,"
                                         "use_dom_positions=true,event_time_reference=charge_weighted_mean"),
                          sparse_prediction=True)
    assert (config.hidden_size, config.direction_head_hidden_size, config.classifier_hidden_size) == (64, 256, 256)
    assert config.num_pulse_features == 4 and config.use_dom_positions and config.sparse_prediction
    with pytest.raises(ValueError, match="divisible"):
        build_config(ModelArguments(config_overrides="hidden_size=63"))
    # PretrainedConfig.update_from_string on a default config leaves the derived head sizes at the default width's.
    updated = PolarBertConfig()
    updated.update_from_string("hidden_size=64")
    assert updated.direction_head_hidden_size == 1024


def test_a_loaded_config_takes_overrides_of_none_fields_and_refuses_unknown_ones(tmp_path):
    PolarBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path)
    PolarBertFeatureExtractor(pad_to_multiple_of=8).save_pretrained(tmp_path)
    model_args = ModelArguments(model_name_or_path=str(tmp_path), config_overrides="event_time_reference="
                                "charge_weighted_mean,pad_to_multiple_of=null,check_inputs=false,classifier_dropout=0.1")
    extractor = build_feature_extractor(model_args)  # the folder's, with the overrides that name its settings
    assert (extractor.event_time_reference, extractor.pad_to_multiple_of) == ("charge_weighted_mean", None)
    config = build_config(model_args, extractor)
    assert (config.num_pulse_features, config.check_inputs, config.classifier_dropout) == (4, False, 0.1)
    assert config.hidden_size == 32
    with pytest.raises(ValueError, match="unknown PolarBertConfig field"):
        build_config(ModelArguments(model_name_or_path=str(tmp_path), config_overrides="hiden_size=64"))
    # What PretrainedConfig.update_from_string would do with the same text: refuse a field that is None today.
    with pytest.raises(TypeError):
        PretrainedConfig.update_from_string(PolarBertConfig.from_pretrained(tmp_path), "classifier_dropout=0.1")
