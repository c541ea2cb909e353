"""Early stopping that waits for the steps a raised run was given.

Where ``training.min_steps`` raised a small set's epochs (:mod:`tunelab.training.epochs`) for
a model from random weights, stopping before those steps are done undoes the raise: such a
model climbs in noisy steps, and patience 2 ended scikit-learn's digits (seed 42) at epoch 6
of 10, test macro-F1 0.514, where seeds 0-2 trained all 10 and reached 0.757 ± 0.027. So
evaluations before that step keep the best checkpoint as usual but do not count against the
patience. Pretrained models keep the plain rule: they overfit early and may stop then.
"""

from __future__ import annotations

from typing import Any

from transformers import EarlyStoppingCallback


class EarlyStoppingAfter(EarlyStoppingCallback):
    """``EarlyStoppingCallback`` whose patience starts counting at ``not_before_step``."""

    def __init__(
        self,
        early_stopping_patience: int = 1,
        early_stopping_threshold: float | None = 0.0,
        not_before_step: int = 0,
    ) -> None:
        super().__init__(early_stopping_patience, early_stopping_threshold)
        self.not_before_step = not_before_step

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps, so a resumed run waits for the same step."""
        saved = super().state()
        saved["args"]["not_before_step"] = self.not_before_step
        return saved

    def check_metric_value(self, args: Any, state: Any, control: Any, metric_value: Any) -> None:
        super().check_metric_value(args, state, control, metric_value)
        if state.global_step < self.not_before_step:
            self.early_stopping_patience_counter = 0
