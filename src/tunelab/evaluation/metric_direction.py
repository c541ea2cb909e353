"""Which way a metric improves, by its name: the one rule that ranks runs, fits learning
curves and reads a search's objective."""

from __future__ import annotations

# by the end of the name's last dotted part: train.optimizer_seconds, test.loss, mse
LOWER_IS_BETTER = (
    "loss", "perplexity", "mse", "mae", "ece", "seconds", "peak_memory_mb", "tool_call_unasked",
)  # fmt: skip
# by its start: f1_macro, rouge1, accuracy_at_threshold
HIGHER_IS_BETTER = (
    "accuracy", "f1", "precision", "recall", "word_f1", "rouge", "bleu", "chrf", "exact_match",
    "pearson", "spearman", "samples_per_second", "tokens_per_second", "mfu", "tool_call_exact",
    "tool_name_accuracy",
)  # fmt: skip


def greater_is_better(metric: str) -> bool | None:
    """Whether a larger value of ``metric`` is better; ``None`` for a figure that is neither
    a score nor a cost (a count, a setting).

    Args:
        metric: a metric name, bare (``f1_macro``) or dotted (``test.loss``).
    """
    name = metric.rsplit(".", 1)[-1]
    if name.endswith(LOWER_IS_BETTER):
        return False
    if name.startswith(HIGHER_IS_BETTER):
        return True
    return None


def task_metric_grows(metric: str, main_metric: str, main_greater_is_better: bool) -> bool:
    """The direction to optimise ``metric`` in for a task: the task's own for its main metric
    (regression's ``mse`` falls, ``pearson`` rises), else by the name; a name of unknown
    direction is taken to grow, as scores do."""
    if metric == main_metric:
        return main_greater_is_better
    return greater_is_better(metric) is not False
