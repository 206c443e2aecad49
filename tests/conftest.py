"""Fixtures shared by the test modules."""

import pytest

from modeling_polarbert.preparation import prepare_kaggle
from modeling_polarbert.simulation import simulate_kaggle_dir

from kaggle_files import edge_case_events, random_batches, write_kaggle_dir  # tests/ is on sys.path


@pytest.fixture(scope="session")
def simulated(tmp_path_factory):
    """A labelled Kaggle-layout directory of a few hundred simulated events and its prepared dataset."""
    root = tmp_path_factory.mktemp("simulated")
    simulate_kaggle_dir(root / "kaggle", n_events=500, seed=11, batch_size=200)
    prepare_kaggle(root / "kaggle", root / "prepared", progress=False)
    return root


@pytest.fixture(scope="module")
def saved_dataset(tmp_path_factory):
    """A prepared dataset of 180 random events and the edge cases of kaggle_files (one pulse, all auxiliary, ...),
    for the fast path and the collators; one per test module."""
    tmp = tmp_path_factory.mktemp("saved_dataset")
    batches = random_batches(n_batches=3, events_per_batch=60, seed=7)
    batches[1] = edge_case_events(first_event_id=10_001) + batches[1]
    root = write_kaggle_dir(tmp / "kaggle", batches)
    return prepare_kaggle(root, tmp / "prepared", progress=False)
