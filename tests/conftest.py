"""Fixtures shared by the test modules."""

import pytest

from modeling_polarbert.preparation import prepare_kaggle
from modeling_polarbert.simulation import simulate_kaggle_dir


@pytest.fixture(scope="session")
def simulated(tmp_path_factory):
    """A labelled Kaggle-layout directory of a few hundred simulated events and its prepared dataset."""
    root = tmp_path_factory.mktemp("simulated")
    simulate_kaggle_dir(root / "kaggle", n_events=500, seed=11, batch_size=200)
    prepare_kaggle(root / "kaggle", root / "prepared", progress=False)
    return root
