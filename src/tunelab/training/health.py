"""Did the run learn anything? Checked after every evaluation and once at the end.

A model that predicts the majority class for every text still ends with exit 0, a model
folder and a report; without these checks the user sees "accuracy 0.68" and cannot tell it
learned nothing. The task judges its own scores (:meth:`Task.learning_warning`); this module
adds what every task shares: a loss that does not fall, and a comparison with the linear
baseline.
"""

from __future__ import annotations

import inspect
import logging
import math
from typing import Any

from transformers import TrainerCallback

log = logging.getLogger("tunelab")

LOSS_FALL = 0.97  # the last logged training loss must be below 97% of the first
BASELINE_MARGIN = 0.005  # closer than this to the baseline counts as level
SHIFT_SIGMAS = 3.0  # a validation-test gap beyond this many standard errors is no accident
SHIFT_FLOOR = 0.05  # and beyond this much of a 0-1 score (validation also chose the model)
# scores of labels given row by row; a retrieval score also falls with a larger corpus, and a
# text metric with longer targets, so a gap there says nothing about the rows
SHIFT_METRICS = {"f1_macro", "f1_micro", "f1", "accuracy"}
RISING_EVALUATIONS = 3  # a curve of at least this many validation scores...
RISING_GAIN = 0.01  # ...whose last beat the one before by this share of it


class LearningWatch(TrainerCallback):
    """Warns at once when an evaluation shows a model that learned nothing."""

    def __init__(self, task: Any, examples: int) -> None:
        self.task, self.examples = task, examples
        self.warnings: list[str] = []

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **_: Any):
        scores = {k.removeprefix("eval_"): v for k, v in (metrics or {}).items()}
        warning = self.task.learning_warning(scores, self.examples)
        if warning:
            where = f"epoch {state.epoch:.2g}" if state.epoch else f"step {state.global_step}"
            log.warning("after %s, on validation: %s", where, warning)
            self.warnings.append(warning)


def loss_warning(history: list[dict[str, Any]]) -> str | None:
    """A sentence when the logged training loss did not fall, else ``None``."""
    losses = [float(e["loss"]) for e in history if "loss" in e and "eval_loss" not in e]
    if len(losses) < 3:  # too few log points to judge
        return None
    first, last = losses[0], losses[-1]
    if last < LOSS_FALL * first:
        return None
    return (
        f"the training loss did not fall ({first:.4f} at the first log, {last:.4f} at the "
        "last); try a higher training.learning_rate or check that the labels belong to the texts"
    )


def baseline_warning(
    metric: str, greater_is_better: bool, split: str, model: dict[str, Any], baseline: dict
) -> str | None:
    """A sentence when the fine-tuned model does not beat the baseline on ``split``."""
    ours, theirs = model.get(metric), (baseline.get(split) or {}).get(metric)
    if not isinstance(ours, (int, float)) or not isinstance(theirs, (int, float)):
        return None
    gain = (ours - theirs) if greater_is_better else (theirs - ours)
    if gain > BASELINE_MARGIN:
        return None
    verdict = "is level with" if abs(gain) <= BASELINE_MARGIN else "is below"
    return (
        f"the fine-tuned model's {split} {metric} {ours:.4f} {verdict} the baseline's "
        f"{theirs:.4f} ({baseline.get('method')}, same rows): it has not earned its cost yet; "
        "a larger pretrained model in the data's language (--model), more epochs or more "
        "data (tunelab curve shows what more data buys) would help"
    )


def before_warning(
    task: Any, split: str, tuned: dict[str, Any], untuned: dict[str, Any] | None
) -> str | None:
    """A sentence when tuning did not improve on the untouched model's own scores (a chat
    model answering zero-shot, a pretrained sentence encoder); generation is judged by chrF,
    and a task with its own ``before_warning`` (preference tuning) by that."""
    own = getattr(task, "before_warning", None)  # a task judged by its own scores
    if own is not None:
        return own(split, tuned, untuned or {})
    metric, higher = task.main_metric, task.greater_is_better
    if metric == "loss" and "chrf" in tuned:  # as runs.main_metric judges generation
        metric, higher = "chrf", True
    ours, theirs = tuned.get(metric), (untuned or {}).get(metric)
    if not isinstance(ours, (int, float)) or not isinstance(theirs, (int, float)):
        return None
    gain = (ours - theirs) if higher else (theirs - ours)
    if gain > BASELINE_MARGIN:
        return None
    verdict = "is level with" if abs(gain) <= BASELINE_MARGIN else "is below"
    return (
        f"the fine-tuned model's {split} {metric} {ours:.4f} {verdict} the untuned model's "
        f"{theirs:.4f} (same rows): tuning has not helped; try a lower "
        "training.learning_rate, LoRA (--peft lora), more epochs or more data"
    )


