"""Which language a column of texts is written in, from its characters alone.

Enough to pick a model offline: Chinese text is told from English (and from other scripts)
by the share of CJK ideographs among its letters; no language-identification model needed.
"""

from __future__ import annotations

from collections.abc import Iterable

SAMPLE_TEXTS = 2000
CHINESE_SHARE = 0.3  # mixed Chinese-English reviews are still Chinese to a model
LATIN_SHARE = 0.7


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF


def detect_language(texts: Iterable[str]) -> str:
    """``zh`` for mostly Chinese text, ``en`` for text in Latin letters, else ``other``.

    Reads at most the first 2,000 texts; digits, punctuation and spaces do not count.
    """
    cjk = latin = letters = 0
    for count, text in enumerate(texts):
        if count >= SAMPLE_TEXTS:
            break
        for char in str(text):
            if not char.isalpha():
                continue
            letters += 1
            if _is_cjk(char):
                cjk += 1
            elif char.isascii():
                latin += 1
    if letters == 0:
        return "other"
    if cjk / letters >= CHINESE_SHARE:
        return "zh"
    return "en" if latin / letters >= LATIN_SHARE else "other"
