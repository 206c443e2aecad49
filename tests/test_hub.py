"""The model card that `hub.write_model_card` writes beside every saved model (what the Hub shows)."""

from pathlib import Path

import yaml

from modeling_polarbert import PolarBertConfig, PolarBertForDirection
from modeling_polarbert.hub import CITATION_BIBTEX, write_model_card

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
