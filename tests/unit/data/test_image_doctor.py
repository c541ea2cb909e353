"""The image doctor finds what was planted in generated image folders (unreadable files, exact
and near duplicates, leakage, odd sizes, imbalance), training prints it, ``tunelab doctor``
reports it, and ``--strict`` stops at the first unreadable image naming its row and path."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image, ImageEnhance

from tests.unit.data.test_image_hashes import shapes
from tunelab import cli
from tunelab.config import RunConfig
from tunelab.data.image_doctor import diagnose_images, image_doctor_lines
from tunelab.data.load import read_table
from tunelab.errors import UserError
from tunelab.tasks.image_classification import ImageClassification, model_input_side
from tunelab.training.prepare import load_splits


def planted(root: Path) -> dict[str, Path]:
    """train/validation/test class folders of distinct 64x64 pictures, with known problems;
    returns the planted files by what is wrong with them."""
    number = 0
    for split, count in (("train", 24), ("validation", 6), ("test", 6)):
        for label in ("a", "b"):
            (root / split / label).mkdir(parents=True, exist_ok=True)
            for _ in range(count if label == "a" else count // 2):
                shapes(number).save(root / split / label / f"{number}.png")
                number += 1
    a = root / "train" / "a"
    files = {
        "brighter": a / "0-brighter.png",
        "copy": a / "1-copy.png",
        "leaked_near": root / "test" / "a" / "2-resized.jpg",
        "leaked_exact": root / "validation" / "b" / "3-copy.png",
        "wide": a / "wide.png",
        "tiny": a / "tiny.png",
        "huge": a / "huge.png",
        "broken": a / "broken.jpg",
    }
    ImageEnhance.Brightness(Image.open(a / "0.png")).enhance(1.1).save(files["brighter"])
    files["copy"].write_bytes((a / "1.png").read_bytes())
    Image.open(a / "2.png").convert("RGB").resize((48, 48)).save(files["leaked_near"], quality=80)
    files["leaked_exact"].write_bytes((a / "3.png").read_bytes())
    shapes(900).resize((200, 40)).save(files["wide"])
    shapes(901).resize((16, 16)).save(files["tiny"])
    shapes(902).resize((600, 600)).save(files["huge"])
    Image.new("RGB", (64, 64), (200, 0, 0)).save(files["broken"])
    files["broken"].write_bytes(files["broken"].read_bytes()[:200])  # cut off mid-scan
    return {name: path.resolve() for name, path in files.items()}


def splits(root: Path, task: ImageClassification) -> dict[str, pd.DataFrame]:
    return {s: task.standardize(read_table(root / s)) for s in ("train", "validation", "test")}


def test_planted_problems_are_found(tmp_path):
    files = planted(tmp_path)
    report = diagnose_images(splits(tmp_path, ImageClassification()), "path", "label", 32)
    train = report["images"]["train"]
    assert [u["path"] for u in train["unreadable"]] == [str(files["broken"])]
    assert train["images_read"] == 36 + 5  # 36 pictures and 5 planted ones that open
    assert train["duplicates"] == 1
    assert set(train["duplicate_examples"][0]) == {str(files["copy"]), str(a1(files))}
    near = train["near_duplicates"]
    assert near["count"] == 2 and near["groups"] == 2  # the copy and the brighter picture
    grouped = {path for example in near["examples"] for path in example["paths"]}
    assert {str(files["brighter"]), str(files["copy"])} <= grouped

    outliers = train["outliers"]
    for kind, name in (("aspect", "wide"), ("small", "tiny"), ("large", "huge")):
        assert outliers[kind]["count"] == 1, kind
        assert outliers[kind]["examples"][0]["path"] == str(files[name])
    assert train["sizes"]["width"] == {"min": 16, "median": 64.0, "max": 600}
    assert train["sizes"]["aspect"]["max"] == 5.0
    assert train["class_balance"]["counts"] == {"a": 29, "b": 12}
    assert train["class_balance"]["imbalance_ratio"] == 2.42

    validation, test = report["leakage"]["validation_in_train"], report["leakage"]["test_in_train"]
    assert (validation["exact"], validation["near"]) == (1, 1)
    assert validation["examples"][0]["path"] == str(files["leaked_exact"])
    assert (test["exact"], test["near"]) == (0, 1)  # re-encoded and resized: no exact match
    assert test["examples"][0]["path"] == str(files["leaked_near"])
    assert test["examples"][0]["seen"].endswith("/train/a/2.png")
    assert report["leakage"]["test_in_validation"]["near"] == 0
    assert report["images"]["validation"]["near_duplicates"]["count"] == 0


def a1(files: dict[str, Path]) -> Path:
    return files["copy"].with_name("1.png")


def test_each_finding_is_one_readable_line(tmp_path):
    planted(tmp_path)
    report = diagnose_images(splits(tmp_path, ImageClassification()), "path", "label", 32)
    lines = image_doctor_lines(report)
    assert all(line.startswith("data doctor: ") for line in lines)
    text = "\n".join(lines)
    for expected in (
        "train: 41 images, 2 classes (12 to 29 images each, imbalance 2.42:1)",
        "train: 1 unreadable image(s), e.g. row ",
        "train: sizes: width 16 to 600, height 16 to 600 (median 64x64)",
        "train: 1 image(s) with an aspect ratio over 2x from the median 1.00 (squashed when "
        "resized to a square), e.g. row ",
        "train: 1 image(s) smaller than the model's 32-pixel input side (upscaled, blurred), "
        "e.g. row ",
        "a/tiny.png (16x16)",
        "train: 1 image(s) with over 16x the median's pixels",
        "train: 1 exact duplicate image(s), e.g. a/1-copy.png = a/1.png",
        "train: 2 near-duplicate image(s) in 2 group(s) (perceptual hash and thumbnail alike)",
        "1 validation image(s) are also (or nearly) train images (1 exact), e.g. b/3-copy.png ~ "
        "a/3.png (leakage: validation scores will be too high)",
        "1 test image(s) are also (or nearly) train images (0 exact), e.g. a/2-resized.jpg ~ "
        "a/2.png",
    ):
        assert expected in text, expected
    assert "near-duplicate" not in "\n".join(line for line in lines if "validation:" in line)


def test_training_prints_the_doctor_and_uses_the_models_input_side(tmp_path, caplog):
    planted(tmp_path)
    config = RunConfig.model_validate(
        {"task": "image-classification", "output": str(tmp_path / "run"),
         "data": {s: str(tmp_path / s) for s in ("train", "validation", "test")},
         "model": {"name": "scratch-vit"}, "image": {"scratch_size": 56, "scratch_patch": 4}}
    )  # fmt: skip
    task = ImageClassification.from_run_config(config)
    assert task.input_side == 56
    with caplog.at_level(logging.INFO, logger="tunelab"):
        frames, report = load_splits(config, task)
    assert "left out 1 unreadable image(s)" in caplog.text
    assert "2 near-duplicate image(s) in 2 group(s)" in caplog.text
    assert "1 test image(s) are also (or nearly) train images" in caplog.text
    # the 48-pixel copy in test is now below the input side, as is the tiny one in train
    assert report["doctor"]["images"]["test"]["outliers"]["small"]["count"] == 1
    assert len(frames["train"]) == 41


def test_the_input_side_is_read_from_a_local_models_image_processor(tiny_vit):
    config = RunConfig.model_validate(
        {"task": "image-classification", "data": {"train": "x"}, "model": {"name": str(tiny_vit)}}
    )
    assert model_input_side(config) == 16  # tiny_vit reads 16x16 images
    config.model.name = "some/hub-model"
    assert model_input_side(config) == config.image.scratch_size


def test_a_dynamic_resolution_processor_enlarges_only_images_below_its_least_pixels(tmp_path):
    """Qwen2-VL keeps each image's size between min_pixels and max_pixels (transformers 5
    saves them as size's shortest_edge and longest_edge): the side of the least square, or
    of image.processor's min_pixels where the run sets one; not the longest edge."""
    saved = {"image_processor": {"merge_size": 2, "patch_size": 14,
                                 "size": {"shortest_edge": 56 * 56, "longest_edge": 1024 * 1024}},
             "processor_class": "Qwen2VLProcessor"}  # fmt: skip
    (tmp_path / "processor_config.json").write_text(json.dumps(saved), encoding="utf-8")
    config = RunConfig.model_validate(
        {"task": "image-text-to-text", "data": {"train": "x"}, "model": {"name": str(tmp_path)}}
    )
    assert model_input_side(config) == 56
    from tunelab.tasks.image_chat import ImageTextToText

    assert ImageTextToText.from_run_config(config).input_side == 56  # what its doctor uses
    config.image.processor = {"min_pixels": 28 * 28, "max_pixels": 256 * 256}
    assert model_input_side(config) == 28


