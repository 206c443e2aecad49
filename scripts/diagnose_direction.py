#!/usr/bin/env python
"""Fine-tune a direction model with `LearningDiagnostics` recording what it learns, then evaluate it beside LineFit.

    python scripts/diagnose_direction.py --out runs/diagnose/baseline --train data/exp/prepared_labelled \
        --eval data/exp/prepared_eval --max-train-events 58000 --epochs 2 \
        --config-overrides hidden_size=64,num_hidden_layers=2,num_attention_heads=4,intermediate_size=256

`--model RUN` starts from a pretrained folder (its config, plus `--config-overrides`); without it, a fresh model.
Writes diagnostics.jsonl (gradient norms, CLS spread, time sensitivity, dead head units every `--every` steps),
input_scales.json, summary.json (held-out mean angle overall, tracks, cascades, LineFit) and the evaluation report.
"""

import argparse
import json
import time
from pathlib import Path

import modeling_polarbert  # noqa: F401  (registers the Auto classes)
from modeling_polarbert import PolarBertForDirection
from modeling_polarbert.collators import PolarBertDirectionCollator
from modeling_polarbert.diagnostics import LearningDiagnostics, input_scales
from modeling_polarbert.evaluation import evaluate_model
from modeling_polarbert.loading import load_prepared_dataset
from modeling_polarbert.pulse_dataset import as_pulse_dataset
from modeling_polarbert.task_metrics import compute_direction_metrics
from modeling_polarbert.trainer import PolarBertTrainer
from modeling_polarbert.training import freeze_backbone
from modeling_polarbert.training_args import ModelArguments, build_config, build_feature_extractor
from transformers import TrainingArguments, set_seed


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--eval", required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--config-overrides", default=None)
    parser.add_argument("--max-train-events", type=int, default=None)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--optim", default="schedule_free_adamw")
    parser.add_argument("--scheduler", default="constant")
    parser.add_argument("--warmup", type=float, default=0.05)
    parser.add_argument("--freeze-backbone", action="store_true")
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    set_seed(args.seed)

    train = load_prepared_dataset(args.train, require_labels=True)
    if args.max_train_events:
        train = train.select(range(min(args.max_train_events, len(train))))
    evaluation = load_prepared_dataset(args.eval, require_labels=True)
    model_args = ModelArguments(model_name_or_path=args.model, config_overrides=args.config_overrides)
    extractor = build_feature_extractor(model_args)
    config = build_config(model_args, extractor)
    model = (PolarBertForDirection.from_pretrained(args.model, config=config) if args.model
             else PolarBertForDirection(config))
    if args.freeze_backbone:
        freeze_backbone(model)

    probe_collator = PolarBertDirectionCollator(config, deterministic=True, feature_extractor=extractor)
    probe = probe_collator(as_pulse_dataset(evaluation).gather(list(range(256))))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "input_scales.json").write_text(json.dumps(input_scales(model, probe), indent=2))

    training_args = TrainingArguments(
        output_dir=str(args.out / "model"), per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=256,
        num_train_epochs=args.epochs, learning_rate=args.learning_rate, optim=args.optim,
        lr_scheduler_type=args.scheduler, warmup_steps=args.warmup, use_cpu=True,
        train_sampling_strategy="group_by_length", dataloader_num_workers=0, eval_strategy="no", save_strategy="no",
        logging_steps=50, report_to="none", disable_tqdm=True, remove_unused_columns=False, seed=args.seed,
    )
    trainer = PolarBertTrainer(
        model=model, args=training_args, train_dataset=as_pulse_dataset(train),
        data_collator=PolarBertDirectionCollator(config, seed=args.seed, feature_extractor=extractor),
        eval_data_collator=probe_collator, compute_metrics=compute_direction_metrics,
        callbacks=[LearningDiagnostics(probe, args.out / "diagnostics.jsonl", every=args.every)],
    )
    start = time.time()
    trainer.train()
    train_seconds = time.time() - start
    trainer.save_model(str(args.out / "model"))
    extractor.save_pretrained(args.out / "model")  # the folder evaluates with the input settings it trained with
    metrics = evaluate_model(str(args.out / "model"), args.eval, str(args.out / "report"), progress=False)
    parts = {name: metrics["breakdowns"][name] for name in ("track", "cascade") if name in metrics["breakdowns"]}
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    summary = {
        "argv": argv, "train_events": len(train), "steps": trainer.state.global_step,
        "train_seconds": round(train_seconds, 1), "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "model": metrics["overall"]["model"]["mean"], "linefit": metrics["overall"]["linefit"]["mean"],
        **{f"{name}_model": part["model"]["mean"] for name, part in parts.items()},
        **{f"{name}_linefit": part["linefit"]["mean"] for name, part in parts.items()},
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
