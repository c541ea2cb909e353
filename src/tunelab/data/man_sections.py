"""English text classification from the installed manual pages: which section is a page in?

A page's one-line NAME summary (``list directory contents``) is the text, the manual section
it lives in the label: user commands (1), system calls (2), library functions (3), file
formats (5), overviews and conventions (7), administration commands (8). Sections 4 (special
files) and 6 (games) hold too few pages to learn and are left out. Telling a system call from
a library function, or a user command from an administration command, by its summary alone
is hard enough that a TF-IDF baseline lands well short of perfect.

Each page is traced to the Debian package that installed it (``/var/lib/dpkg/info/*.list``),
so its licence can be looked up in ``/usr/share/doc/<package>/copyright``; pages no package
owns, and the packages in ``EXCLUDED_PACKAGES``, are left out.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from tunelab.data.manpages import MAN_ROOT, name_summary, page_sections
from tunelab.errors import UserError

DPKG_INFO = Path("/var/lib/dpkg/info")
SECTION_LABELS = {
    "1": "user-command",
    "2": "system-call",
    "3": "library-function",
    "5": "file-format",
    "7": "overview",
    "8": "admin-command",
}
EXCLUDED_PACKAGES = {
    # 16,631 pages generated from one template for one tool, from Google's own apt
    # repository: they would be five pages in six of the data and all alike
    "google-cloud-cli": "generated pages of one tool, not from the Debian archive",
    # installed from NodeSource's repository on the machine the committed copy was built on
    "nodejs": "installed from NodeSource, not the Debian archive",
}
COMMITTED_COPY = "examples/data/en-man-sections/ in the tunelab repository"
MAX_SUMMARY_WORDS = 25  # longer NAME "summaries" are tables of contents the parser ran into


def tidy_summary(text: str) -> str:
    """A NAME summary without the roff the common-request parser leaves in a few pages.

    Universal Ctags' pages end their NAME line in an unexpanded macro (``\\$1 \\ level``),
    and escaped punctuation (``\\.lz4``, ``user\\'s``) keeps its backslash; a NAME line that
    names several programs loses the list before its dash (``lz4, lz4cat - Compress ...``)
    and is cut before the second program (``... bzcat - decompresses ...``).
    """
    text = text.split("\\$", 1)[0]
    text = re.sub(r"\\(.)", r"\1", text)
    text = re.sub(r"^[\w.+-]+(,\s*[\w.+-]+)*\s+-\s+", "", text)  # "lz4, lz4cat - Compress"
    text = re.split(r"\s+[\w.+-]+\s+-\s+", text, maxsplit=1)[0]
    return re.sub(r"\s+", " ", text).strip()


def page_packages(info_dir: Path = DPKG_INFO) -> dict[str, str]:
    """The Debian package that installed each manual page, by the page's real path.

    Pages reached through a symbolic link (``update-alternatives``, or an alias page) are
    looked up by the file the link points to, which is the one the package lists.
    """
    owners: dict[str, str] = {}
    for listing in sorted(info_dir.glob("*.list")):
        package = listing.stem.split(":")[0]  # libfoo:amd64.list -> libfoo
        for line in listing.read_text(encoding="utf-8", errors="replace").splitlines():
            if "/man/man" in line:
                owners[line] = package
    return owners


def section_rows(root: Path = MAN_ROOT, info_dir: Path = DPKG_INFO) -> pd.DataFrame:
    """One row per English page of a kept section: text, label, page, package, section.

    Raises:
        UserError: where no package database tells who installed the pages.
    """
    owners = page_packages(info_dir)
    if not owners:
        raise UserError(
            f"no Debian package lists under {info_dir}, so the licence of the manual pages "
            f"cannot be traced; use the committed copy in {COMMITTED_COPY}"
        )
    rows = []
    for folder in sorted(root.glob("man[1-8]")):
        section = folder.name.removeprefix("man")
        if section not in SECTION_LABELS:
            continue
        for path in sorted(folder.iterdir()):
            package = owners.get(str(path)) or owners.get(os.path.realpath(path))
            if package is None or package in EXCLUDED_PACKAGES:
                continue
            summary = tidy_summary(name_summary(page_sections(path).get("NAME", [])) or "")
            if not 2 <= len(summary.split()) <= MAX_SUMMARY_WORDS:
                continue
            page = path.name.removesuffix(".gz")
            rows.append(
                {
                    "text": summary,
                    "label": SECTION_LABELS[section],
                    "page": page,
                    "package": package,
                    "section": page.rsplit(".", 1)[-1],  # 3, 3ssl, 3pm, ...
                }
            )
    return pd.DataFrame(rows, columns=["text", "label", "page", "package", "section"])


def _page_stem(page: str) -> str:
    """``fstatfs64.2`` -> ``fstatfs``: the name a page's variants share."""
    name = re.sub(r"\.[1-8][a-z]*$", "", page).lower()
    return re.sub(r"\d+$", "", name)


def _templated_summary(row: pd.Series) -> str:
    """The summary without the words of its page's name.

    ``The AES EVP_CIPHER implementations`` on page ``EVP_CIPHER-AES`` and the same sentence
    about ARIA on ``EVP_CIPHER-ARIA`` both become ``the implementations``: one template.
    """
    own = set(re.split(r"[^a-z0-9]+", _page_stem(row["page"])))
    words = re.findall(r"[a-z0-9]+", row["text"].lower())
    return " ".join(word for word in words if word not in own)


def near_duplicate_groups(frame: pd.DataFrame) -> pd.Series:
    """A group id per row; pages that share a name stem or a summary template share one.

    Keeps ``foo``/``foo64``, ``iso-8859-1``/``iso-8859-15`` and the ``CREATE X`` /
    ``systemd.X`` families each in one split, so the test set measures pages whose like was
    not seen in training.
    """
    parent = list(range(len(frame)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for keys in (frame["page"].map(_page_stem), frame.apply(_templated_summary, axis=1)):
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key in first:
                parent[root(i)] = root(first[key])
            else:
                first[key] = i
    return pd.Series([root(i) for i in range(len(frame))], index=frame.index)


def require_sections(frame: pd.DataFrame, minimum: int = 300) -> None:
    """Fail clearly where too few manual pages are installed to build the set."""
    if len(frame) < minimum or frame["label"].nunique() < len(SECTION_LABELS):
        raise UserError(
            f"found {len(frame)} usable manual pages in {frame['label'].nunique()} of the "
            f"{len(SECTION_LABELS)} sections under {MAN_ROOT}; en-man-sections needs at least "
            f"{minimum} in all of them (install man-db, manpages and manpages-dev, and remove "
            "any path-exclude of /usr/share/man in /etc/dpkg/dpkg.cfg.d/), or use the "
            f"committed copy in {COMMITTED_COPY}"
        )
