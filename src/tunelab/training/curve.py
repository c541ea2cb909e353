"""Learning curves: train on growing seeded subsets, fit a power law, say how much data a
target needs.

Each trial is an ordinary run (``tunelab.api.train``) with ``data.train_rows`` and a seed,
in its own folder under the curve's output; validation and test rows are the same at every
size. A rerun into the same folder skips trials whose ``metrics.json`` exists.
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

import numpy as np

from tunelab.config import RunConfig, build_config
from tunelab.errors import UserError

log = logging.getLogger("tunelab")

# metrics that shrink as a model improves; every other metric grows
LOWER_IS_BETTER = ("loss", "perplexity", "mse", "rmse", "mae")


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


def epochs_for_min_steps(rows: int, training: Any, min_steps: int) -> tuple[float, int] | None:
    """Epochs that give at least ``min_steps`` optimizer steps on ``rows`` training rows.

    Returns:
        ``(epochs, total_steps)`` when the configured epochs give fewer steps, else ``None``
        (also when ``training.max_steps`` fixes the length of training).
    """
    if training.max_steps or min_steps <= 0:
        return None
    per_epoch = math.ceil(
        math.ceil(rows / training.batch_size) / training.gradient_accumulation_steps
    )
    if math.ceil(per_epoch * training.epochs) >= min_steps:
        return None
    epochs = math.ceil(min_steps / per_epoch)
    return float(epochs), per_epoch * epochs


def trial_overrides(
    config: RunConfig, size: int, seed: int, folder: Path, rows: int, min_steps: int
) -> tuple[list[str], str | None]:
    """The overrides of one trial, and a note when its epochs were raised."""
    overrides = [f"output={folder}", f"seed={seed}", f"data.train_rows={size}"]
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


# -- the power law ----------------------------------------------------------------------


def power_law(n: np.ndarray, a: float, b: float, c: float, sign: float) -> np.ndarray:
    """``c + sign * a * n**-b``: sign -1 for metrics that grow towards ``c``, +1 shrink."""
    return c + sign * a * np.power(n, -b)


def fit_power_law(
    sizes: Sequence[float], values: Sequence[float], greater_is_better: bool
) -> dict[str, Any]:
    """Fit ``metric = c − a·n^(−b)`` (``c + a·n^(−b)`` when lower is better) to points.

    ``c`` is the level the curve tends to with unlimited data. Metrics that stay within
    [0, 1] keep ``c`` there too. With fewer than three distinct sizes, or when the fit fails,
    a straight line in log(n) is fitted instead (no level-off: it over-promises far out).

    Returns:
        ``{"kind": "power_law", "a", "b", "c", "sign"}``, ``{"kind": "log_linear", "slope",
        "intercept"}``, or ``{"kind": "none"}`` with fewer than two distinct sizes.
    """
    from scipy.optimize import curve_fit

    n = np.asarray(sizes, dtype=float)
    y = np.asarray(values, dtype=float)
    distinct = np.unique(n)
    if len(distinct) < 2:
        return {"kind": "none", "reason": "fewer than two distinct sizes"}
    sign = -1.0 if greater_is_better else 1.0
    if len(distinct) >= 3:
        best = y.max() if greater_is_better else y.min()
        unit = bool(((y >= 0) & (y <= 1)).all())
        spread = max(float(np.ptp(y)), 1e-3)
        if greater_is_better:
            low, high = best - spread, (1.0 if unit else best + 10 * spread)
        else:
            low, high = (0.0 if unit else best - 10 * spread), best + spread
        c0 = min(max(best - sign * 0.1 * spread, low), high)
        a0 = max(abs(float(np.mean(y[n == distinct[0]])) - c0) * distinct[0] ** 0.5, 1e-6)
        try:
            params, _ = curve_fit(
                lambda x, a, b, c: power_law(x, a, b, c, sign), n, y, p0=(a0, 0.5, c0),
                bounds=([0.0, 0.01, low], [np.inf, 3.0, max(high, low + 1e-9)]), maxfev=20_000,
            )  # fmt: skip
            a, b, c = (float(p) for p in params)
            if all(math.isfinite(p) for p in (a, b, c)):
                return {"kind": "power_law", "a": a, "b": b, "c": c, "sign": sign}
        except (RuntimeError, ValueError):
            log.warning("the power-law fit did not converge; fitting a line in log(n) instead")
    slope, intercept = np.polyfit(np.log(n), y, 1)
    return {"kind": "log_linear", "slope": float(slope), "intercept": float(intercept)}


def predict(fit: dict[str, Any], n: np.ndarray | float) -> np.ndarray:
    """The fitted metric at training size(s) ``n``."""
    n = np.asarray(n, dtype=float)
    if fit["kind"] == "power_law":
        return power_law(n, fit["a"], fit["b"], fit["c"], fit["sign"])
    if fit["kind"] == "log_linear":
        return fit["intercept"] + fit["slope"] * np.log(n)
    return np.full_like(n, np.nan)


def size_for(fit: dict[str, Any], target: float, greater_is_better: bool) -> float | None:
    """Training rows at which the fitted curve reaches ``target``; ``None``: never."""
    if fit["kind"] == "power_law":
        a, b, c = fit["a"], fit["b"], fit["c"]
        gap = (c - target) if greater_is_better else (target - c)
        if gap <= 0:
            return None
        return 1.0 if a <= gap else float((a / gap) ** (1.0 / b))
    if fit["kind"] == "log_linear":
        slope = fit["slope"] if greater_is_better else -fit["slope"]
        if slope <= 0:
            return None
        return float(math.exp((target - fit["intercept"]) / fit["slope"]))
    return None


def answer_target(
    points: dict[int, list[float]],
    target: float,
    greater_is_better: bool,
    fit: dict[str, Any],
    resamples: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """How many training rows reach ``target``, with a 10–90% range from bootstrap refits.

    Each resample redraws every size's per-seed scores with replacement; a size trained
    with one seed gets noise as large as the seed spread at the nearest size with several.

    Returns:
        ``{"target", "rows", "low", "high", "reachable_share", "extrapolated", "message"}``;
        ``rows``/``low``/``high`` are ``None`` where the curve does not reach the target.
    """
    sizes = sorted(points)
    estimate = size_for(fit, target, greater_is_better)
    rng = np.random.default_rng(seed)
    repeated = [s for s in sizes if len(points[s]) > 1]
    found: list[float] = []
    for _ in range(resamples if fit["kind"] != "none" else 0):
        xs, ys = [], []
        for size in sizes:
            scores = np.asarray(points[size], dtype=float)
            if len(scores) > 1:
                drawn = rng.choice(scores, size=len(scores), replace=True)
            else:
                near = min(repeated, key=lambda s: abs(math.log(s / size))) if repeated else None
                noise = float(np.std(points[near], ddof=1)) if near else 0.0
                drawn = scores + rng.normal(0.0, noise, size=len(scores))
            xs += [size] * len(drawn)
            ys += list(drawn)
        refit = fit_power_law(xs, ys, greater_is_better)
        needed = size_for(refit, target, greater_is_better)
        found.append(math.inf if needed is None else needed)
    reachable = float(np.mean(np.isfinite(found))) if found else 0.0
    low = high = None
    if found:
        q10, q90 = np.quantile(found, [0.1, 0.9], method="inverted_cdf")  # no inf - inf
        low = _rounded(q10) if math.isfinite(q10) else None
        high = _rounded(q90) if math.isfinite(q90) else None
    answer = {
        "target": target,
        "rows": _rounded(estimate) if estimate is not None else None,
        "low": low,
        "high": high,
        "reachable_share": round(reachable, 3),
        "extrapolated": estimate is not None and estimate > max(sizes),
    }
    answer["message"] = _target_message(answer, fit, sizes, greater_is_better)
    return answer


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _rounded(n: float) -> int:
    """Two significant figures: a range of hundreds of rows has no meaningful units digit."""
    n = max(float(n), 1.0)
    if n >= 1e12:
        return int(1e12)
    digits = max(math.floor(math.log10(n)) - 1, 0)
    return int(round(n / 10**digits) * 10**digits)


def _target_message(
    answer: dict[str, Any], fit: dict[str, Any], sizes: list[int], greater_is_better: bool
) -> str:
    target = answer["target"]
    if fit["kind"] == "none":
        return f"{target:g}: train at two sizes or more to get an estimate"
    if answer["rows"] is None:
        level = (
            f"it levels off at {fit['c']:.3f}"
            if fit["kind"] == "power_law"
            else "it never gets there"
        )
        text = f"{target:g}: not reachable within the fitted curve ({level})"
        if answer["low"] is not None:  # some refits do get there: say how rarely and where
            text += (
                f"; {answer['reachable_share']:.0%} of refits on resampled seeds reach it, "
                f"from about {answer['low']:,} rows"
            )
        return text
    if answer["rows"] <= sizes[0]:
        return f"{target:g}: already reached with the smallest size tried ({sizes[0]:,} rows)"
    span = f"{answer['low']:,}–" + (f"{answer['high']:,}" if answer["high"] else "not reachable")
    text = f"{target:g}: about {answer['rows']:,} labelled training rows (10–90% range {span})"
    if answer["extrapolated"]:
        text += f"; extrapolated beyond the largest size tried ({sizes[-1]:,})"
    return text


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
    from tunelab import api
    from tunelab.outputs import write_json
    from tunelab.tasks import task_from_run_config
    from tunelab.training.prepare import load_splits

    if isinstance(config, (str, Path)):
        from tunelab.config import read_yaml

        config = read_yaml(Path(config))
    # build_config sets overrides into the nested dicts it is given: each call gets a copy
    raw = config.model_dump() if isinstance(config, RunConfig) else copy.deepcopy(config)
    base = build_config(raw, list(overrides))
    if base.data.train_per_class is not None:
        raise UserError(
            "data.train_per_class picks its own training rows; unset it for tunelab curve, "
            "which sets data.train_rows per trial"
        )
    base = build_config(base.model_dump(), ["data.train_rows=null"])
    task = task_from_run_config(base)
    splits, _ = load_splits(base, task)  # checks config and data before any training
    rows = len(splits["train"])
    metric = metric or task.main_metric
    greater = (
        task.greater_is_better
        if metric == task.main_metric
        else not metric.endswith(LOWER_IS_BETTER)
    )
    if not base.data.validation and not base.data.test:
        log.warning(
            "validation and test are split from data.train with each trial's seed, so they "
            "differ between seeds (not between sizes); give data.validation and data.test "
            "files to keep them fixed"
        )
    capped = sorted({min(size, rows) for size in sizes})
    classes = len(task.labels) if getattr(task, "problem_type", None) == "single_label" else 0
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
    from tunelab.evaluation.plots import learning_curve_figure, save_figure

    figure = learning_curve_figure(summary)
    save_figure(figure, [out / "curve.png", out / "curve.svg"])
    return summary


def summarize(
    results: list[dict[str, Any]], metric: str, greater_is_better: bool, target: float | None
) -> dict[str, Any]:
    """Per-size statistics, the fit and the target answer from the trials' scores."""
    points: dict[int, list[float]] = {}
    for result in results:
        points.setdefault(result["size"], []).append(result["score"])
    xs = [size for size, scores in points.items() for _ in scores]
    ys = [score for scores in points.values() for score in scores]
    fit = fit_power_law(xs, ys, greater_is_better)
    per_size = [
        {
            "size": size,
            "scores": scores,
            "mean": float(np.mean(scores)),
            "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
            "min": float(np.min(scores)),
            "max": float(np.max(scores)),
            "fitted": _finite(float(predict(fit, size))),
        }
        for size, scores in sorted(points.items())
    ]
    summary: dict[str, Any] = {
        "metric": metric,
        "greater_is_better": greater_is_better,
        "split": results[0]["split"] if results else None,
        "sizes": per_size,
        "trials": results,
        "fit": fit,
        "target": None,
        "warnings": dips(per_size, results, metric, greater_is_better),
    }
    if target is not None:
        summary["target"] = answer_target(points, target, greater_is_better, fit)
    return summary


