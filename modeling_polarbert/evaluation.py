"""`polarbert evaluate`: a fine-tuned model's metrics on a prepared, labelled dataset, each beside the simplest honest
baseline on the same events, in every table and plot. Writes metrics.json and PNG plots. The head the folder holds
picks the evaluation (tasks.py's registry):

- direction (`PolarBertForDirection`): opening angles, beside LineFit (direction_evaluation.py);
- regression and classification (`PolarBertForSequenceClassification`): bias and resolution beside a
  least-squares line on log10 of the event's total charge, or accuracy, ROC AUC and confusion matrix beside the
  majority class (sequence_evaluation.py).
"""

from .tasks import evaluated_head


def evaluate_model(
    model_path: str, dataset_path: str, out_dir: str, batch_size: int = 256, max_events: int | None = None,
    all_pulses: bool = False, progress: bool = True, train_dataset: str | None = None,
) -> dict:
    """Evaluate a fine-tuned folder on a labelled prepared dataset; write metrics.json and plots into `out_dir` and
    return the metrics. `train_dataset`: where a regression/classification baseline is fitted (default: 5-fold
    cross-validation on the evaluated events); `all_pulses`: no down-sampling of long events."""
    evaluate = evaluated_head(model_path).evaluate
    return evaluate(model_path, dataset_path, out_dir, batch_size, max_events, all_pulses, progress, train_dataset)


__all__ = ["evaluate_model"]
