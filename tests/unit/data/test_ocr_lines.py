"""zh-ocr-lines: People's Daily clauses printed as line images with their text, test clauses
unseen in training, a data card; without the fonts, one sentence naming the packages."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
from PIL import Image

from tunelab import cli
from tunelab.data import cjk_glyphs
from tunelab.data.cjk_glyphs import FONT_PACKAGES
from tunelab.data.ocr_lines import CLAUSE, HEIGHT, MAX_WIDTH, build_zh_ocr_lines, clauses_by_split

needs_fonts = pytest.mark.skipif(
    not all(font.file.is_file() for font in FONT_PACKAGES),
    reason="needs apt-get install -y " + " ".join(font.package for font in FONT_PACKAGES),
)
ROWS = {"train": 24, "validation": 4, "test": 8}


def test_clauses_of_the_held_out_lines_never_occur_in_training() -> None:
    clauses = clauses_by_split()
    train = set(clauses["train"])
    assert len(train) > 40_000 and len(clauses["test"]) > 5_000
    for split in ("validation", "test"):
        assert not train & set(clauses[split])
    assert all(CLAUSE.fullmatch(c) for split in clauses.values() for c in split)


@needs_fonts
def test_line_images_with_their_text_and_a_data_card(tmp_path) -> None:
    summary = build_zh_ocr_lines(tmp_path / "a", rows=ROWS)
    assert summary["rows"] == ROWS
    frames = {split: pd.read_csv(tmp_path / "a" / f"{split}.csv") for split in ROWS}
    for split, frame in frames.items():
        assert list(frame.columns) == ["image", "text"] and len(frame) == ROWS[split]
        for path, text in zip(frame["image"], frame["text"], strict=True):
            assert CLAUSE.fullmatch(text)
            with Image.open(tmp_path / "a" / path) as image:
                # 32 px high; as wide as the text at that height (about one square per
                # character), squeezed to 320 at most
                assert image.size[1] == HEIGHT and len(text) * 20 <= image.size[0] <= MAX_WIDTH
    assert not set(frames["train"]["text"]) & set(frames["test"]["text"])
    test_chars = "".join(frames["test"]["text"])
    unseen = sum(char not in set("".join(frames["train"]["text"])) for char in test_chars)
    assert summary["test_characters"] == len(test_chars)
    assert summary["test_characters_unseen_in_training"] == unseen
    assert sum(card["images"] for card in summary["packages"]) == sum(ROWS.values())
    again = build_zh_ocr_lines(tmp_path / "b", rows=ROWS)  # the same lines, pixel for pixel
    assert again == summary
    first = frames["test"]["image"][0]
    assert (tmp_path / "a" / first).read_bytes() == (tmp_path / "b" / first).read_bytes()


def test_missing_fonts_or_another_seed_are_one_line(tmp_path, monkeypatch, capsys) -> None:
    gone = FONT_PACKAGES[0].__class__(FONT_PACKAGES[0].package, tmp_path / "nowhere.ttc",
                                      "hei", "GPL-2")  # fmt: skip
    monkeypatch.setattr(cjk_glyphs, "FONT_PACKAGES", (gone, *FONT_PACKAGES[1:]))
    cases = (([], "zh-ocr-lines renders characters from the Debian font packages"),
             (["--seed", "7"], "uses the People's Daily corpus's fixed split"))  # fmt: skip
    for extra, says in cases:
        out = tmp_path / "x"
        monkeypatch.setattr(sys, "argv", ["tunelab", "data", "example", "zh-ocr-lines",
                                          "--out", str(out), *extra])  # fmt: skip
        with pytest.raises(SystemExit) as stop:
            cli.main()
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and len(err.splitlines()) == 1 and says in err
        assert not out.exists()
