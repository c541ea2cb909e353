"""The statistics of a learning curve: a power law fitted to scores at growing training sizes,
how many rows a target needs (with a bootstrap range), per-size summaries and dips.

Pure functions of numbers, below the API: the plots draw them and ``tunelab curve``
(:mod:`tunelab.studies.curve`) computes them from its trials.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger("tunelab")


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
