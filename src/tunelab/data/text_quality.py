"""Damage and risks inside texts: broken encodings, control characters, markup, personal data."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

CHECKS: dict[str, re.Pattern[str]] = {
    "html_markup": re.compile(r"<[a-zA-Z/!][^<>]{0,200}>|&(?:[a-zA-Z]{2,8}|#\d{2,6});"),
    "urls": re.compile(r"https?://\S+|www\.[\w-]+\.\S+", re.IGNORECASE),
    # The look-behind starts a match only where a run of name characters starts: without it
    # a 10 MB cell with no '@' takes quadratic time.
    "emails": re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+\.[\w.]+"),
    # Chinese mobile numbers, and international or grouped numbers of 10+ digits
    "phone_numbers": re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)|\+\d[\d\s-]{8,}\d"),
}


def is_mojibake(text: str) -> bool:
    """Whether ``text`` looks like UTF-8 bytes that were decoded as Latin-1/CP1252 or GBK.

    Re-encoding with the wrong codec and decoding as UTF-8 then succeeds and gives a
    different, shorter text; for correctly decoded non-ASCII text it almost never does.
    """
    if text.isascii():
        return False
    for codec in ("latin-1", "cp1252", "gbk"):
        try:
            repaired = text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if repaired != text and len(repaired) < len(text):
            return True
    return False


# Unicode's control characters (category Cc: C0, DEL and C1) less tab, line feed and return
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_control_characters(text: str) -> bool:
    """Control characters other than tab and newlines (often a sign of binary junk)."""
    return _CONTROL.search(text) is not None


def text_problems(texts: pd.Series, examples: int = 3) -> dict[str, Any]:
    """Count rows with each kind of damage or risk, with a few example rows."""
    texts = texts.astype(str)
    flags = {
        "replacement_characters": texts.str.contains("\ufffd", regex=False),
        "mojibake": texts.map(is_mojibake),
        "control_characters": texts.map(has_control_characters),
    }
    for name, pattern in CHECKS.items():
        flags[name] = texts.map(lambda t, p=pattern: bool(p.search(t)))
    result = {}
    for name, flagged in flags.items():
        rows = list(texts.index[flagged.astype(bool)])
        result[name] = {
            "rows": len(rows),
            "examples": [{"row": int(r), "text": texts.loc[r][:100]} for r in rows[:examples]],
        }
    return result
