"""Build a public spoken-digit set tunelab was never tuned on: the Free Spoken Digit Dataset.

FSDD (Jakobovski et al., version 1.0.10) holds 3,000 recordings of the English digits zero
to nine, 50 of each digit by each of six speakers, mono WAV at 8 kHz, trimmed of most
silence. Real voices and microphones, where tunelab's own ``spoken-commands`` example is
synthesised by espeak-ng. Two layouts are written, as a user would arrange the files:

==============  ==================================================  ===================
name            split                                               clips train / test
==============  ==================================================  ===================
fsdd            the official one: recordings numbered 0-4 of each   2,700 / 300
                speaker and digit are test, 5-49 train
fsdd_speaker    one speaker held out: every recording by ``theo``   2,500 / 500
                is test, the other five speakers train
==============  ==================================================  ===================

Each is a folder of split folders of class folders, ``<out>/<name>/{train,test}/<digit>/
<file>.wav``, the files copied byte for byte, with a ``DATA_CARD.md``. There is no
validation split: tunelab carves one out of train, as it would for a user's folder.

How the raw files were obtained (no internet here; the ``fetch`` tool brings a public GitHub
repository's newest stored snapshot)::

    # fetch github:Jakobovski/free-spoken-digit-dataset (commit 26eb9aa1b7a5)
    G=/work/.mirror/Jakobovski+free-spoken-digit-dataset/repo
    .venv/bin/python benchmarks/data/unseen/prepare_fsdd.py --git-dir $G

The recordings are CC BY-SA 4.0, but at 21 MB of WAV they are not committed: the data card
and this script are.

Usage::

    .venv/bin/python benchmarks/data/unseen/prepare_fsdd.py --git-dir REPO [--out DIR]
"""

from __future__ import annotations

import argparse
import re
import subprocess
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMIT = "26eb9aa1b7a5"
HELD_OUT_SPEAKER = "theo"
NAME = re.compile(r"recordings/(\d)_([a-z]+)_(\d+)\.wav")


def recordings(git_dir: Path) -> list[tuple[str, str, str, int]]:
    """(path in the repository, digit, speaker, index) of every recording."""
    command = ["git", f"--git-dir={git_dir}", "ls-tree", "-r", "--name-only", "HEAD", "recordings/"]
    listing = subprocess.run(command, capture_output=True, text=True, check=True)
    found = []
    for path in listing.stdout.splitlines():
        match = NAME.fullmatch(path)
        if match:
            found.append((path, match[1], match[2], int(match[3])))
    return found


def blob(git_dir: Path, path: str) -> bytes:
    """One file of the repository snapshot, as bytes."""
    done = subprocess.run(["git", f"--git-dir={git_dir}", "show", f"HEAD:{path}"],
                          capture_output=True, check=True)  # fmt: skip
    return done.stdout


def split_of(layout: str, speaker: str, index: int) -> str:
    """Which split a recording belongs to in one layout."""
    if layout == "fsdd":
        return "test" if index < 5 else "train"
    return "test" if speaker == HELD_OUT_SPEAKER else "train"


def data_card(name: str, counts: Counter[tuple[str, str]], speakers: dict[str, set[str]]) -> str:
    """The data card of one layout: source, licence, split, counts."""
    if name == "fsdd":
        rule = ("recordings numbered 0-4 of each speaker and digit are test, 5-49 train (the "
                "official split; the same six speakers are in both)")  # fmt: skip
    else:
        rule = f"every recording by `{HELD_OUT_SPEAKER}` is test; the other five speakers train"
    lines = [
        f"# {name}: Free Spoken Digit Dataset",
        "",
        "- **Language / task**: English spoken digits 0-9; audio classification (10 classes)",
        "- **Source repository**: https://github.com/Jakobovski/free-spoken-digit-dataset",
        "- **Path**: `recordings/{digit}_{speaker}_{index}.wav`",
        f"- **Commit**: `{COMMIT}`",
        "- **Original source**: Zohar Jackson et al., Free Spoken Digit Dataset v1.0.10, "
        "Zenodo DOI 10.5281/zenodo.1342401",
        "- **Licence**: CC BY-SA 4.0; not committed here (21 MB of WAV): rebuild it with the "
        "script",
        f"- **Split**: {rule}",
        "- **Files**: `{train,test}/<digit>/<speaker>_<index>.wav`, mono 8 kHz 16-bit WAV, "
        "copied byte for byte",
        "- **Built by**: `benchmarks/data/unseen/prepare_fsdd.py`",
        "",
        "## Counts (clips)",
        "",
        "| digit | train | test |",
        "| --- | ---: | ---: |",
    ]
    for digit in sorted({d for d, _ in counts}):
        lines.append(f"| {digit} | {counts[digit, 'train']:,} | {counts[digit, 'test']:,} |")
    total = {s: sum(n for (_, split), n in counts.items() if split == s) for s in ("train", "test")}
    lines += [
        f"| **all** | **{total['train']:,}** | **{total['test']:,}** |",
        "",
        f"Speakers: train {', '.join(sorted(speakers['train']))}; "
        f"test {', '.join(sorted(speakers['test']))}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--git-dir", type=Path, required=True, help="the fetched repository")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    found = recordings(args.git_dir)
    if len(found) < 3000:
        raise SystemExit(f"{args.git_dir}: {len(found)} recordings found, expected 3,000 or more")
    for name in ("fsdd", "fsdd_speaker"):
        counts: Counter[tuple[str, str]] = Counter()
        speakers: dict[str, set[str]] = {"train": set(), "test": set()}
        for path, digit, speaker, index in found:
            split = split_of(name, speaker, index)
            target = args.out / name / split / digit / f"{speaker}_{index}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob(args.git_dir, path))
            counts[digit, split] += 1
            speakers[split].add(speaker)
        (args.out / name / "DATA_CARD.md").write_text(data_card(name, counts, speakers))
        print(f"{name}: {sum(counts.values()):,} clips written to {args.out / name}")


if __name__ == "__main__":
    main()