def shift_warning(
    task: Any, metrics: dict[str, Any], leakage: dict[str, Any] | None = None
) -> str | None:
    """A sentence when the test score falls far below the validation score, further than
    sampling noise on their row counts explains: the test rows differ from the rows the model
    was trained and chosen on (collected elsewhere, or labelled by other rules), which no
    change of model or settings fixes. ``leakage``: the doctor's, whose ``other_label``
    counts show test texts labelled unlike the same texts in train."""
    metric = task.main_metric
    validation, test = metrics.get("validation") or {}, metrics.get("test") or {}
    ours, theirs = test.get(metric), validation.get(metric)
    rows_test, rows_validation = test.get("examples"), validation.get("examples")
    if metric not in SHIFT_METRICS or not all(
        isinstance(v, (int, float)) for v in (ours, theirs, rows_test, rows_validation)
    ):
        return None
    if not (0.0 <= ours <= 1.0 and 0.0 <= theirs <= 1.0) or min(rows_test, rows_validation) < 1:
        return None
    # a 0-1 score's standard error on n rows is at most 0.5 / sqrt(n)
    noise = 0.5 * math.sqrt(1.0 / rows_test + 1.0 / rows_validation)
    if theirs - ours <= max(SHIFT_FLOOR, SHIFT_SIGMAS * noise):
        return None
    at_chance = " (no better than chance)" if task.learning_warning(test, rows_test) else ""
    shared = (leakage or {}).get("test_in_train") or {}
    labelled = (
        f"; {shared['other_label']} of the {shared['near']} test texts that also occur in "
        "train carry another label there"
        if shared.get("other_label")
        else ""
    )
    return (
        f"test {metric} {ours:.3f}{at_chance} is far below validation's {theirs:.3f}, further "
        f"than sampling noise on {rows_test} and {rows_validation} rows goes: the test rows differ "
        f"from the rows the model learned from and was chosen on{labelled}; check how the "
        "test set was collected and labelled before changing the model or its settings"
    )


def still_rising_note(task: Any, history: list[dict[str, Any]], epochs: float) -> str | None:
    """A sentence when the validation score was still climbing at the run's last evaluation:
    best there, and better than the evaluation before by more than 1% of it, over at least
    three evaluations. Not a warning (the model may be fine): the hint that more epochs may
    buy more, which the plain command's 3 epochs left on MSRA NER (entity F1 0.767, 0.821,
    0.851 at epochs 1-3) and WNUT-17 (see README)."""
    key = f"eval_{task.main_metric}"
    scores = [(float(e[key]), e.get("epoch")) for e in history if key in e]
    if len(scores) < RISING_EVALUATIONS:
        return None
    values = [value for value, _ in scores]
    sign = 1 if task.greater_is_better else -1
    last, before = sign * values[-1], sign * values[-2]
    if last < max(sign * v for v in values) or last - before <= RISING_GAIN * abs(before):
        return None
    shown = ", ".join(f"{value:.4g}" for value in values[-RISING_EVALUATIONS:])
    where = (
        f" at epochs {', '.join(f'{e:.3g}' for _, e in scores[-RISING_EVALUATIONS:])}"
        if all(e is not None for _, e in scores[-RISING_EVALUATIONS:])
        else ""
    )
    more = max(math.ceil(epochs) * 2, 2)
    return (
        f"validation {task.main_metric} was still improving at the last evaluation "
        f"({shown}{where}): more epochs may buy more (--set training.epochs={more})"
    )


def final_warnings(
    task: Any,
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    during_training: list[str],
    leakage: dict[str, Any] | None = None,
) -> list[str]:
    """Everything the run's end says about whether it learned, for the summary, metrics.json
    and the report headline: the held-out scores judged by the task, the loss, the baseline.

    Where the test score falls far below validation's (:func:`shift_warning`), that is said
    instead of judging the model by the test rows, and the baseline is compared on
    validation, whose rows are drawn like the training rows."""
    warnings: list[str] = []
    split = "test" if "test" in metrics else "validation"
    shift = shift_warning(task, metrics, leakage) if split == "test" else None
    if shift:
        warnings.append(shift)
        split = "validation"
    scores = metrics.get(split) or {}
    untuned = (metrics.get("before") or {}).get(split)
    judged = _judged(task, scores, int(scores.get("examples", 0)), untuned) if scores else None
    if judged:
        warnings.append(f"{split}: {judged}")
    elif during_training and not scores:
        warnings.append(during_training[-1])
    loss = loss_warning(history)
    if loss:
        warnings.append(loss)
    before = before_warning(task, split, scores, untuned)
    if before:
        warnings.append(before)
    baseline = metrics.get("baseline")
    if baseline and scores:
        behind = baseline_warning(task.main_metric, task.greater_is_better, split, scores, baseline)
        if behind:
            warnings.append(behind)
    return warnings


def _judged(task: Any, scores: dict[str, Any], examples: int, untuned: Any) -> str | None:
    """``task.learning_warning``, with the untuned model's scores where the task takes them
    (a task written before ``before`` was added to the protocol takes two arguments)."""
    if "before" in inspect.signature(task.learning_warning).parameters:
        return task.learning_warning(scores, examples, before=untuned)
    return task.learning_warning(scores, examples)
