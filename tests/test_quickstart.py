"""The quickstart (modeling_polarbert.quickstart) the way a user gets it: the wheel built from this tree, installed
into a throwaway venv, run as `polarbert quickstart --small` from a folder outside the repository with a frozen
shipped backbone; `scripts/quickstart.py` is its door; how it finds a backbone."""

import json
import math
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModel

from modeling_polarbert import PolarBertConfig, PolarBertForMaskedDOM, quickstart
from modeling_polarbert.hub import save_backbone
from script_loading import load_script  # tests/ is on sys.path under pytest

ROOT = Path(__file__).resolve().parent.parent
# What `pip install .` builds the wheel from: the packaging metadata, the README it names, the package.
WHEEL_SOURCES = ("pyproject.toml", "README.md", "modeling_polarbert")


def build_wheel(folder: Path) -> Path:
    """The wheel of this tree, built offline from a copy (an in-tree build would leave build/ and *.egg-info in the
    working tree)."""
    source = folder / "source"
    source.mkdir(parents=True)
    for name in WHEEL_SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(folder / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = (folder / "dist").glob("polarbert-*.whl")
    return wheel


def venv_with_the_wheel(folder: Path, wheel: Path) -> Path:
    """A fresh venv holding the wheel, whose dependencies are this environment's installed ones: a .pth line puts
    these site-packages after the venv's own, without running their .pth files, so that this environment's editable
    install of the repository stays out of it. Returns the venv's bin folder."""
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (own,) = (venv / "lib").glob("python3*/site-packages")
    (own / "project_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "--no-index", "-q", str(wheel)], check=True, capture_output=True, timeout=300)
    return venv / "bin"


def frozen_test_backbone(folder: Path) -> Path:
    """A small saved backbone, as checkpoints/ ships one (bf16 weights, card)."""
    torch.manual_seed(0)
    config = PolarBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    PolarBertForMaskedDOM(config).save_pretrained(folder / "pretrained")
    return save_backbone(folder / "pretrained", folder / "polarbert-tiny-sim", training_data="a test backbone")


@pytest.mark.wheel
def test_the_installed_wheel_runs_the_quickstart_outside_the_repository_with_a_frozen_shipped_backbone(tmp_path):
    bin_folder = venv_with_the_wheel(tmp_path, build_wheel(tmp_path / "wheel"))
    backbone = frozen_test_backbone(tmp_path / "backbones")
    work = tmp_path / "elsewhere"  # no configs/, no checkpoints/, no repository on the path
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    where = subprocess.run([bin_folder / "python", "-c", "import modeling_polarbert; print(modeling_polarbert.__file__)"],
                           capture_output=True, text=True, cwd=work, env=env, check=True)
    assert Path(where.stdout.strip()).is_relative_to(bin_folder.parent), where.stdout  # the wheel, not the tree
    result = subprocess.run(
        [bin_folder / "polarbert", "quickstart", "--small", "--out", "runs", "--data-dir", "data",
         "--backbone", str(backbone), "--freeze-backbone"],
        capture_output=True, text=True, cwd=work, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    check_the_quickstart_outputs(work / "runs", work / "data", backbone, result.stdout)


def check_the_quickstart_outputs(runs: Path, data: Path, backbone: Path, stdout: str) -> None:
    results = json.loads((runs / "results.json").read_text())
    row = results["rows"][0]
    for name in ("pretrained", "scratch", "backbone", "linefit"):
        assert 0 < row[name] < math.pi, name
    assert row["linefit"] < 1.4  # LineFit on the simulation is far from random
    assert results["backbone"] == str(backbone)
    assert "| labelled events | pretrained | from scratch | shipped backbone | LineFit | random |" in stdout
    assert f"Fine-tuned from the shipped backbone ({backbone})" in " ".join(stdout.split())  # wrapped
    # Frozen: the fine-tuned model carries the shipped (bf16) backbone unchanged, in float32, and a trained head.
    tuned = load_file(runs / "backbone_300" / "model.safetensors")
    for name, tensor in load_file(backbone / "model.safetensors").items():
        assert torch.equal(tuned[f"polarbert.{name}"], tensor.float()), name
    assert tuned["direction_head.0.weight"].dtype == torch.float32
    assert (runs / "sample_efficiency.png").stat().st_size > 0
    model = runs / "pretrained_300"
    assert type(AutoModel.from_pretrained(model)).__name__ == "PolarBertModel"
    assert "library_name: transformers" in (model / "README.md").read_text()
    submission = pd.read_csv(runs / "submission.csv")
    meta = pd.read_parquet(data / "kaggle_test" / "test_meta.parquet")
    assert submission["event_id"].tolist() == meta["event_id"].tolist()
    # The tiny configs (and the README's commands after the main job) train on the datasets the quickstart leaves.
    for config in ("pretrain_tiny.yaml", "finetune_tiny.yaml"):
        for value in yaml.safe_load((ROOT / "configs" / config).read_text()).values():
            if str(value).startswith("data/quickstart/"):
                folder = data / Path(value).relative_to("data/quickstart")
                assert (folder / "dataset_info.json").is_file(), value


def test_the_repository_configs_folder_is_the_packaged_one():
    # One home for the YAML runs: the README's `configs/...` paths lead to the files the wheel ships.
    assert (ROOT / "configs").resolve() == (ROOT / "modeling_polarbert" / "configs").resolve()
    assert sorted(path.name for path in (ROOT / "modeling_polarbert" / "configs").glob("*.yaml")) == [
        "finetune_paper.yaml", "finetune_tiny.yaml", "pretrain_paper.yaml", "pretrain_tiny.yaml"]


def test_the_script_is_a_door_to_the_package():
    assert load_script("quickstart").main is quickstart.main


def test_quickstart_says_in_one_line_that_no_backbone_is_shipped(tmp_path, capsys):
    assert quickstart.shipped_backbone(tmp_path / "missing") is None
    assert capsys.readouterr().out.strip().splitlines() == [
        f"No pretrained backbone at {tmp_path / 'missing'}: fine-tuning from it is skipped."]
    (tmp_path / "backbone").mkdir()
    (tmp_path / "backbone" / "config.json").write_text("{}")
    assert quickstart.shipped_backbone(tmp_path / "backbone") == tmp_path / "backbone"
