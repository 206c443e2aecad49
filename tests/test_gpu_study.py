"""The GPU study (modeling_polarbert.gpu_study; scripts/gpu_study.py is its door) at its tiny CPU size: every phase runs, and what it writes is complete and consistent (the
GPU run itself is the same code at another size)."""

import json
import math

import datasets
import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import AutoFeatureExtractor, AutoModel

import modeling_polarbert  # noqa: F401
from modeling_polarbert import PolarBertModel, gpu_study
from script_loading import load_script  # tests/ is on sys.path under pytest

MIB_16 = 16 * 2**20


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu_study")
    results = gpu_study.main(["--tiny", "--out", str(root / "out"), "--data-dir", str(root / "data"),
                              "--collect", str(root / "collect"), "--workers", "2"])
    return root, results


def test_the_table_has_both_models_at_both_sizes_and_linefit_on_the_same_events(study):
    root, results = study
    assert [row["labelled_events"] for row in results["rows"]] == [100, 300]
    for row in results["rows"]:
        for name in ("pretrained", "scratch", "linefit"):
            assert 0 < row[name] < math.pi, name
        assert set(row["targets"]) == {"gain_vs_scratch", "gain_vs_linefit", "met"}
        assert row["targets"]["gain_vs_scratch"] == pytest.approx(1 - row["pretrained"] / row["scratch"], abs=1e-4)
    assert results["rows"][0]["linefit"] == results["rows"][1]["linefit"] < 1.4  # one held-out set for all
    assert results["random"] == pytest.approx(math.pi / 2) and results["eval_events"] == 200
    table = (root / "out" / "results.md").read_text()
    assert "| labelled events | pretrained | from scratch | LineFit | random |" in table
    for row in results["rows"]:
        assert (f"| {row['labelled_events']:,} | {row['pretrained']:.3f} | {row['scratch']:.3f} | "
                f"{row['linefit']:.3f} | 1.571 |") in table
    assert f"**{results['pretraining']['masked_dom_cross_entropy']:.3f}** (the paper: 2.08" in table
    assert json.loads((root / "out" / "results.json").read_text()) == json.loads(json.dumps(results))


def test_every_phase_is_timed_against_its_budget_and_pretraining_ran_to_its_time_limit(study):
    root, results = study
    phases = [phase["phase"] for phase in results["timings"]]
    assert phases[:2] == ["simulate + prepare", "pretrain"] and phases[-1] == "backbone, plot, results"
    assert sum(phase.startswith("fine-tune") for phase in phases) == 4
    assert sum(phase.startswith("evaluate") for phase in phases) == 4
    assert all(phase["seconds"] > 0 for phase in results["timings"])
    assert results["total_seconds"] >= sum(phase["seconds"] for phase in results["timings"]) - 1
    pretraining = results["pretraining"]
    assert pretraining["steps"] > 0 and math.isfinite(pretraining["masked_dom_cross_entropy"])
    args = json.loads((root / "out" / "pretrained" / "training_args.json").read_text())
    assert args["max_train_seconds"] == 3 and args["num_train_epochs"] == 1000  # time, not epochs, is the limit
    assert pretraining["epochs"] < 1000


def test_the_simulated_sets_are_separate_and_their_shards_combine_with_unique_ids(study):
    root, results = study
    data = root / "data"
    pretrain = datasets.load_from_disk(str(data / "prepared_pretrain_1000"))  # 2 shards, combined
    labelled = datasets.load_from_disk(str(data / "prepared_labelled_000"))  # 1 shard
    assert len(pretrain) == results["pretrain_events"] == 1000 and len(labelled) == 300
    ids = [np.asarray(dataset["event_id"]) for dataset in (pretrain, labelled)]
    assert len(np.unique(np.concatenate(ids))) == 1300
    assert not list(data.glob("kaggle_*")), "the parquet files of the shards are left behind"


def test_the_backbone_is_bf16_loads_with_automodel_and_its_card_says_what_it_was_trained_on(study):
    root, results = study
    folder = root / "collect" / "polarbert-tiny-sim"
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        dtypes = {name: weights.get_tensor(name).dtype for name in weights.keys()}
    # The recipe's DOM coordinates are a float32 buffer; every weight is bf16.
    assert dtypes.pop("embeddings.dom_positions") == torch.float32
    assert set(dtypes.values()) == {torch.bfloat16}
    backbone = AutoModel.from_pretrained(folder)
    assert type(backbone).__name__ == "PolarBertModel"
    assert AutoFeatureExtractor.from_pretrained(folder).event_time_reference == "charge_weighted_mean"  # the recipe
    pretrained = PolarBertModel.from_pretrained(root / "out" / "pretrained")
    for name, tensor in pretrained.state_dict().items():
        assert torch.equal(backbone.state_dict()[name], tensor.to(torch.bfloat16)), name
    card = (folder / "README.md").read_text()
    assert "**not on IceCube data**" in card and "this project's own simulator" in card
    assert f"**{results['pretraining']['masked_dom_cross_entropy']:.3f}**, against 2.08" in card
    assert f"{results['pretraining']['steps']:,} optimizer steps" in card


def test_the_collected_folder_holds_what_matters_within_the_transfer_limits(study):
    root, _ = study
    files = sorted(str(path.relative_to(root / "collect")) for path in (root / "collect").rglob("*") if path.is_file())
    assert files == ["gpu_study.log", "polarbert-tiny-sim/README.md", "polarbert-tiny-sim/config.json",
                     "polarbert-tiny-sim/model.safetensors", "polarbert-tiny-sim/preprocessor_config.json",
                     "results.json", "results.md", "sample_efficiency.png"]  # 8: what the device tool returns
    assert all((root / "collect" / name).stat().st_size <= MIB_16 for name in files)
    log = (root / "collect" / "gpu_study.log").read_text()
    assert "simulate + prepare" in log and ("time limit of 3 s reached" in log or "steps to fit 3 s" in log)


def test_collect_refuses_more_than_eight_files(tmp_path):
    out, backbone = tmp_path / "out", tmp_path / "out" / "backbone"
    backbone.mkdir(parents=True)
    for name in ("results.md", "results.json", "sample_efficiency.png", "gpu_study.log"):
        (out / name).write_text("x")
    for k in range(5):
        (backbone / f"model-{k:05d}-of-00005.safetensors").write_text("x")
    with pytest.raises(ValueError, match="more than 8 files"):
        gpu_study.collect(out, backbone, tmp_path / "collect")
    assert not (tmp_path / "collect").exists()


def test_a_spent_simulation_budget_drops_pretraining_shards_but_not_the_sets_the_table_needs(tmp_path):
    sizes = {**gpu_study.TINY, "shard_events": 250}  # labelled 2 shards, validation and held-out 1, pretraining 4
    sets = gpu_study.simulate_sets(tmp_path, sizes, workers=1, budget=0)
    lengths = {name: len(datasets.load_from_disk(str(folder))) for name, folder in sets.items()}
    assert lengths == {"pretrain": 250, "labelled": 300, "validation": 100, "held_out": 200}  # one pretraining shard


def test_the_script_is_a_door_to_the_package():
    assert load_script("gpu_study").main is gpu_study.main
