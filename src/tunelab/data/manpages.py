"""Summarisation pairs from the installed manual pages: DESCRIPTION → the NAME line.

Each man(7)-format page has a NAME section (``ls \\- list directory contents``) and a
DESCRIPTION section. The description is the source, the one-line summary after the dash
the target. Only the common roff requests and escapes are interpreted; that is enough for
readable text, and pages in other formats (mdoc) or without both sections are skipped.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pandas as pd

from tunelab.errors import UserError

MAN_ROOT = Path("/usr/share/man")
MAX_SOURCE_CHARACTERS = 1200  # the first paragraphs: enough to summarise, short to train on

_NAMED_GLYPHS = {
    "em": "—", "en": "–", "aq": "'", "dq": '"', "lq": "“", "rq": "”", "oq": "‘", "cq": "’",
    "bu": "•", "co": "©", "rg": "®", "tm": "™", "mu": "×", "de": "°", "hy": "-", "ti": "~",
    "ha": "^", "rs": "\\", "sl": "/", "ga": "`", "at": "@", "sh": "#", "Do": "$", "Fo": "«",
    "Fc": "»", "ge": "≥", "le": "≤", "->": "→", "<-": "←",
}  # fmt: skip
_ESCAPES = [
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),  # font changes
    (re.compile(r"\\s[+-]?\d"), ""),  # size changes
    (re.compile(r"\\\*(\[[^\]]*\]|\(..|.)"), ""),  # string registers
    (re.compile(r"\\[nk](\[[^\]]*\]|\(..|.)"), ""),  # number registers, marks
    (re.compile(r"\\\((..)"), lambda m: _NAMED_GLYPHS.get(m.group(1), "")),
    (re.compile(r"\\\[([^\]]*)\]"), lambda m: _NAMED_GLYPHS.get(m.group(1), "")),
    (re.compile(r"\\[-]"), "-"),
    (re.compile(r"\\[e\\]"), "\\\\"),
    (re.compile(r"\\[ ~0]"), " "),
    (re.compile(r"\\[&|^%:)c]"), ""),
    (re.compile(r"\\\"(.*)$"), ""),  # comment at the end of a line
]
_BREAKS = {"PP", "LP", "P", "TP", "IP", "HP", "sp", "SS", "RS", "RE", "nf", "fi", "br", "TQ"}
_FONT_MACROS = {"B", "I", "R", "SM", "SB", "BI", "BR", "IB", "IR", "RB", "RI"}


def plain_text(line: str) -> str:
    """A roff text line without its escapes."""
    for pattern, replacement in _ESCAPES:
        line = pattern.sub(replacement, line)
    return line


def _macro_words(arguments: str) -> list[str]:
    words = re.findall(r'"((?:[^"]|"")*)"|(\S+)', arguments)
    return [quoted or bare for quoted, bare in words]


def sections(source: str) -> dict[str, list[str]]:
    """Each ``.SH`` section of a man(7) page as paragraphs of plain text."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    paragraph: list[str] = []

    def flush() -> None:
        if current is not None and paragraph:
            text = re.sub(r"\s+", " ", " ".join(paragraph)).strip()
            if text:
                current.append(text)
        paragraph.clear()

    for raw in source.splitlines():
        if raw.startswith(('.\\"', "'\\\"", '.\\"')):
            continue
        if raw.startswith((".", "'")):
            name, _, arguments = raw[1:].strip().partition(" ")
            if name in ("SH", "Sh"):
                flush()
                title = plain_text(" ".join(_macro_words(arguments))).strip().upper()
                current = found.setdefault(title, [])
            elif name in _BREAKS:
                flush()
            elif name in _FONT_MACROS:
                words = [plain_text(w) for w in _macro_words(arguments)]
                # alternating-font macros (.BR ls (1)) join their words without spaces
                paragraph.append(("" if len(name) == 2 and name != "SM" else " ").join(words))
            continue
        paragraph.append(plain_text(raw))
    flush()
    return found


def name_summary(paragraphs: list[str]) -> str | None:
    """The summary after the dash of a NAME section (``ls - list directory contents``)."""
    text = " ".join(paragraphs)
    parts = re.split(r"\s+[-–—]+\s+", text, maxsplit=1)
    return parts[1].strip() if len(parts) == 2 and parts[1].strip() else None


def page_sections(path: Path) -> dict[str, list[str]]:
    """The sections of one page file (gzipped or not); none where it cannot be read."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile):
        return {}
    return sections(raw.decode("utf-8", errors="replace"))


def page_pair(path: Path) -> dict[str, str] | None:
    """``{"page", "source", "target"}`` of one page, or None where it has no usable pair."""
    found = page_sections(path)
    summary = name_summary(found.get("NAME", []))
    description: list[str] = []
    for paragraph in found.get("DESCRIPTION", []):
        if description and len(" ".join(description)) + len(paragraph) > MAX_SOURCE_CHARACTERS:
            break
        description.append(paragraph)
    source = " ".join(description)[:MAX_SOURCE_CHARACTERS]
    if not summary or len(summary.split()) < 2 or len(source.split()) < 12:
        return None
    page = path.name.removesuffix(".gz")
    return {"page": page, "source": source, "target": summary}


def manual_pairs(root: Path = MAN_ROOT, sections_glob: str = "man[1-8]") -> pd.DataFrame:
    """Every usable English page under ``root`` as a row (page, source, target)."""
    paths = sorted(path for folder in root.glob(sections_glob) for path in folder.iterdir())
    rows = [pair for pair in map(page_pair, paths) if pair is not None]
    return pd.DataFrame(rows, columns=["page", "source", "target"])


def require_pages(frame: pd.DataFrame, minimum: int = 200) -> None:
    """Fail clearly on a system with (almost) no manual pages installed."""
    if len(frame) < minimum:
        raise UserError(
            f"found only {len(frame)} manual pages with NAME and DESCRIPTION sections under "
            f"{MAN_ROOT}; man-summary needs at least {minimum} (install man-db and manpages, "
            "and remove the path-exclude of /usr/share/man in /etc/dpkg/dpkg.cfg.d/ if any)"
        )
