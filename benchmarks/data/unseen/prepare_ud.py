"""Build two part-of-speech sets tunelab was never tuned on, from Universal Dependencies
treebanks (CC BY-SA 4.0): Chinese GSD in simplified characters and the English Web Treebank.

- ``ud_zh_gsdsimp``: UD_Chinese-GSDSimp (Wikipedia sentences, words segmented, 17 UPOS tags).
- ``ud_en_ewt``: UD_English-EWT (weblogs, newsgroups, emails, reviews, Yahoo! answers).

The treebanks' own ``train`` files are too large for the snapshot this machine can fetch
(only their names came through), so each set trains on the treebank's **dev** file and is
scored on its **test** file: a low-data tagging set (500 and 2,001 training sentences), not
the treebanks' full benchmark. Files are copied unchanged as CoNLL-U (``.conllu.gz``, gzipped
at level 9 with a zero timestamp, so a rerun writes the same bytes), with a data card. CC BY-SA
4.0 allows redistribution with attribution under the same licence, so they are committed.

How the raw files were obtained (no internet here; the ``fetch`` tool brings a public GitHub
repository's newest stored snapshot)::

    # fetch github:UniversalDependencies/UD_Chinese-GSDSimp
    #   (commit eb3aed31ebb170897405ee5cd1db83a1a0b11864)
    # fetch github:UniversalDependencies/UD_English-EWT
    #   (commit 15d613d8447b3478787d4c278730a1e48a945efb)

Usage::

    .venv/bin/python benchmarks/data/unseen/prepare_ud.py ud_zh_gsdsimp \\
        --repo /work/.mirror/UniversalDependencies+UD_Chinese-GSDSimp/repo
    .venv/bin/python benchmarks/data/unseen/prepare_ud.py ud_en_ewt \\
        --repo /work/.mirror/UniversalDependencies+UD_English-EWT/repo
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
LICENCE = "CC BY-SA 4.0 (attribution above); the files are committed here under it"
SETS = {
    "ud_zh_gsdsimp": {
        "title": "UD Chinese GSDSimp (17 UPOS tags)",
        "text": "Chinese Wikipedia sentences in simplified characters, segmented into words",
        "repository": "https://github.com/UniversalDependencies/UD_Chinese-GSDSimp",
        "files": {"train": "zh_gsdsimp-ud-dev.conllu", "test": "zh_gsdsimp-ud-test.conllu"},
        "origin": "Google's Chinese GSD treebank, converted to simplified characters by the UD "
        "project (UD 2.x); see the repository's README for its contributors",
    },
    "ud_en_ewt": {
        "title": "UD English EWT (17 UPOS tags)",
        "text": "English weblogs, newsgroups, emails, reviews and Yahoo! answers",
        "repository": "https://github.com/UniversalDependencies/UD_English-EWT",
        "files": {"train": "en_ewt-ud-dev.conllu", "test": "en_ewt-ud-test.conllu"},
        "origin": "Silveira et al., 'A Gold Standard Dependency Corpus for English', LREC 2014; "
        "the English Web Treebank (LDC2012T13) annotations, UD 2.x",
    },
}
SPLIT = (
    "The treebank's dev file is the training file here and its test file the test file; the "
    "treebank's train file (too large for the snapshot fetched) is not used. tunelab carves "
    "its validation rows out of the training file."
)


def _git_show(repo: Path, path: str) -> bytes:
    return subprocess.run(
        ["git", f"--git-dir={repo}", "show", f"HEAD:{path}"], check=True, capture_output=True
    ).stdout


def _commit(repo: Path) -> str:
    found = subprocess.run(
        ["git", f"--git-dir={repo}", "rev-parse", "HEAD"], check=True, capture_output=True
    )
    return found.stdout.decode().strip()


def _counts(text: str) -> tuple[int, int, Counter]:
    """Sentences, words and UPOS counts of a CoNLL-U text (ranges and empty nodes left out)."""
    sentences, words, tags = 0, 0, Counter()
    for line in text.splitlines():
        if line.startswith("# sent_id"):
            sentences += 1
        fields = line.split("\t")
        if len(fields) == 10 and "-" not in fields[0] and "." not in fields[0]:
            words += 1
            tags[fields[3]] += 1
    return sentences, words, tags


def build(name: str, repo: Path, out: Path) -> None:
    """Write ``out/name/{train,test}.conllu.gz`` and the data card."""
    spec = SETS[name]
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, path in spec["files"].items():
        raw = _git_show(repo, path)
        (folder / f"{split}.conllu.gz").write_bytes(gzip.compress(raw, 9, mtime=0))
        counts[split] = _counts(raw.decode("utf-8"))
    tags = sorted(set().union(*(c[2] for c in counts.values())))
    rows = [f"| {tag} | " + " | ".join(f"{counts[s][2][tag]:,}" for s in counts) + " |"
            for tag in tags]  # fmt: skip
    card = [
        f"# {name}: {spec['title']}",
        "",
        f"- **Language / task**: {spec['text']}; part-of-speech tagging (sequence labelling)",
        f"- **Source repository**: {spec['repository']}",
        "- **Paths**: " + ", ".join(f"`{p}` ({s})" for s, p in spec["files"].items()),
        f"- **Commit**: `{_commit(repo)}`",
        f"- **Original source**: {spec['origin']}",
        f"- **Licence**: {LICENCE}",
        "- **Files**: `train.conllu.gz`, `test.conllu.gz` (CoNLL-U, unchanged; gzipped)",
        "- **Built by**: `benchmarks/data/unseen/prepare_ud.py` (how the files were fetched: "
        "its docstring)",
        "",
        "## Counts (UPOS tags of words)",
        "",
        "| tag | " + " | ".join(counts) + " |",
        "| --- | " + " | ".join("---:" for _ in counts) + " |",
        *rows,
        "| **sentences** | " + " | ".join(f"**{c[0]:,}**" for c in counts.values()) + " |",
        "| words | " + " | ".join(f"{c[1]:,}" for c in counts.values()) + " |",
        "",
        SPLIT,
        "",
    ]
    (folder / "DATA_CARD.md").write_text("\n".join(card), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(SETS))
    parser.add_argument("--repo", type=Path, required=True, help="the fetched bare repository")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    build(args.name, args.repo, args.out)


if __name__ == "__main__":
    main()
