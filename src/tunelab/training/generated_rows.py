"""How many test rows a generation run writes answers for (``generation.max_eval_rows``).

A generated answer costs a forward pass per new token, so scoring a test split by generating
is the slowest part of a text-generation run on a CPU, and a chat model is scored twice (the
untuned start, then the tuned model). Measured on 2 EPYC cores: SmolLM2-135M answered
en-zh-l10n prompts (120 new tokens at most) in 0.64 s a row untuned and 0.57 s tuned, so the
4,251 test rows would take 45 and 40 minutes, against 37 minutes of training on 3,000 rows.
``auto`` keeps every row on a GPU and, on a CPU, a seeded sample sized to a fixed budget of
parameters x new tokens x rows (619 rows there, about 6 minutes a pass), never under
:data:`MIN_ROWS`; a small model, such as a starter, keeps every row. What a sample costs in
precision is in ``benchmarks/results/generated_rows.json``.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from tunelab.training.prepare import seeded_rows

log = logging.getLogger("tunelab")

CPU_ROW_BUDGET = 1e13  # parameters x new tokens x rows: SmolLM2-135M at 120 tokens, 619 rows
MIN_ROWS = 200  # fewer rows leave corpus scores too noisy to compare runs by


def generated_rows_limit(
    setting: int | str | None, parameters: int, new_tokens: int, on_accelerator: bool
) -> int | None:
    """The most test rows to generate for: ``setting`` as given (None: all), or for
    ``auto`` all on an accelerator and the CPU budget's share otherwise."""
    if setting != "auto":
        return None if setting is None else int(setting)
    if on_accelerator:
        return None
    return max(MIN_ROWS, int(CPU_ROW_BUDGET / max(1, parameters * new_tokens)))


def cap_generated_test(
    setting: int | str | None,
    test: pd.DataFrame,
    parameters: int,
    new_tokens: int,
    on_accelerator: bool,
    seed: int,
) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """``test`` cut to a seeded sample (in file order) of the rows
    :func:`generated_rows_limit` allows, logged, with what was kept for the data report;
    ``test`` itself and ``None`` where every row fits."""
    limit = generated_rows_limit(setting, parameters, new_tokens, on_accelerator)
    if limit is None or len(test) <= limit:
        return test, None
    kept = seeded_rows(test, limit, seed)
    if setting == "auto":
        log.info(
            "generation.max_eval_rows auto: scoring a seeded %s of the %s test rows, what a "
            "CPU generates in minutes with %.1fM parameters and %d new tokens an answer "
            "(--set generation.max_eval_rows=null scores them all)",
            f"{limit:,}", f"{len(test):,}", parameters / 1e6, new_tokens,
        )  # fmt: skip
    else:
        log.info("generation.max_eval_rows: scoring a seeded %s of the %s test rows",
                 f"{limit:,}", f"{len(test):,}")  # fmt: skip
    return kept, {"rows": limit, "of": len(test), "setting": setting}
