"""English→Chinese message pairs from the system's gettext catalogs (software localisation).

Every ``zh_CN`` ``.mo`` file under the locale folder maps English interface messages
(``msgid``) to their Simplified Chinese translation (``msgstr``). The standard library's
:mod:`gettext` reads them; nothing is downloaded.
"""

from __future__ import annotations

import gettext
from pathlib import Path

import pandas as pd

from tunelab.errors import UserError

LOCALE_DIRS = (
    Path("/usr/share/locale/zh_CN/LC_MESSAGES"),
    Path("/usr/local/share/locale/zh_CN/LC_MESSAGES"),
)
MAX_CHARACTERS = 400  # longer entries are help screens, not messages


def catalog_files(folders: tuple[Path, ...] = LOCALE_DIRS) -> list[Path]:
    """The ``zh_CN`` ``.mo`` catalogs installed on this system."""
    return sorted(path for folder in folders if folder.is_dir() for path in folder.glob("*.mo"))


def message_pairs(files: list[Path]) -> pd.DataFrame:
    """Singular, translated messages of ``files`` as rows (catalog, source, target).

    Skipped: the header entry, plural forms, untranslated or fuzzy-empty entries, entries
    whose translation equals the source, and entries longer than ``MAX_CHARACTERS``.
    Message contexts (``msgctxt``) are dropped from the source text.
    """
    rows = []
    for path in files:
        try:
            with path.open("rb") as handle:
                catalog = gettext.GNUTranslations(handle)._catalog
        except (OSError, ValueError, UnicodeDecodeError):
            continue  # a damaged catalog: the others still make a data set
        for key, target in catalog.items():
            if not isinstance(key, str) or not key or not target:
                continue
            source = key.split("\x04", 1)[-1]  # "context\x04message"
            if source == target or max(len(source), len(target)) > MAX_CHARACTERS:
                continue
            rows.append({"catalog": path.stem, "source": source, "target": target})
    return pd.DataFrame(rows, columns=["catalog", "source", "target"])


def require_pairs(frame: pd.DataFrame, minimum: int = 200) -> None:
    """Fail clearly on a system with (almost) no Chinese catalogs."""
    if len(frame) < minimum:
        folders = ", ".join(str(f) for f in LOCALE_DIRS)
        raise UserError(
            f"found only {len(frame)} English→Chinese messages in {folders}; en-zh-l10n needs "
            f"at least {minimum} (install packages' translations, e.g. apt-get install "
            "locales-all, or use your own source/target file)"
        )
