"""The sample-efficiency study (modeling_polarbert.studies) as the quickstart runs it, at a small size."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml
from transformers import AutoModel

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_pipeline_at_a_small_size(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/quickstart.py"), "--small", "--out", str(tmp_path / "runs"),
         "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "runs" / "results.json").read_text())
    row = results["rows"][0]
    for name in ("pretrained", "scratch", "linefit"):
        assert 0 < row[name] < math.pi, name
    assert row["linefit"] < 1.4  # LineFit on the simulation is far from random
    assert "| labelled events | pretrained | from scratch | LineFit | random |" in result.stdout
    assert (tmp_path / "runs" / "sample_efficiency.png").stat().st_size > 0
    model = tmp_path / "runs" / "pretrained_300"
    assert type(AutoModel.from_pretrained(model)).__name__ == "PolarBertModel"
    assert "library_name: transformers" in (model / "README.md").read_text()
    submission = pd.read_csv(tmp_path / "runs" / "submission.csv")
    meta = pd.read_parquet(tmp_path / "data" / "kaggle_test" / "test_meta.parquet")
    assert submission["event_id"].tolist() == meta["event_id"].tolist()
    # The tiny configs (and the README's commands after the main job) train on the datasets the quickstart leaves.
    for config in ("pretrain_tiny.yaml", "finetune_tiny.yaml"):
        for value in yaml.safe_load((ROOT / "configs" / config).read_text()).values():
            if str(value).startswith("data/quickstart/"):
                folder = tmp_path / "data" / Path(value).relative_to("data/quickstart")
                assert (folder / "dataset_info.json").is_file(), value
