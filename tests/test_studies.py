"""The sample-efficiency study (modeling_polarbert.studies): its table, a task's study at a small size, its
simulated sets, its packaged YAML runs (the direction study as the quickstart runs it: tests/test_quickstart.py)."""

import json
import math
from pathlib import Path

import pytest

from modeling_polarbert.studies import results_table, yaml_run
from script_loading import load_script  # tests/ is on sys.path under pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_table_has_a_column_per_method_and_linefit_and_random():
    results = {"random": math.pi / 2, "rows": [
        {"labelled_events": 10_000, "pretrained": 1.2, "scratch": 1.5, "linefit": 1.3},
        {"labelled_events": 100_000, "pretrained": 1.1, "scratch": 1.4, "linefit": 1.3, "backbone": 1.0,
         "pretrained_track": 0.9, "scratch_track": 1.3, "backbone_track": 0.8, "linefit_track": 0.7}]}
    lines = results_table(results).splitlines()
    assert lines[0] == "| labelled events | pretrained | from scratch | shipped backbone | LineFit | random |"
    assert lines[1] == "|---|---|---|---|---|---|"
    assert lines[2] == "| 10,000 | 1.200 | 1.500 | - | 1.300 | 1.571 |"
    assert lines[3] == "| 100,000 | 1.100 | 1.400 | 1.000 | 1.300 | 1.571 |"
    assert lines[4] == "| tracks only | 0.900 | 1.300 | 0.800 | 0.700 | 1.571 |"
    for key in ("backbone", "backbone_track"):
        del results["rows"][1][key]
    assert "shipped backbone" not in results_table(results)


def test_task_study_at_a_small_size_shares_the_pretraining_and_reports_against_the_baseline(tmp_path):
    study = load_script("sample_efficiency")
    common = ["--out", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data"), "--pretrain-events", "400",
              "--labelled-sizes", "200", "--eval-events", "120", "--pretrain-args=--max_steps 3 --eval_events 50",
              "--finetune-args=--max_steps 3 --eval_strategy no --save_strategy no"]
    regression = study.main([*common, "--task", "regression", "--label-columns", "log10:energy"])
    pretraining = (tmp_path / "runs" / "pretrained" / "model.safetensors").stat().st_mtime_ns
    classification = study.main([*common, "--task", "classification", "--label-columns", "is_track"])
    # One pretraining serves both tasks; each task's runs, reports and results have their own names.
    assert (tmp_path / "runs" / "pretrained" / "model.safetensors").stat().st_mtime_ns == pretraining
    for stem, results in (("log10_energy", regression), ("is_track", classification)):
        for start in ("pretrained", "scratch"):
            assert (tmp_path / "runs" / f"{stem}_{start}_200" / "model.safetensors").is_file()
        assert json.loads((tmp_path / "runs" / f"results_{stem}.json").read_text()) == results
        assert (tmp_path / "runs" / f"sample_efficiency_{stem}.png").stat().st_size > 0
    # The figures are those evaluate wrote for each model, with the baseline beside them.
    energy = json.loads((tmp_path / "runs" / "report_log10_energy_pretrained_200" / "metrics.json").read_text())
    figures = regression["rows"][0]["figures"]["resolution log10:energy"]
    assert figures["pretrained"] == energy["regression"]["log10:energy"]["overall"]["model"]["resolution"]
    assert figures["baseline"] == energy["regression"]["log10:energy"]["overall"]["baseline"]["resolution"]
    track = json.loads((tmp_path / "runs" / "report_is_track_scratch_200" / "metrics.json").read_text())
    assert classification["rows"][0]["figures"]["roc_auc is_track"]["scratch"] == track["classification"]["model"]["roc_auc"]
    assert classification["rows"][0]["figures"]["roc_auc is_track"]["baseline"] == 0.5  # the majority class
    table = (tmp_path / "runs" / "results_is_track.md").read_text()
    assert table.startswith("| labelled events | figure | pretrained | from scratch | baseline |")


def test_each_size_is_fine_tuned_for_its_own_number_of_passes(tmp_path):
    study = load_script("sample_efficiency")
    common = ["--out", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data"), "--pretrain-events", "300",
              "--labelled-sizes", "64", "128", "--eval-events", "100", "--pretrain-args=--max_steps 2 --eval_events 50",
              "--finetune-args=--eval_strategy no --save_strategy no --per_device_train_batch_size 32"]
    with pytest.raises(SystemExit):  # one value per size, or the study would pair them silently
        study.main([*common, "--labelled-epochs", "3"])
    results = study.main([*common, "--labelled-epochs", "3", "1"])
    for size, passes, steps in ((64, 3, 6), (128, 1, 4)):
        state = json.loads((tmp_path / "runs" / f"scratch_{size}" / "trainer_state.json").read_text())
        assert (state["epoch"], state["global_step"]) == (passes, steps)
    assert [(row["labelled_events"], row["num_train_epochs"]) for row in results["rows"]] == [(64, 3), (128, 1)]
    # Resumed with another budget, the finished runs are refused rather than reported under it.
    with pytest.raises(ValueError, match="fine-tuned for 3 passes, not the 2 asked for"):
        study.main([*common, "--labelled-epochs", "2", "1"])
    assert study.main([*common, "--labelled-epochs", "3", "1"]) == results  # the same budget resumes


def test_a_simulated_set_of_another_size_is_refused_not_reused(tmp_path):
    from modeling_polarbert.studies import simulated_dataset

    first = simulated_dataset(tmp_path, "eval", 30, seed=3)
    assert simulated_dataset(tmp_path, "eval", 30, seed=3) == first  # resumed: the same folder
    with pytest.raises(ValueError, match="holds 30 events, not the 40 asked for"):
        simulated_dataset(tmp_path, "eval", 40, seed=3)


def test_the_study_reads_its_yaml_runs_from_the_package_not_from_the_folder_around_it():
    for name in ("pretrain_tiny.yaml", "finetune_tiny.yaml", "pretrain_paper.yaml", "finetune_paper.yaml"):
        path = Path(yaml_run(name))
        assert path.is_file() and path.parent == ROOT / "modeling_polarbert" / "configs", path
        assert path.read_text() == (ROOT / "configs" / name).read_text()  # the README's configs/ is the same file


def test_the_learning_curve_is_the_held_out_angle_after_each_pass_and_its_plot_is_written(tmp_path):
    from modeling_polarbert.studies import held_out_curve, plot_learning_curves

    run = tmp_path / "scratch_100"
    run.mkdir()
    history = [{"epoch": 0.5, "loss": 1.6, "step": 10},  # a training log line: not a held-out figure
               {"epoch": 1.0, "eval_loss": 1.50, "eval_mean_opening_angle": 1.52, "step": 20},
               {"epoch": 2.0, "eval_loss": 1.40, "eval_mean_opening_angle": 1.41, "step": 40},
               {"epoch": 2.0, "train_loss": 1.45, "step": 40}]
    (run / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    assert held_out_curve(run) == [(1.0, 1.52), (2.0, 1.41)]
    plot_learning_curves({"from scratch, 100 labels": held_out_curve(run)}, 1.256, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
