import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from tunelab.data.man_sections import (
    MAN_ROOT,
    near_duplicate_groups,
    section_rows,
    tidy_summary,
)
from tunelab.data.normalize import normalized_text
from tunelab.errors import UserError

COMMITTED = Path(__file__).resolve().parents[3] / "examples" / "data" / "en-man-sections"


def _page(folder: Path, name: str, summary: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.gz"
    path.write_bytes(
        gzip.compress(f".TH X 1\n.SH NAME\n{name.split('.')[0]} \\- {summary}\n".encode())
    )
    return path


def _owned(info: Path, package: str, *paths: Path) -> None:
    info.mkdir(parents=True, exist_ok=True)
    (info / f"{package}:amd64.list").write_text("".join(f"{p}\n" for p in paths))


def test_pages_get_their_section_and_package_and_strays_are_left_out(tmp_path):
    man, info = tmp_path / "man", tmp_path / "info"
    ls = _page(man / "man1", "ls.1", "list directory contents")
    read = _page(man / "man2", "read.2", "read from a file descriptor")
    alias = man / "man2" / "pread.2.gz"
    alias.symlink_to(read)  # an alias page: found through the file it points to
    lz4 = _page(man / "man1", "lz4.1", r"lz4, unlz4 \- Compress or decompress \.lz4 files")
    device = _page(man / "man4", "null.4", "data sink")  # section 4: too small, not kept
    cloud = _page(man / "man1", "gcloud-foo.1", "run a generated command")  # excluded package
    _page(man / "man3", "stray.3", "owned by no package")
    _owned(info, "coreutils", ls, lz4, device)
    _owned(info, "manpages-dev", read)
    _owned(info, "google-cloud-cli", cloud)

    rows = section_rows(man, info)
    assert rows[["page", "label", "package"]].values.tolist() == [
        ["ls.1", "user-command", "coreutils"],
        ["lz4.1", "user-command", "coreutils"],
        ["pread.2", "system-call", "manpages-dev"],
        ["read.2", "system-call", "manpages-dev"],
    ]
    assert rows.loc[rows["page"] == "lz4.1", "text"].item() == "Compress or decompress .lz4 files"


def test_no_package_database_points_to_the_committed_copy(tmp_path):
    _page(tmp_path / "man" / "man1", "ls.1", "list directory contents")
    with pytest.raises(UserError, match="examples/data/en-man-sections"):
        section_rows(tmp_path / "man", tmp_path / "no-info")


@pytest.mark.parametrize(
    ("raw", "tidy"),
    [
        (r"Find tag file entries \$1 \ level \ level margin: \] - \ \ \ ", "Find tag file entries"),
        (r"print user\'s login name", "print user's login name"),
        ("show the host name domainname - show the NIS domain name", "show the host name"),
        ("re-read a file descriptor", "re-read a file descriptor"),
    ],
)
def test_summaries_lose_leftover_roff(raw, tidy):
    assert tidy_summary(raw) == tidy


def test_variants_and_templates_share_a_group():
    frame = pd.DataFrame(
        {
            "page": ["fstatfs.2", "fstatfs64.2", "EVP_CIPHER-AES.7ssl", "EVP_CIPHER-ARIA.7ssl",
                     "ls.1"],
            "text": ["get filesystem statistics", "get file system statistics",
                     "The AES EVP_CIPHER implementations", "The ARIA EVP_CIPHER implementations",
                     "list directory contents"],
        }
    )  # fmt: skip
    groups = near_duplicate_groups(frame).tolist()
    assert groups[0] == groups[1] and groups[2] == groups[3]
    assert len(set(groups)) == 3


def test_installed_pages_are_read_and_traced(tmp_path):
    pages = (
        sorted((MAN_ROOT / "man2").glob("*.2.gz"))[:20]
        + sorted((MAN_ROOT / "man1").glob("*.1.gz"))[:20]
    )
    if len(pages) < 40 or not Path("/var/lib/dpkg/info").is_dir():
        pytest.skip("no English manual pages or no dpkg database on this machine")
    for page in pages:  # a small sample, linked: the packages list the real paths
        folder = tmp_path / page.parent.name
        folder.mkdir(exist_ok=True)
        (folder / page.name).symlink_to(page)
    rows = section_rows(tmp_path)
    assert len(rows) > 20
    assert set(rows["label"]) <= {"user-command", "system-call"}
    assert rows["package"].notna().all() and rows["text"].str.len().min() > 5


def test_committed_copy_keeps_texts_and_groups_on_one_side():
    splits = {n: pd.read_csv(COMMITTED / f"{n}.csv.gz") for n in ("train", "validation", "test")}
    summary = json.loads((COMMITTED / "dataset.json").read_text())
    assert {n: len(f) for n, f in splits.items()} == summary["rows"]
    everything = pd.concat(splits.values(), keys=list(splits)).reset_index(level=0)
    assert not everything["text"].map(normalized_text).duplicated().any()
    groups = near_duplicate_groups(everything.reset_index(drop=True))
    assert (everything.reset_index(drop=True).groupby(groups)["level_0"].nunique() == 1).all()
    assert everything["label"].nunique() == 6
