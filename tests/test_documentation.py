"""README.md, model_card.md and docs/*.md: every file, script, config, `polarbert` subcommand and option their
commands name exists; no reference points outside the repository; the paper is cited by its authors; and the
README's commands after the main job run as written (at a smaller size, on data made here)."""

import argparse
import json
import os
import re
import shlex
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
import yaml
from script_loading import load_script  # tests/ is on sys.path under pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", ROOT / "model_card.md", *sorted((ROOT / "docs").glob("*.md"))]
# A path into the repository, not a pattern of paths (`tests/test_<module>.py`, `{split}/...`).
REPOSITORY_PATH = re.compile(r"(?<![\w./-])((?:scripts|configs|docs|tests|modeling_polarbert|\.ci)/[\w./-]*\w)(?![\w<{*])")
PLACEHOLDER_FLAGS = {"--key"}  # `[--key value ...]`: any option
LAUNCHERS = ("python", "polarbert", "accelerate", "torchrun", "bash")


def fenced_blocks(text: str, language: str = "bash") -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def commands_in(text: str) -> list[str]:
    """The shell commands of a document: lines of its bash blocks (continuations joined, comments dropped) and
    inline code spans that start with a launcher, each split at `&&` and `;`."""
    lines = []
    for block in fenced_blocks(text):
        lines += [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    lines += [span.replace("\\|", "|") for span in re.findall(r"`([^`\n]+)`", prose)
              if span.split() and (span.split()[0].rsplit("/", 1)[-1] in LAUNCHERS or span.startswith("taskset"))]
    commands = []
    for line in lines:
        line = re.sub(r"(^|\s)#.*$", "", line)
        commands += [part.strip() for part in re.split(r"&&|;", line) if part.strip()]
    return commands


def split_command(command: str) -> list[str]:
    """Shell words without the brackets that mark optional parts (`[--split train|test]`)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    return [word.strip("[]") for word in words if word.strip("[]")]


def flags(words: list[str]) -> set[str]:
    """The options among the words (a quoted '--a 1' is one word: a value, not an option)."""
    return {word.split("=")[0] for word in words if re.fullmatch(r"--[A-Za-z][\w-]*(=\S*)?", word)}


def all_commands() -> list[tuple[str, str]]:
    return [(document.name, command) for document in DOCUMENTS for command in commands_in(document.read_text())]


class _Parser(Exception):
    pass


def _raise_parser(parser, *args, **kwargs):
    raise _Parser(parser)


def script_options(script: Path) -> set[str]:
    """The options a script's argument parser knows (pretrain/finetune: their HfArgumentParser)."""
    if script.name in ("pretrain.py", "finetune.py"):
        from transformers import HfArgumentParser

        from modeling_polarbert.training_args import ARGUMENT_TYPES

        parser = HfArgumentParser(ARGUMENT_TYPES)
    else:  # build the script's argparse parser by calling its main() up to parse_args
        module = load_script(script.stem)  # scripts/<stem>.py: the token matched scripts/[\w.-]+\.py
        with mock.patch.object(argparse.ArgumentParser, "parse_args", autospec=True, side_effect=_raise_parser):
            with pytest.raises(_Parser) as raised:
                module.main()
        parser = raised.value.args[0]
    return {option for action in parser._actions for option in action.option_strings}


def cli_subcommands() -> dict[str, set[str]]:
    from modeling_polarbert.cli import build_parser

    (subcommands,) = [action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)]
    return {name: {option for action in parser._actions for option in action.option_strings}
            for name, parser in subcommands.choices.items()}


def launcher_options(tokens: list[str], script_index: int) -> tuple[str, set[str]] | None:
    """(launcher, the options it knows) when `accelerate launch` or `torchrun` starts the script."""
    if "torchrun" in tokens[:script_index]:
        from torch.distributed.run import get_args_parser

        return "torchrun", {option for action in get_args_parser()._actions for option in action.option_strings}
    if "accelerate" in tokens[:script_index]:
        from accelerate.commands.launch import launch_command_parser

        return "accelerate", {option for action in launch_command_parser()._actions for option in action.option_strings}
    return None


def test_every_repository_path_the_documents_name_exists():
    missing = [(document.name, path) for document in DOCUMENTS
               for path in REPOSITORY_PATH.findall(document.read_text()) if not (ROOT / path).exists()]
    assert not missing


