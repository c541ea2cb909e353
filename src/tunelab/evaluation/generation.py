"""Metrics of generated text: ROUGE, BLEU, chrF, exact match, lengths.

Chinese and other unspaced scripts have no words to count, so ROUGE reads them one
character at a time (and words elsewhere), and sacreBLEU uses its ``zh`` tokenizer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tunelab.data.normalize import WIDE_CHARACTERS
from tunelab.data.tool_calls import call_metrics

_WIDE = re.compile(f"[{WIDE_CHARACTERS}]")
# a CJK character alone, or a run of other word characters
_UNITS = re.compile(f"[{WIDE_CHARACTERS}]|[^\\W{WIDE_CHARACTERS}]+")


def is_unspaced(texts: Sequence[str]) -> bool:
    """Whether most characters of ``texts`` are CJK (score by characters, not words)."""
    sample = "".join(texts[:500])
    letters = sum(ch.isalnum() for ch in sample)
    return bool(letters) and len(_WIDE.findall(sample)) / letters > 0.3


class _UnitTokenizer:
    """rouge-score tokenizer: CJK characters one by one, other words whole, lower-cased."""

    def tokenize(self, text: str) -> list[str]:
        return _UNITS.findall(text.lower())


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure (character units for CJK text, words otherwise)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=_UnitTokenizer())
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for prediction, reference in zip(predictions, references, strict=True):
        for name, score in scorer.score(reference, prediction).items():
            totals[name] += score.fmeasure
    count = max(len(predictions), 1)
    return {name: total / count for name, total in totals.items()}


def generation_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """ROUGE-1/2/L, BLEU and chrF (sacreBLEU), exact match, and mean lengths in characters;
    where references call tools, how often the answers make the same calls
    (:func:`tunelab.data.tool_calls.call_metrics`)."""
    import sacrebleu

    predictions, references = list(predictions), list(references)
    tokenize = "zh" if is_unspaced(references) else "13a"
    bleu = sacrebleu.corpus_bleu(predictions, [references], tokenize=tokenize)
    chrf = sacrebleu.corpus_chrf(predictions, [references])
    count = max(len(predictions), 1)
    return {
        **rouge(predictions, references),
        "bleu": float(bleu.score),
        "chrf": float(chrf.score),
        "exact_match": sum(
            p.strip() == r.strip() for p, r in zip(predictions, references, strict=True)
        )
        / count,
        "generated_length": sum(len(p) for p in predictions) / count,
        "reference_length": sum(len(r) for r in references) / count,
        "bleu_tokenize": tokenize,
        **call_metrics(predictions, references),
    }