def test_strict_stops_at_the_first_unreadable_image_naming_row_and_path(tmp_path):
    files = planted(tmp_path)
    task = ImageClassification(drop_invalid=False)
    with pytest.raises(UserError, match=rf"train row \d+: image {files['broken']} cannot be read "
                       r"\(.*\); replace or remove it, or run without --strict"):  # fmt: skip
        task.diagnose(splits(tmp_path, task), False, 0)


def test_a_table_of_paths_with_an_empty_cell(tmp_path):
    for i in range(4):
        shapes(i).save(tmp_path / f"{i}.png")
    table = pd.DataFrame({"file": ["0.png", "1.png", None, "2.png", "3.png"],
                          "label": ["x", "y", "x", "x", "y"]})  # fmt: skip
    table.to_csv(tmp_path / "rows.csv", index=False)
    task = ImageClassification(image_column="file")
    frames = {"train": task.standardize(read_table(tmp_path / "rows.csv"))}
    report = task.diagnose(frames, False, 0)
    assert report["images"]["train"]["empty_paths"] == [3]
    assert "1 row(s) without an image path (rows 3)" in "\n".join(task.doctor_lines(report))
    strict = ImageClassification(image_column="file", drop_invalid=False)
    with pytest.raises(UserError, match=r"rows\.csv row 3: column 'file' is empty; give"):
        strict.diagnose(frames, False, 0)