def test_every_command_names_existing_scripts_configs_and_options():
    subcommands = cli_subcommands()
    options_of_script = {}
    problems, checked = [], 0
    for document, command in all_commands():
        tokens = split_command(command)
        for index, token in enumerate(tokens):
            if re.fullmatch(r"configs/[\w.-]+\.ya?ml", token) and not (ROOT / token).is_file():
                problems.append((document, command, f"no {token}"))
            if re.fullmatch(r"scripts/[\w.-]+\.(py|sh)", token):
                checked += 1
                script = ROOT / token
                if not script.is_file():
                    problems.append((document, command, f"no {token}"))
                    continue
                if script.suffix == ".py":
                    if token not in options_of_script:
                        options_of_script[token] = script_options(script)
                    unknown = flags(tokens[index + 1:]) - options_of_script[token] - PLACEHOLDER_FLAGS
                    problems += [(document, command, f"{token} has no {flag}") for flag in sorted(unknown)]
                launcher = launcher_options(tokens, index)
                if launcher:
                    unknown = flags(tokens[:index]) - launcher[1]
                    problems += [(document, command, f"{launcher[0]} has no {flag}") for flag in sorted(unknown)]
                break
            is_cli = token == "polarbert" or (token == "modeling_polarbert" and tokens[index - 1] == "-m")
            if is_cli and index + 1 < len(tokens) and re.fullmatch(r"[a-z]+", tokens[index + 1]):
                checked += 1
                name = tokens[index + 1]
                if name not in subcommands:
                    problems.append((document, command, f"polarbert has no subcommand {name}"))
                    break
                unknown = flags(tokens[index + 2:]) - subcommands[name]
                problems += [(document, command, f"polarbert {name} has no {flag}") for flag in sorted(unknown)]
                break
    assert checked > 30  # the documents' commands were found at all
    assert not problems


def test_every_config_parses_into_the_training_arguments():
    from transformers import TrainingArguments

    from modeling_polarbert.training_args import DataArguments, ModelArguments, parse_arguments

    configs = sorted((ROOT / "configs").glob("*.yaml"))
    assert len(configs) >= 4
    for config in configs:
        overrides = ["--bf16", "false", "--optim", "adamw_torch"]  # the paper's GPU settings, parsed on a CPU
        parse_arguments((ModelArguments, DataArguments, TrainingArguments), [str(config), *overrides])


# Text that points at what a newcomer does not have: the project's tracker and files outside the repository.
OUTSIDE_REFERENCES = re.compile(
    r"\.\./shared|shared/papers|/work/|ANCHORS\.md|KAGGLE_FORMAT\.md|\b(?:the|this|that) (?:[\w-]+ )?issue\b|"
    r"\bissue(?:'s| \d+)", flags=re.I)
# Files whose job is to name the wrong citation or those references (to check they are gone).
CHECKERS = {"test_documentation.py", "test_hub.py"}


def project_text_files() -> list[Path]:
    # reference/: the git-ignored copy of another project's code that the GPU benchmark compares against
    skip = {".git", ".venv", "runs", "data", "build", "dist", "__pycache__", ".pytest_cache", "reference"}
    files = []
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in skip and not name.endswith(".egg-info")]
        files += [Path(folder) / name for name in names
                  if name.endswith((".md", ".py", ".yaml", ".sh", ".toml", ".txt")) and name not in CHECKERS]
    return files


def test_no_reference_points_outside_the_repository():
    found = [(str(path.relative_to(ROOT)), match.group(0)) for path in project_text_files()
             for match in OUTSIDE_REFERENCES.finditer(path.read_text())]
    assert not found


def test_the_paper_is_cited_by_its_authors_everywhere():
    assert not [str(path.relative_to(ROOT)) for path in project_text_files() if "Hallin" in path.read_text()]
    for document in ("README.md", "model_card.md"):
        text = " ".join((ROOT / document).read_text().split())
        assert "Inar Timiryasov, Jean-Loup Tastet and Oleg Ruchayskiy" in text, document
        assert '"PolarBERT: A Foundation Model for IceCube"' in text, document
    for module in ("modeling_polarbert.py", "configuration_polarbert.py"):
        assert "Timiryasov, Tastet and Ruchayskiy" in (ROOT / "modeling_polarbert" / module).read_text(), module


# ---- the README's commands after the main job, run as written ----------------------------------------------

# What the main job leaves in data/quickstart/ (tests/test_training.py checks that the quickstart writes these).
MAIN_JOB_DATA = {"prepared_pretrain": ("train", 240), "prepared_labelled": ("train", 120),
                 "prepared_eval": ("train", 60), "kaggle_test": ("test", 40)}
