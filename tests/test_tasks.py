"""Tests of modeling_polarbert.tasks, the registry of heads: every part of the package finds a head through it, and
what a head declares there is what the Auto classes and the saved folders say."""

import pytest
from transformers import AutoModelForMaskedLM, AutoModelForPreTraining, AutoModelForSequenceClassification

from modeling_polarbert import PolarBertConfig, PolarBertModel
from modeling_polarbert.modeling_polarbert import AUTO_MAP
from modeling_polarbert.tasks import DIRECTION, HEADS, MASKED_DOM, SEQUENCE, TASKS, evaluated_head, head_for_task, \
    head_of_folder

TINY = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)


def test_the_fine_tuning_tasks_are_those_of_the_heads_in_order():
    assert TASKS == ("direction", "regression", "classification")
    assert [head_for_task(task) for task in TASKS] == [DIRECTION, SEQUENCE, SEQUENCE]
    with pytest.raises(ValueError, match=r"--task must be one of \('direction', 'regression', 'classification'\), "
                                         "got 'energy'"):
        head_for_task("energy")


def test_every_head_names_its_own_class_and_collator_once():
    assert len({head.model_class for head in HEADS}) == len(HEADS)
    assert len({head.collator_class for head in HEADS}) == len(HEADS)
    assert [head.reads_label_columns for head in HEADS] == [False, False, True]
    # A fine-tuned head is loaded, predicted with and evaluated through its entry; pretraining is none of these.
    assert all(head.load and head.predict and head.evaluate for head in (DIRECTION, SEQUENCE))
    assert MASKED_DOM.load is MASKED_DOM.predict is MASKED_DOM.evaluate is None


def test_the_auto_map_that_folders_carry_is_the_registry_s():
    # The modeling file keeps its own copy (it ships alone as remote code and may import nothing of the package).
    expected = {"AutoConfig": "configuration_polarbert.PolarBertConfig",
                "AutoModel": f"modeling_polarbert.{PolarBertModel.__name__}"}
    for head in HEADS:
        expected.update({auto.__name__: f"modeling_polarbert.{head.model_class.__name__}" for auto in head.auto_classes})
    assert AUTO_MAP == expected


def test_importing_the_package_registers_each_head_with_its_auto_classes():
    assert AutoModelForMaskedLM._model_mapping[PolarBertConfig] is MASKED_DOM.model_class
    assert AutoModelForPreTraining._model_mapping[PolarBertConfig] is MASKED_DOM.model_class
    assert AutoModelForSequenceClassification._model_mapping[PolarBertConfig] is SEQUENCE.model_class
    assert DIRECTION.model_class._auto_class is None and SEQUENCE.model_class._auto_class == \
        "AutoModelForSequenceClassification"


@pytest.mark.parametrize("head", HEADS, ids=[head.model_class.__name__ for head in HEADS])
def test_a_saved_folder_is_found_to_hold_its_head(head, tmp_path):
    fields = dict(problem_type="regression", label_columns=["log10:energy"], id2label={0: "log10:energy"},
                  label2id={"log10:energy": 0}, target_mean=[3.0], target_std=[1.0]) if head is SEQUENCE else {}
    head.model_class(PolarBertConfig(**TINY, **fields)).save_pretrained(tmp_path / "model")
    assert head_of_folder(str(tmp_path / "model")) is head
    # A pretraining folder is evaluated as the default task's model, whose loader says to fine-tune one first.
    assert evaluated_head(str(tmp_path / "model")) is (DIRECTION if head is MASKED_DOM else head)


def test_a_backbone_folder_holds_no_head(tmp_path):
    PolarBertModel(PolarBertConfig(**TINY)).save_pretrained(tmp_path / "backbone")
    assert head_of_folder(str(tmp_path / "backbone")) is None
    assert evaluated_head(str(tmp_path / "backbone")) is DIRECTION