# -- the command line -------------------------------------------------------------------


def run_cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["tunelab", *map(str, args)])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    out = capsys.readouterr()
    return int(stop.value.code or 0), out.out, out.err


def test_tunelab_doctor_reports_images_and_writes_json(tmp_path, monkeypatch, capsys):
    files = planted(tmp_path / "data")
    data = tmp_path / "data"
    report = tmp_path / "report.json"
    code, out, err = run_cli(
        ["doctor", "--task", "image-classification", data / "train", "--validation",
         data / "validation", "--test", data / "test", "--report", report],
        monkeypatch, capsys,
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("train: 41 images, 2 classes")
    assert "train: 2 near-duplicate image(s)" in out and "data doctor:" not in out
    assert "1 test image(s) are also (or nearly) train images" in out
    assert f"report written to {report}" in out
    written = json.loads(report.read_text(encoding="utf-8"))
    assert written["images"]["train"]["unreadable"][0]["path"] == str(files["broken"])

    code, out, err = run_cli(
        ["doctor", "--task", "image-classification", data / "train", "--strict"],
        monkeypatch, capsys,
    )  # fmt: skip
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1
    assert f"image {files['broken']} cannot be read" in errors[0] and " row " in errors[0]

    code, _, err = run_cli(
        ["doctor", "--task", "image-classification", data / "train", "--fix", "--out", "x.csv"],
        monkeypatch, capsys,
    )  # fmt: skip
    assert code == 2 and "--fix is not offered for images" in err


def test_tunelab_doctor_reads_a_csv_of_paths_and_loose_images(tmp_path, monkeypatch, capsys):
    for i in range(3):
        shapes(i).save(tmp_path / f"{i}.png")
    (tmp_path / "3.png").write_bytes((tmp_path / "0.png").read_bytes())
    pd.DataFrame({"picture": [f"{i}.png" for i in range(4)], "label": list("xyxy")}).to_csv(
        tmp_path / "rows.csv", index=False
    )
    code, out, err = run_cli(
        ["doctor", "--task", "image-classification", tmp_path / "rows.csv", "--image-column",
         "picture", "--report", tmp_path / "r.json"],
        monkeypatch, capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "train: 4 images, 2 classes" in out
    assert "train: 1 exact duplicate image(s), e.g. 0.png = 3.png" in out

    (tmp_path / "loose").mkdir()
    for i in range(2):
        shapes(i).save(tmp_path / "loose" / f"{i}.png")
    code, out, err = run_cli(
        ["doctor", "--task", "image-classification", tmp_path / "loose", "--report",
         tmp_path / "r.json"],
        monkeypatch, capsys,
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("train: 2 images\n")  # no classes: images to predict on


def test_train_strict_is_data_drop_invalid_false(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tunelab import api

    seen = {}

    def fake_train(config, **kwargs):
        seen["drop_invalid"] = config.data.drop_invalid
        return {"metrics": {}, "model_dir": "m"}

    monkeypatch.setattr(api, "train", fake_train)
    runner = CliRunner()
    for flags, expected in (([], True), (["--strict"], False)):
        done = runner.invoke(cli.app, ["train", "--data", "d.csv", *flags])
        assert done.exit_code == 0, done.output
        assert seen["drop_invalid"] is expected


def test_text_doctor_strict_names_the_first_empty_text(tmp_path, monkeypatch, capsys):
    pd.DataFrame({"text": ["好", " ", "坏", "行"], "label": list("pnnp")}).to_csv(
        tmp_path / "d.csv", index=False
    )
    args = ["doctor", tmp_path / "d.csv", "--no-label-errors", "--report", tmp_path / "r.json"]
    code, out, err = run_cli(args, monkeypatch, capsys)
    assert code == 0 and "empty texts: 1" in out, err
    code, out, err = run_cli([*args, "--strict"], monkeypatch, capsys)
    assert code == 2 and "d.csv: column 'text' is empty in rows 2" in err


def test_tag_doctor_strict_stops_at_a_broken_sequence(tmp_path, monkeypatch, capsys):
    (tmp_path / "t.conll").write_text("张 B-PER\n三 I-PER\n在 O\n北 I-LOC\n京 I-LOC\n", "utf-8")
    args = ["doctor", "--task", "token-classification", tmp_path / "t.conll", "--report",
            tmp_path / "r.json"]  # fmt: skip
    code, out, err = run_cli(args, monkeypatch, capsys)
    assert code == 0 and "1 rows with broken tag sequences" in out, err
    code, out, err = run_cli([*args, "--strict"], monkeypatch, capsys)
    assert code == 2 and "tag 'I-LOC' at token 4 breaks the BIO scheme" in err


def test_doctor_reads_the_task_from_the_data_as_train_does(tmp_path, monkeypatch, capsys, caplog):
    """Without --task, a folder of class sub-folders gets the image checks and a CoNLL file
    (compressed, in a split folder) the tag checks, each saying so; a table gets the text
    checks as before."""
    import gzip

    planted(tmp_path / "images")
    caplog.set_level(logging.INFO, logger="tunelab")
    report = tmp_path / "r.json"
    code, out, err = run_cli(["doctor", tmp_path / "images" / "train", "--report", report],
                             monkeypatch, capsys)  # fmt: skip
    assert code == 0, err
    assert out.startswith("train: 41 images, 2 classes")
    assert "doctor: image-classification checks, as" in caplog.text
    assert "(--task overrides)" in caplog.text

    tagged = tmp_path / "tagged"
    tagged.mkdir()
    sentence = "张 B-PER\n三 I-PER\n在 O\n北 B-LOC\n京 I-LOC\n\n"
    for split, copies in (("train", 6), ("test", 2)):
        (tagged / f"{split}.conll.gz").write_bytes(gzip.compress((sentence * copies).encode()))
    code, out, err = run_cli(["doctor", tagged, "--report", report], monkeypatch, capsys)
    assert code == 0, err
    assert "data doctor: train: 6 rows" in out and "6 PER, 6 LOC" in out
    assert "token-classification checks, as" in caplog.text

    pytest.importorskip("soundfile")
    from tests.conftest import make_tone_clips

    make_tone_clips(tmp_path / "clips" / "train", per_class=4)  # a split folder of classes
    make_tone_clips(tmp_path / "clips" / "test", per_class=2, seed=1)
    (tmp_path / "clips" / "train" / "low" / "broken.wav").write_bytes(b"RIFF")
    code, out, err = run_cli(["doctor", tmp_path / "clips", "--report", report],
                             monkeypatch, capsys)  # fmt: skip
    assert code == 0, err
    assert out.startswith("audio-classification checks, as tunelab train makes them "
                          "(train 13 rows, test 6 rows):")  # fmt: skip
    assert "train: 1 unreadable audio file(s), e.g. row" in out and "broken.wav" in out
    assert "audio-classification checks, as" in caplog.text
    assert json.loads(report.read_text())["doctor"]["audio"]["test"]["rows"] == 6

    code, out, err = run_cli(
        ["doctor", "--task", "text-classification", tagged / "train.conll.gz", "--report", report],
        monkeypatch, capsys,
    )  # fmt: skip
    assert (
        code == 2
        and "its columns are: tokens, tags); tagged tokens are checked with "
        "--task token-classification"
        in err
    )  # --task, given, still decides
