"""Build public sequence-labelling sets tunelab was never tuned on: WNUT-17 and the Broad
Twitter Corpus (English named entities in user-generated text, both CC BY 4.0).

- ``wnut17``: WNUT-17 emerging entities (Derczynski et al., W-NUT 2017) tags tweets, Reddit,
  YouTube and Stack Overflow comments with six types in BIO: person, location, group,
  corporation, product, creative-work. It was built to hold few repeated surface forms, so a
  model cannot learn the entities by heart. The shared task's split, from
  leondz/emerging_entities_17: ``wnut17train.conll``, ``emerging.dev.conll``,
  ``emerging.test.annotated``.
- ``btc``: the Broad Twitter Corpus (Derczynski et al., COLING 2016): tweets sampled across
  times, places and kinds of user, tagged PER, ORG and LOC in BIO. The authors' recommended
  split, from GateNLP/broad_twitter_corpus: ``train_dev_test_conll/btc.{train,dev,test}``
  (test: section F, the "Twitterati"; development: the second half of section H).

Each is written to ``<out>/<name>/{train,validation,test}.conll.gz`` unchanged (one token and
its tag a line, tab-separated, a blank line between sentences; gzipped at level 9 with a zero
timestamp, so a rerun writes the same bytes), with a data card. Both are CC BY 4.0, so the
files are committed (about 0.5 MB together).

How the raw files were obtained (no internet here; the ``fetch`` tool brings a public GitHub
repository's newest stored snapshot)::

    # fetch github:leondz/emerging_entities_17 (commit e52a2d2a71ac1a051ca2d532eef28653c5c02603)
    # fetch github:GateNLP/broad_twitter_corpus (commit 0c45ef7b1924a6b8115bceab388781590b1b553a)

Usage::

    .venv/bin/python benchmarks/data/unseen/prepare_tagging.py wnut17 \\
        --repo /work/.mirror/leondz+emerging_entities_17/repo
    .venv/bin/python benchmarks/data/unseen/prepare_tagging.py btc \\
        --repo /work/.mirror/GateNLP+broad_twitter_corpus/repo
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
LICENCE = "CC BY 4.0 (attribution above); the files are committed here under it"
SETS = {
    "wnut17": {
        "title": "WNUT-17 emerging and rare entities (6 types, BIO)",
        "text": "English tweets, Reddit, YouTube and Stack Overflow comments",
        "repository": "https://github.com/leondz/emerging_entities_17",
        "files": {"train": "wnut17train.conll", "validation": "emerging.dev.conll",
                  "test": "emerging.test.annotated"},
        "origin": "Derczynski, Nichols, van Erp, Limsopatham, 'Results of the WNUT2017 Shared "
        "Task on Novel and Emerging Entity Recognition', W-NUT at EMNLP 2017",
        "split": "The shared task's split, files unchanged.",
    },
    "btc": {
        "title": "Broad Twitter Corpus (PER, ORG, LOC; BIO)",
        "text": "English tweets from 2009-2014, stratified by time, place and kind of user",
        "repository": "https://github.com/GateNLP/broad_twitter_corpus",
        "files": {"train": "train_dev_test_conll/btc.train",
                  "validation": "train_dev_test_conll/btc.dev",
                  "test": "train_dev_test_conll/btc.test"},
        "origin": "Derczynski, Bontcheva, Roberts, 'Broad Twitter Corpus: A Diverse Named "
        "Entity Recognition Resource', COLING 2016",
        "split": "The authors' recommended split (test: section F; development: the second "
        "half of section H; training: the rest), files unchanged.",
    },
}  # fmt: skip


def sentences(text: str) -> list[list[tuple[str, str]]]:
    """The file's sentences as (token, tag) pairs."""
    found, current = [], []
    for line in text.splitlines():
        if not line.strip():
            if current:
                found.append(current)
            current = []
            continue
        token, tag = line.split("\t")[:2]
        current.append((token, tag.strip()))
    if current:
        found.append(current)
    return found


def data_card(name: str, splits: dict[str, list[list[tuple[str, str]]]], commit: str) -> str:
    entities = {
        split: Counter(tag[2:] for sentence in rows for _, tag in sentence if tag.startswith("B-"))
        for split, rows in splits.items()
    }
    kinds = sorted(set().union(*entities.values()))
    source = SETS[name]
    paths = ", ".join(f"`{path}` ({split})" for split, path in source["files"].items())
    lines = [
        f"# {name}: {source['title']}",
        "",
        f"- **Language / task**: {source['text']}; named-entity recognition (sequence labelling)",
        f"- **Source repository**: {source['repository']}",
        f"- **Paths**: {paths}",
        f"- **Commit**: `{commit}`",
        f"- **Original source**: {source['origin']}",
        f"- **Licence**: {LICENCE}",
        "- **Files**: `train.conll.gz`, `validation.conll.gz`, `test.conll.gz` (one token and "
        "its tag a line, tab-separated; a blank line between sentences; gzipped)",
        "- **Built by**: `benchmarks/data/unseen/prepare_tagging.py` (how the files were "
        "fetched: its docstring)",
        "",
        "## Counts (entities)",
        "",
        "| type | " + " | ".join(splits) + " | all |",
        "| --- | " + " | ".join("---:" for _ in splits) + " | ---: |",
    ]
    for kind in kinds:
        counts = [entities[split][kind] for split in splits]
        cells = " | ".join(f"{c:,}" for c in counts)
        lines.append(f"| {kind} | {cells} | {sum(counts):,} |")
    sizes = [len(rows) for rows in splits.values()]
    lines.append("| **sentences** | " + " | ".join(f"**{n:,}**" for n in sizes)
                 + f" | **{sum(sizes):,}** |")  # fmt: skip
    tokens = [sum(len(s) for s in rows) for rows in splits.values()]
    lines.append("| tokens | " + " | ".join(f"{n:,}" for n in tokens) + f" | {sum(tokens):,} |")
    lines += ["", source["split"], ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=sorted(SETS))
    parser.add_argument("--repo", type=Path, required=True, help="the fetched git directory")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()

    def git(*words: str) -> str:
        return subprocess.run(["git", "--git-dir", str(args.repo), *words], check=True,
                              capture_output=True, text=True).stdout  # fmt: skip

    commit = git("rev-parse", "HEAD").strip()
    folder = args.out / args.name
    folder.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, path in SETS[args.name]["files"].items():
        text = git("show", f"HEAD:{path}")
        with gzip.GzipFile(folder / f"{split}.conll.gz", "wb", 9, mtime=0) as packed:
            packed.write(text.encode("utf-8"))
        splits[split] = sentences(text)
    (folder / "DATA_CARD.md").write_text(data_card(args.name, splits, commit), encoding="utf-8")
    print({split: len(rows) for split, rows in splits.items()}, "->", folder)


if __name__ == "__main__":
    main()
