"""Calibration of predicted probabilities: reliability bins and expected calibration error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def reliability(
    confidences: Sequence[float], outcomes: Sequence[float], n_bins: int = 10
) -> dict[str, Any]:
    """Reliability bins and the expected calibration error (Guo et al., 2017).

    Confidences fall into ``n_bins`` equal-width bins ``(low, high]`` (the first includes
    0). ECE is the mean gap between a bin's observed frequency and its mean confidence,
    weighted by the bin's share of all predictions.

    Args:
        confidences: predicted probabilities in [0, 1] (e.g. the top class's probability).
        outcomes: 1 where the event happened (the prediction was right), else 0.
        n_bins: number of bins.

    Returns:
        ``{"ece", "count", "bins": [{"low", "high", "count", "confidence", "accuracy"}]}``;
        an empty bin has count 0 and zero means.
    """
    conf = np.clip(np.asarray(confidences, dtype=float), 0.0, 1.0)
    hits = np.asarray(outcomes, dtype=float)
    index = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        member = index == b
        count = int(member.sum())
        confidence = float(conf[member].mean()) if count else 0.0
        accuracy = float(hits[member].mean()) if count else 0.0
        if count:
            ece += count / len(conf) * abs(accuracy - confidence)
        bins.append(
            {
                "low": b / n_bins,
                "high": (b + 1) / n_bins,
                "count": count,
                "confidence": confidence,
                "accuracy": accuracy,
            }
        )
    return {"ece": float(ece), "count": len(conf), "bins": bins}