SMALLER = {"pretrain.py": ["--max_steps", "2", "--eval_events", "40"], "finetune.py": ["--max_steps", "2"]}


def test_the_commands_after_the_main_job_read_only_what_it_leaves():
    named = set(re.findall(r"data/quickstart/(\w+)", " ".join(after_the_main_job_block())))
    for config in ("pretrain_tiny.yaml", "finetune_tiny.yaml"):
        named |= set(re.findall(r"data/quickstart/(\w+)", (ROOT / "configs" / config).read_text()))
    assert named == set(MAIN_JOB_DATA)


def after_the_main_job_block() -> list[str]:
    (block,) = [block for block in fenced_blocks((ROOT / "README.md").read_text())
                if block.startswith("python scripts/pretrain.py configs/pretrain_tiny.yaml\n")]
    return [line for line in block.splitlines() if line.strip()]


@pytest.fixture
def main_job_outputs(tmp_path, monkeypatch):
    """A working directory like the repository's after the main job: configs/, and data/quickstart/ at a small
    size."""
    from modeling_polarbert.preparation import prepare_kaggle
    from modeling_polarbert.simulation import simulate_kaggle_dir

    (tmp_path / "configs").symlink_to(ROOT / "configs")
    data = tmp_path / "data" / "quickstart"
    for seed, (name, (split, events)) in enumerate(MAIN_JOB_DATA.items()):
        kaggle_dir = data / name.replace("prepared_", "kaggle_")
        simulate_kaggle_dir(kaggle_dir, n_events=events, seed=seed, split=split)
        if name.startswith("prepared_"):
            prepare_kaggle(kaggle_dir, data / name, split=split, progress=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_commands_after_the_main_job_run_as_written(main_job_outputs):
    from modeling_polarbert.cli import main as polarbert
    from modeling_polarbert.training import run_finetuning, run_pretraining

    # The two scripts are nothing but these calls.
    scripts = {"scripts/pretrain.py": run_pretraining, "scripts/finetune.py": run_finetuning}
    for script, run in scripts.items():
        assert f"{run.__name__}()" in (ROOT / script).read_text(), script
    lines = after_the_main_job_block()
    assert len(lines) == 4
    for line in lines:
        tokens = shlex.split(line)
        if tokens[0] == "python":
            scripts[tokens[1]]([*tokens[2:], *SMALLER[Path(tokens[1]).name]])
        else:
            assert tokens[0] == "polarbert", line
            assert polarbert(tokens[1:]) == 0, line
    run = main_job_outputs / "runs"
    assert (run / "pretrain_tiny" / "model.safetensors").is_file()
    assert yaml.safe_load((run / "finetune_tiny" / "config.json").read_text())["architectures"] == ["PolarBertForDirection"]
    assert (run / "finetune_tiny" / "report" / "metrics.json").is_file()
    submission = pd.read_csv(run / "finetune_tiny" / "submission.csv")
    meta = pd.read_parquet(main_job_outputs / "data" / "quickstart" / "kaggle_test" / "test_meta.parquet")
    assert submission["event_id"].tolist() == meta["event_id"].tolist()


def test_readme_task_commands_after_the_main_job_run_as_written(main_job_outputs):
    from modeling_polarbert.cli import main as polarbert
    from modeling_polarbert.training import run_finetuning, run_pretraining

    # The quickstart's pretrained model, at a smaller size.
    run_pretraining(["configs/pretrain_tiny.yaml", "--output_dir", "runs/quickstart/pretrained",
                     *SMALLER["pretrain.py"]])
    (block,) = [block for block in fenced_blocks((ROOT / "README.md").read_text()) if "--task regression" in block]
    lines = [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    assert len(lines) == 4
    for line in lines:
        tokens = shlex.split(line)
        if tokens[0] == "python":
            assert run_finetuning([*tokens[2:], *SMALLER["finetune.py"]]) is not None, line
        else:
            assert polarbert(tokens[1:]) == 0, line
    run = main_job_outputs / "runs"
    for folder, problem_type, key in (("energy", "regression", "regression"),
                                      ("track", "single_label_classification", "classification")):
        config = json.loads((run / folder / "config.json").read_text())
        assert config["architectures"] == ["PolarBertForSequenceClassification"]
        assert config["problem_type"] == problem_type
        assert key in json.loads((run / folder / "report" / "metrics.json").read_text())
