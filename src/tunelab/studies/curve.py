"""Learning curves: train on growing seeded subsets, fit a power law, say how much data a
target needs.

Orchestration above the API: each trial is an ordinary run (``tunelab.api.train``) with
``data.train_rows`` and a seed, in its own folder under the curve's output; validation and test
rows are the same at every size. A rerun into the same folder skips trials whose
``metrics.json`` exists. The fit itself is in :mod:`tunelab.evaluation.learning_curve`.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tunelab import api
from tunelab.config import RunConfig, as_config, build_config
from tunelab.errors import UserError
from tunelab.evaluation.learning_curve import summarize
from tunelab.evaluation.metric_direction import task_metric_grows
from tunelab.evaluation.plots import learning_curve_figure, save_figure
from tunelab.outputs import write_json
from tunelab.tasks import task_from_run_config
from tunelab.training.epochs import epochs_for_min_steps
from tunelab.training.guesses import guess_from_data
from tunelab.training.prepare import load_splits

log = logging.getLogger("tunelab")


def parse_sizes(text: str) -> list[int]:
    """Sorted, distinct training sizes from ``"50,100,200"``.

    Raises:
        UserError: if an item is not a positive integer.
    """
    sizes = set()
    for item in text.split(","):
        item = item.strip().replace("_", "")
        if not item.isdigit() or int(item) <= 0:
            raise UserError(f"--sizes must be positive integers separated by commas, got '{text}'")
        sizes.add(int(item))
    return sorted(sizes)


def plan_trials(
    sizes: Sequence[int], seeds: int, seeds_below: int, first_seed: int
) -> list[tuple[int, int]]:
    """The ``(size, seed)`` pairs to train: ``seeds`` seeds below ``seeds_below``, one above.

    Raises:
        UserError: if ``seeds`` is below 1.
    """
    if seeds < 1:
        raise UserError(f"--seeds must be 1 or more, got {seeds}")
    return [
        (size, first_seed + i) for size in sizes for i in range(seeds if size < seeds_below else 1)
    ]


def trial_overrides(
    config: RunConfig, size: int, seed: int, folder: Path, rows: int, min_steps: int
) -> tuple[list[str], str | None]:
    """The overrides of one trial, and a note when its epochs were raised."""
    # the curve's --min-steps alone sets each trial's length, the same rule at every size
    overrides = [f"output={folder}", f"seed={seed}", f"data.train_rows={size}",
                 "training.min_steps=null"]  # fmt: skip
    raised = epochs_for_min_steps(min(size, rows), config.training, min_steps)
    if raised is None or config.training.method != "full":
        return overrides, None
    epochs, total = raised
    overrides.append(f"training.epochs={epochs:g}")
    if config.training.eval_strategy == "epoch":
        # as many evaluations as the configured epochs would have given, not one per
        # (now tiny) epoch: evaluating the whole validation set dominates small trials
        evaluations = max(1, math.ceil(config.training.epochs))
        overrides += ["training.eval_strategy=steps", f"training.eval_steps={total // evaluations}"]
    note = (
        f"size {size}: {config.training.epochs:g} epoch(s) give fewer than {min_steps} optimizer "
        f"steps; training {epochs:g} epochs ({total} steps)"
    )
    return overrides, note


def score_of(metrics: dict[str, Any], metric: str) -> tuple[float, str]:
    """A run's ``metric`` from its metrics.json: the test split when present, else validation.

    Raises:
        UserError: if neither split has the metric.
    """
    for split in ("test", "validation"):
        value = metrics.get(split, {}).get(metric)
        if isinstance(value, (int, float)):
            return float(value), split
    found = sorted(
        k for s in ("test", "validation") for k, v in metrics.get(s, {}).items()
        if isinstance(v, (int, float))
    )  # fmt: skip
    raise UserError(f"--metric '{metric}' is not among the run's metrics; choose one of {found}")


# -- the whole curve --------------------------------------------------------------------


def learning_curve(
    config: RunConfig | dict[str, Any] | str | Path,
    sizes: Sequence[int],
    out: Path,
    overrides: Sequence[str] = (),
    seeds: int = 3,
    seeds_below: int = 1000,
    min_steps: int = 100,
    target: float | None = None,
    metric: str | None = None,
    keep_models: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train at each size (several seeds at small sizes), fit the curve, plot it.

    Args:
        config: a RunConfig, a config dict, or a YAML path.
        sizes: training rows per trial; sizes above the training split's rows use it whole.
        out: folder for the trials (``size-N-seed-S/``), curve.json, curve.png, curve.svg.
        overrides: dotted ``key=value`` strings applied to every trial.
        seeds: seeds per size below ``seeds_below``; larger sizes train once.
        seeds_below: sizes from this one up train with one seed.
        min_steps: optimizer steps a trial gets at least (its epochs are raised).
        target: a metric value to ask "how many rows for this?" about.
        metric: the metric to plot; default the task's main metric.
        keep_models: keep each trial's model/ and checkpoints/ (default: delete them).
        echo: where progress lines go.

    Returns:
        The contents of curve.json.

    Raises:
        UserError: for bad sizes, seeds, metric, config or data.
    """
    base = as_config(config, overrides).model_copy(deep=True)
    guesses = guess_from_data(base)  # once for all trials: each trial's config names them
    if base.data.train_per_class is not None:
        raise UserError(
            "data.train_per_class picks its own training rows; unset it for tunelab curve, "
            "which sets data.train_rows per trial"
        )
    base = build_config(base.model_dump(), ["data.train_rows=null"])
    task = task_from_run_config(base)
    splits, _ = load_splits(base, task, guesses.train)  # checks data before any training
    rows = len(splits["train"])
    metric = metric or task.main_metric
    greater = task_metric_grows(metric, task.main_metric, task.greater_is_better)
    if not base.data.validation and not base.data.test:
        log.warning(
            "validation and test are split from data.train with each trial's seed, so they "
            "differ between seeds (not between sizes); give data.validation and data.test "
            "files to keep them fixed"
        )
    capped = sorted({min(size, rows) for size in sizes})
    classes = len(task.labels) if task.problem_type == "single_label" else 0
    if capped[0] < classes:
        raise UserError(
            f"--sizes: {capped[0]} rows cannot hold one of each of the {classes} classes; "
            f"start at {classes} or more"
        )
    if capped != sorted(sizes):
        echo(f"the training split has {rows:,} rows; larger sizes use all of them")
    trials = plan_trials(capped, seeds, seeds_below, base.seed)
    base_tree = base.model_dump(mode="json")
    results: list[dict[str, Any]] = []
    for number, (size, seed) in enumerate(trials, 1):
        folder = out / f"size-{size}-seed-{seed}"
        trial, note = trial_overrides(base, size, seed, folder, rows, min_steps)
        metrics_file = folder / "metrics.json"
        if metrics_file.is_file():
            echo(f"[{number}/{len(trials)}] size {size}, seed {seed}: done before, skipped")
        else:
            if note:
                echo(note)
            echo(f"[{number}/{len(trials)}] size {size}, seed {seed}: training")
            resume = (folder / "checkpoints").is_dir()
            trial_config = build_config(copy.deepcopy(base_tree), trial)
            api.train(trial_config, resume=resume, overwrite=not resume)
        metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        score, split = score_of(metrics, metric)
        if not keep_models:
            for name in ("model", "checkpoints"):
                shutil.rmtree(folder / name, ignore_errors=True)
        echo(f"[{number}/{len(trials)}] size {size}, seed {seed}: {split} {metric}={score:.4f}")
        results.append({
            "size": size, "seed": seed, "split": split, "score": score, "folder": folder.name,
            "seconds": metrics.get("train", {}).get("seconds"),
            "steps": metrics.get("train", {}).get("steps"),
        })  # fmt: skip

    summary = summarize(results, metric, greater, target)
    summary.update({"training_rows": rows, "min_steps": min_steps, "config": base_tree})
    write_json(out / "curve.json", summary)
    figure = learning_curve_figure(summary)
    save_figure(figure, [out / "curve.png", out / "curve.svg"])
    return summary
