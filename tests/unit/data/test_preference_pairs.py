"""en-zh-prefs: translation preference pairs built from (here: fake) gettext catalogs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd

from tests.unit.data.test_examples import write_catalog
from tunelab.data.examples import build_en_zh_prefs
from tunelab.data.gettext_pairs import catalog_licences
from tunelab.data.normalize import normalized_text
from tunelab.data.preference_pairs import KINDS, preference_rows

DIGITS = "零一二三四五六七八九"


def fake_catalogs(folder: Path) -> list[Path]:
    """Two catalogs of 180 numbered messages of varied length; 20 messages in both, translated
    differently (as real catalogs do), and some one-character translations."""
    folder.mkdir()
    files = []
    for name, numbers in (("alpha", range(0, 180)), ("beta", range(160, 340))):
        entries = {b"": b"Content-Type: text/plain; charset=UTF-8\n"}
        for i in numbers:
            words = " ".join(["file"] * (i % 7))
            source = f"Message {i} {words}".strip()
            target = "".join(DIGITS[int(d)] for d in str(i)) + "号消息" + "文件" * (i % 7)
            if name == "beta" and i < 180:
                target += "栏"
            if i % 50 == 0:
                source, target = f"Yes {i}", "是"  # one character: nothing to cut or shuffle
            entries[source.encode()] = target.encode()
        files.append(write_catalog(folder / f"{name}.mo", entries))
    return files


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_en_zh_prefs_is_deterministic_disjoint_and_never_prefers_the_same(tmp_path):
    files = fake_catalogs(tmp_path / "locale")
    summary = build_en_zh_prefs(tmp_path / "a", seed=3, catalogs=files)
    build_en_zh_prefs(tmp_path / "b", seed=3, catalogs=files)
    build_en_zh_prefs(tmp_path / "c", seed=4, catalogs=files)
    splits = ("train", "validation", "test")
    for split in splits:  # the same catalogs and seed give the same files
        assert (tmp_path / "a" / f"{split}.jsonl").read_bytes() == (
            tmp_path / "b" / f"{split}.jsonl"
        ).read_bytes()
        assert (tmp_path / "a" / "kto" / f"{split}.jsonl").read_bytes() == (
            tmp_path / "b" / "kto" / f"{split}.jsonl"
        ).read_bytes()
    assert (tmp_path / "a" / "train.jsonl").read_bytes() != (
        tmp_path / "c" / "train.jsonl"
    ).read_bytes()
    pairs = {split: read(tmp_path / "a" / f"{split}.jsonl") for split in splits}
    messages = {
        split: [normalized_text(r["prompt"]) for r in rows] for split, rows in pairs.items()
    }
    assert sum(len(m) for m in messages.values()) == 340  # one pair per English message
    for split, keys in messages.items():
        assert len(keys) == len(set(keys))
        for other in splits:
            assert other == split or not set(keys) & set(messages[other])
    rows = [r for split in splits for r in pairs[split]]
    assert all(r["prompt"].startswith("Translate into Chinese: Message") or
               r["prompt"].startswith("Translate into Chinese: Yes") for r in rows)  # fmt: skip
    assert all(normalized_text(r["rejected"]) != normalized_text(r["chosen"]) for r in rows)
    assert {r["corruption"] for r in rows} == set(KINDS)
    for r in rows:
        if r["corruption"] == "untranslated":
            assert r["rejected"] == r["prompt"].removeprefix("Translate into Chinese: ")
        if r["corruption"] in ("truncated", "dropped"):
            assert len(r["rejected"]) < len(r["chosen"])
        if r["corruption"] == "shuffled":
            assert sorted(r["rejected"]) == sorted(r["chosen"].strip())
    # a held-out message's translation is never a rejected answer in training
    held_out = {r["chosen"] for split in ("validation", "test") for r in pairs[split]}
    assert not held_out & {r["rejected"] for r in pairs["train"]}
    # KTO: every pair as one good and one bad answer
    for split in splits:
        kto = read(tmp_path / "a" / "kto" / f"{split}.jsonl")
        assert len(kto) == 2 * len(pairs[split])
        good = {(r["prompt"], r["completion"]) for r in kto if r["label"]}
        bad = {(r["prompt"], r["completion"]) for r in kto if not r["label"]}
        assert good == {(r["prompt"], r["chosen"]) for r in pairs[split]}
        assert bad == {(r["prompt"], r["rejected"]) for r in pairs[split]}
    card = json.loads((tmp_path / "a" / "dataset.json").read_text())
    assert card == json.loads(json.dumps(summary))
    assert card["rows"] == {split: len(rows) for split, rows in pairs.items()}
    assert sum(card["corruption"]["train"].values()) == card["rows"]["train"]
    assert set(card["catalogs"]) == {"alpha", "beta"} and "licence" in card


def test_a_corruption_that_changes_nothing_becomes_another_message():
    frame = pd.DataFrame({"source": ["Yes", "Open the file", "Close"],
                          "target": ["是", "打开文件", "关闭"], "catalog": "demo"})  # fmt: skip
    for seed in range(20):
        rows = preference_rows(frame, random.Random(seed))
        yes = rows[0]
        assert yes["rejected"] != "是"
        if yes["corruption"] != "untranslated":  # "是" cannot be cut, dropped or shuffled
            assert yes["corruption"] == "other_message" and yes["rejected"] in ("打开文件", "关闭")


def test_catalogs_are_traced_to_their_package_licence(tmp_path):
    catalog = tmp_path / "locale" / "demo.mo"
    info, docs = tmp_path / "info", tmp_path / "doc"
    info.mkdir()
    (info / "demo-l10n:amd64.list").write_text(f"/usr/share\n{catalog}\n")
    (docs / "demo-l10n").mkdir(parents=True)
    (docs / "demo-l10n" / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: someone\nLicense: GPL-3+\n"
    )
    assert catalog_licences([catalog], info, docs) == {
        "demo": {"package": "demo-l10n", "licence": "GPL-3+"}
    }