def dips(
    per_size: list[dict[str, Any]],
    results: list[dict[str, Any]],
    metric: str,
    greater_is_better: bool,
) -> list[str]:
    """Where a larger size scores worse than a smaller one by more than the seed spread.

    More data should not hurt; when it seems to, the larger trials usually trained too
    little for their data (one epoch of a big subset can be fewer steps than many epochs of a
    small one) or a single seed is noisy.
    """
    spread = max([s["std"] for s in per_size] + [0.01])
    steps: dict[int, list[int]] = {}
    for result in results:
        if result.get("steps") is not None:
            steps.setdefault(result["size"], []).append(int(result["steps"]))
    found = []
    for later in per_size[1:]:
        earlier = [s for s in per_size if s["size"] < later["size"]]
        best = (max if greater_is_better else min)(earlier, key=lambda s: s["mean"])
        drop = (best["mean"] - later["mean"]) * (1 if greater_is_better else -1)
        if drop > spread:
            used = {n: round(float(np.mean(steps[n]))) for n in (best["size"], later["size"])
                    if n in steps}  # fmt: skip
            trained = (
                f" (optimizer steps: {used[best['size']]:,} at {best['size']:,} rows, "
                f"{used[later['size']]:,} at {later['size']:,})" if len(used) == 2 else ""
            )  # fmt: skip
            found.append(
                f"{metric} is {later['mean']:.3f} at {later['size']:,} rows, worse than "
                f"{best['mean']:.3f} at {best['size']:,} by more than the seed spread{trained}; "
                "the larger trials may train too little for their data (raise --min-steps or "
                "training.epochs) or one seed is noisy (raise --seeds or --seeds-below)"
            )
    return found
