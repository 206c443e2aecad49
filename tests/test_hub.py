"""modeling_polarbert.hub: the model card that `write_model_card` writes beside every saved model (what the Hub
shows), and a pretrained backbone exported to ship (`save_backbone`)."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open
from transformers import AutoFeatureExtractor, AutoModel

from modeling_polarbert import PolarBertConfig, PolarBertForDirection, PolarBertForMaskedDOM
from modeling_polarbert.hub import CITATION_BIBTEX, MAX_SHIPPED_FILE_BYTES, save_backbone, write_model_card

ROOT = Path(__file__).resolve().parent.parent
AUTHORS = "Timiryasov, Inar and Tastet, Jean-Loup and Ruchayskiy, Oleg"
TITLE = "PolarBERT: A Foundation Model for IceCube"


def test_card_cites_the_paper_by_its_authors_title_and_workshop(tmp_path):
    model = PolarBertForDirection(PolarBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                  intermediate_size=64))
    card = write_model_card(tmp_path, model, metrics={"eval_mean_opening_angle": 1.2345}).read_text()
    front_matter = yaml.safe_load(card.split("---")[1])
    assert front_matter["library_name"] == "transformers"
    assert "Hallin" not in card
    prose = " ".join(card.split())
    assert f'Timiryasov, Tastet and Ruchayskiy, "{TITLE}"' in prose
    assert "Machine Learning and the Physical Sciences" in prose
    assert f"```bibtex\n{CITATION_BIBTEX}\n```" in card
    assert "| eval_mean_opening_angle | 1.2345 |" in card


def test_citation_entry_names_the_authors_title_workshop_and_year_only():
    assert CITATION_BIBTEX.startswith("@inproceedings{")
    assert f"author    = {{{AUTHORS}}}" in CITATION_BIBTEX
    assert "title     = {{PolarBERT}: A Foundation Model for {IceCube}}" in CITATION_BIBTEX
    assert "booktitle = {Machine Learning and the Physical Sciences Workshop, NeurIPS 2024}" in CITATION_BIBTEX
    assert "year      = {2024}" in CITATION_BIBTEX
    fields = [line.split("=")[0].strip() for line in CITATION_BIBTEX.splitlines()[1:-1]]
    assert fields == ["title", "author", "booktitle", "year"]  # no invented DOI, arXiv number or URL


def test_readme_and_released_model_card_carry_the_same_citation_entry():
    for name in ("README.md", "model_card.md"):
        assert f"```bibtex\n{CITATION_BIBTEX}\n```" in (ROOT / name).read_text(), name


# ---- save_backbone ---------------------------------------------------------------------------------------

TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


@pytest.fixture
def pretrained(tmp_path):
    torch.manual_seed(0)
    model = PolarBertForMaskedDOM(PolarBertConfig(**TINY))
    model.save_pretrained(tmp_path / "pretrained")
    return tmp_path / "pretrained", model


def _dtypes(path):
    with safe_open(str(path), "pt") as weights:
        return {weights.get_tensor(name).dtype for name in weights.keys()}


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_a_saved_backbone_is_half_precision_loads_with_automodel_and_keeps_the_weights(pretrained, tmp_path, dtype):
    folder, model = pretrained
    out = save_backbone(folder, tmp_path / "backbone", training_data="Pretrained on the simulator, not IceCube data.",
                        metrics={"eval_masked_dom_cross_entropy": 4.25}, dtype=dtype, repo_id="checkpoints/test-sim")
    assert _dtypes(out / "model.safetensors") == {getattr(torch, dtype)}
    assert all(path.stat().st_size <= MAX_SHIPPED_FILE_BYTES for path in out.iterdir())
    assert json.loads((out / "config.json").read_text())["dtype"] == dtype
    loaded = AutoModel.from_pretrained(out)
    assert type(loaded).__name__ == "PolarBertModel" and loaded.dtype == getattr(torch, dtype)
    for name, tensor in model.polarbert.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor.to(getattr(torch, dtype))), name
    extractor = AutoFeatureExtractor.from_pretrained(out)  # the run's, as saved (AutoModel checked the pair)
    assert type(extractor).__name__ == "PolarBertFeatureExtractor"
    settings = {key: value for key, value in extractor.to_dict().items() if key != "auto_map"}
    assert settings == type(extractor).for_model(model.config).to_dict()  # the pretraining folder had none
    card = (out / "README.md").read_text()
    assert "not IceCube data" in card and "| eval_masked_dom_cross_entropy | 4.2500 |" in card
    assert "checkpoints/test-sim" in card and "fine-tune it for directions first" in " ".join(card.split())


def test_a_backbone_larger_than_the_file_limit_is_sharded_below_it_or_refused(pretrained, tmp_path):
    folder, _ = pretrained  # 183 kB in bf16, of which the DOM embedding is 165 kB
    out = save_backbone(folder, tmp_path / "backbone", training_data="x", max_file_bytes=170_000)
    weights = sorted(path.name for path in out.glob("*.safetensors"))
    assert len(weights) > 1 and (out / "model.safetensors.index.json").is_file()
    assert all(path.stat().st_size <= 170_000 for path in out.iterdir())
    assert type(AutoModel.from_pretrained(out)).__name__ == "PolarBertModel"
    with pytest.raises(ValueError, match="larger than 100,000 bytes"):  # one tensor alone is over the limit
        save_backbone(folder, tmp_path / "too_small", training_data="x", max_file_bytes=100_000)
    with pytest.raises(ValueError, match="bfloat16"):
        save_backbone(folder, tmp_path / "other", training_data="x", dtype="int8")


def test_buffers_such_as_the_dom_positions_stay_float32(tmp_path):
    model = PolarBertForMaskedDOM(PolarBertConfig(**TINY, use_dom_positions=True))
    model.save_pretrained(tmp_path / "pretrained")
    out = save_backbone(tmp_path / "pretrained", tmp_path / "backbone", training_data="x")
    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        positions = weights.get_tensor("embeddings.dom_positions")
        others = {weights.get_tensor(name).dtype for name in weights.keys() if name != "embeddings.dom_positions"}
    assert positions.dtype == torch.float32 and others == {torch.bfloat16}
    assert torch.equal(positions, model.polarbert.embeddings.dom_positions)  # to the millimetre, not rounded


SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints" / "polarbert-tiny-sim"


def test_the_shipped_cpu_backbone_loads_from_its_folder_alone_with_its_feature_extractor():
    model = AutoModel.from_pretrained(SHIPPED)
    assert type(model).__name__ == "PolarBertModel"
    assert model.config.event_position_reference == "charge_weighted_mean" and model.config.use_dom_positions
    assert not model.config.use_dom_embeddings and model.get_input_embeddings() is None  # the tiny configs' choice
    assert model.embeddings.position_embeddings.weight.std() > 0.04  # a fresh one is N(0, 0.02): trained weights
    extractor = AutoFeatureExtractor.from_pretrained(SHIPPED)  # AutoModel checked the pair at its door
    assert extractor.model_settings() == {name: getattr(model.config, name) for name in extractor.model_setting_names}
    assert (extractor.event_time_reference, extractor.max_pulses) == ("charge_weighted_mean", 127)
    assert not hasattr(model.config, "event_time_reference")  # config.json holds the architecture only
    card = (SHIPPED / "README.md").read_text()
    assert "NOT on IceCube data" in card and "3.764" in card
    assert all(path.stat().st_size < 4 * 2**20 for path in SHIPPED.iterdir())  # a few MB: float32 is lossless
    for code in ("configuration_polarbert.py", "modeling_polarbert.py", "feature_extraction_polarbert.py"):
        # The remote code shipped beside the weights is the package's own.
        package = Path(__file__).resolve().parent.parent / "modeling_polarbert" / code
        assert (SHIPPED / code).read_text() == package.read_text(), code
