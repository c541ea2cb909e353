"""zh-lookalikes: characters rendered from Debian's CJK font packages as class folders with a
data card; without the fonts, one sentence naming the packages to install."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import pytest
from PIL import Image

from tunelab import cli
from tunelab.data import cjk_glyphs
from tunelab.data.cjk_glyphs import FONT_PACKAGES, LOOKALIKES, build_zh_lookalikes
from tunelab.data.image_doctor import diagnose_images
from tunelab.data.load import read_table
from tunelab.tasks.image_classification import ImageClassification

needs_fonts = pytest.mark.skipif(
    not all(font.file.is_file() for font in FONT_PACKAGES),
    reason="needs apt-get install -y " + " ".join(font.package for font in FONT_PACKAGES),
)


def test_missing_fonts_are_one_line_naming_the_packages(tmp_path, monkeypatch, capsys):
    present = tmp_path / "present.ttc"  # the other two count as installed on any machine
    present.write_bytes(b"")
    fonts = [replace(font, file=present) for font in FONT_PACKAGES]
    fonts[1] = replace(fonts[1], file=tmp_path / "nowhere.ttc")
    monkeypatch.setattr(cjk_glyphs, "FONT_PACKAGES", tuple(fonts))
    monkeypatch.setattr(
        sys, "argv", ["tunelab", "data", "example", "zh-lookalikes", "--out", str(tmp_path / "x")]
    )
    with pytest.raises(SystemExit) as stop:
        cli.main()
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1
    assert "fonts-arphic-ukai is not installed" in err
    assert err.endswith("apt-get install -y fonts-wqy-zenhei fonts-arphic-ukai fonts-arphic-uming")
    assert not (tmp_path / "x").exists()


@needs_fonts
def test_class_folders_of_renderings_with_a_data_card(tmp_path):
    summary = build_zh_lookalikes(tmp_path / "a", seed=42, per_class=10)
    assert summary["rows"] == {"train": 192, "validation": 24, "test": 24}
    card = json.loads((tmp_path / "a" / "dataset.json").read_text(encoding="utf-8"))
    assert card == json.loads(json.dumps(summary, ensure_ascii=False))
    assert {p["package"] for p in card["packages"]} == {f.package for f in FONT_PACKAGES}
    assert {p["licence"] for p in card["packages"]} == {
        "GPL-2 with font embedding exception",
        "Arphic Public License",
    }
    assert sum(p["images"] for p in card["packages"]) == 240
    assert all(p["faces"] for p in card["packages"])  # every package drawn from

    train = read_table(tmp_path / "a" / "train")
    assert set(train["label"]) == set(LOOKALIKES) and len(LOOKALIKES) == 24
    image = Image.open(train["image"].iloc[0])
    assert image.size == (48, 48) and image.format == "PNG"

    # the renderings do not depend on the split seed; the split does
    other = build_zh_lookalikes(tmp_path / "b", seed=7, per_class=10)
    first = sorted((tmp_path / "a").glob("*/*/00001.png"))[0]
    again = sorted((tmp_path / "b").glob("*/*/00001.png"))[0]
    assert first.read_bytes() == again.read_bytes()
    assert other["rows"] == summary["rows"]
    assert {p.name for p in (tmp_path / "a" / "test").glob("*/*.png")} != {
        p.name for p in (tmp_path / "b" / "test").glob("*/*.png")
    }


@needs_fonts
def test_the_image_doctor_finds_no_leakage_in_it(tmp_path):
    build_zh_lookalikes(tmp_path, per_class=20)
    task = ImageClassification()
    splits = ("train", "validation", "test")
    frames = {s: task.standardize(read_table(tmp_path / s)) for s in splits}
    report = diagnose_images(frames, "path", "label", 32)
    assert all(leak["near"] == 0 for leak in report["leakage"].values())
    assert report["images"]["train"]["class_balance"]["classes"] == 24
