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
DPKG_INFO = Path("/var/lib/dpkg/info")
DOCS = Path("/usr/share/doc")


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


def catalog_licences(
    files: list[Path], info_dir: Path = DPKG_INFO, docs: Path = DOCS
) -> dict[str, dict[str, str]]:
    """The Debian package that installed each catalog and that package's licence.

    A catalog is part of its package's source and carries its licence: the first
    ``License:`` line of the package's machine-readable ``copyright`` file, or a pointer to
    that file where it is free text.

    Returns:
        ``{catalog name: {"package": ..., "licence": ...}}`` for the catalogs dpkg knows.
    """
    wanted = {str(path): path.stem for path in files}
    owners: dict[str, str] = {}
    for listing in sorted(info_dir.glob("*.list")) if info_dir.is_dir() else []:
        package = listing.stem.split(":")[0]  # libfoo:amd64.list -> libfoo
        for line in listing.read_text(encoding="utf-8", errors="replace").splitlines():
            if line in wanted:
                owners[wanted[line]] = package
    found = {}
    for catalog, package in sorted(owners.items()):
        copyright_file = docs / package / "copyright"
        text = copyright_file.read_text("utf-8", "replace") if copyright_file.is_file() else ""
        licences = [
            line[len("License:") :].strip() for line in text.splitlines()
            if line.startswith("License:") and line[len("License:") :].strip()
        ] if text.startswith("Format:") else []  # fmt: skip
        licence = licences[0] if licences else f"see {copyright_file}"
        found[catalog] = {"package": package, "licence": licence}
    return found
