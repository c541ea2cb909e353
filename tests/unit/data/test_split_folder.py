"""A data folder holding train/validation/test files given as --data."""

import json
import logging
from pathlib import Path

import pytest

import tunelab
from tests.conftest import make_reviews, tiny_run_config
from tunelab.data.split_folder import expand_split_folder, split_files
from tunelab.errors import UserError


def _touch(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("text,label\na,b\n", encoding="utf-8")
    return folder


def test_a_folder_of_split_files_fills_the_splits_not_given(tmp_path):
    folder = _touch(tmp_path / "e2e", "train.csv.gz", "dev.jsonl", "test.csv", "README.md")
    train, validation, test, line = expand_split_folder(folder, None, None)
    assert (train, validation, test) == (
        folder / "train.csv.gz", folder / "dev.jsonl", folder / "test.csv"
    )  # fmt: skip
    assert line == (
        f"data folder {folder}: train.csv.gz as data.train, dev.jsonl as data.validation, "
        "test.csv as data.test"
    )
    mine = tmp_path / "mine.csv"
    train, validation, test, line = expand_split_folder(folder, mine, None)
    assert validation == mine and test == folder / "test.csv"  # a given split stays
    assert "data.validation" not in line


def test_files_and_media_folders_are_left_alone(tmp_path):
    file = tmp_path / "reviews.csv"
    file.write_text("text,label\na,b\n", encoding="utf-8")
    assert expand_split_folder(file, None, None) == (file, None, None, None)
    images = tmp_path / "photos"
    (images / "cat").mkdir(parents=True)
    (images / "cat" / "1.png").write_bytes(b"")
    (images / "metadata.csv").write_text("file_name,label\n", encoding="utf-8")
    assert expand_split_folder(images, None, None) == (images, None, None, None)


def _images(folder: Path, *paths: str) -> Path:
    for path in paths:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(b"")
    return folder


def test_split_folders_of_class_folders_fill_the_splits(tmp_path):
    # the image-folder layout of most public sets, and of `tunelab data example digits`
    folder = _images(tmp_path / "digits", "train/0/a.png", "train/1/b.png", "val/0/c.png",
                     "test/1/d.png", "dataset.json")  # fmt: skip
    train, validation, test, line = expand_split_folder(folder, None, None)
    assert (train, validation, test) == (folder / "train", folder / "val", folder / "test")
    assert line == (f"data folder {folder}: train as data.train, val as data.validation, "
                    "test as data.test")  # fmt: skip


def test_classes_named_like_splits_stay_classes(tmp_path):
    # class folders that hold their images directly: a class may well be called "test"
    folder = _images(tmp_path / "photos", "train/a.png", "test/b.png", "other/c.png")
    assert expand_split_folder(folder, None, None) == (folder, None, None, None)


def test_a_table_of_image_paths_wins_over_the_split_folder_beside_it(tmp_path):
    folder = _images(tmp_path / "photos", "train/cat/a.png", "test/dog/b.png")
    _touch(folder, "train.csv")
    train, validation, test, _ = expand_split_folder(folder, None, None)
    assert (train, validation, test) == (folder / "train.csv", None, None)


def test_a_folder_of_tables_without_a_training_file_names_what_to_do(tmp_path):
    folder = _touch(tmp_path / "data", "reviews-2024.csv", "reviews-2025.csv")
    with pytest.raises(UserError, match=r"reviews-2024.csv, reviews-2025.csv.*name it train"):
        expand_split_folder(folder, None, None)


def test_a_folder_without_tables_or_class_folders_says_what_it_holds(tmp_path):
    # a data card whose files were never built: it was read as an image folder before
    folder = tmp_path / "sick"
    folder.mkdir()
    with pytest.raises(UserError, match=r"sick holds no table file .* \(it is empty\)"):
        expand_split_folder(folder, None, None)
    (folder / "DATA_CARD.md").write_text("# SICK\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"no class sub-folders of images or audio \(DATA_CARD"):
        expand_split_folder(folder, None, None)
    _images(folder, "a.png")  # loose images: the doctor checks them as images to predict on
    assert expand_split_folder(folder, None, None) == (folder, None, None, None)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (("train.csv", "train.jsonl"), "two files for one split, train.csv and train.jsonl"),
        (("train.csv", "val.csv", "dev.csv"), "two validation files, val.csv and dev.csv"),
    ],
)
def test_two_files_for_one_split_is_an_error_naming_both(tmp_path, names, message):
    with pytest.raises(UserError, match=message):
        split_files(_touch(tmp_path / "data", *names))


def test_a_saved_dataset_dict_gives_its_split_folders(tmp_path):
    folder = tmp_path / "saved"
    for split in ("train", "validation"):
        (folder / split).mkdir(parents=True)
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "validation"]}))
    train, validation, test, _ = expand_split_folder(folder, None, None)
    assert (train, validation, test) == (folder / "train", folder / "validation", None)


def test_training_on_a_split_folder_uses_its_files(tiny_bert, tmp_path, caplog):
    folder = tmp_path / "reviews"
    folder.mkdir()
    rows = make_reviews(260)
    rows.iloc[:200].to_csv(folder / "train.csv", index=False)
    rows.iloc[200:240].to_csv(folder / "validation.csv", index=False)
    rows.iloc[240:].to_csv(folder / "test.csv", index=False)
    config = tiny_run_config(tiny_bert, folder, tmp_path / "run", training={"epochs": 1})
    with caplog.at_level(logging.INFO, logger="tunelab"):
        metrics = tunelab.train(config)["metrics"]
    assert metrics["validation"]["examples"] == 40 and metrics["test"]["examples"] == 20
    assert f"data folder {folder}: train.csv as data.train" in caplog.text
    saved = (tmp_path / "run" / "config.yaml").read_text(encoding="utf-8")
    assert str(folder / "test.csv") in saved  # the run records the files it read


def test_the_doctor_reads_a_split_folder_as_training_does(tmp_path, caplog):
    folder = tmp_path / "reviews"
    folder.mkdir()
    make_reviews(60).to_csv(folder / "train.csv", index=False)
    make_reviews(10, seed=1).to_csv(folder / "test.csv", index=False)
    with caplog.at_level(logging.INFO, logger="tunelab"):
        tunelab.doctor(folder, report=tmp_path / "report.json", label_errors=False)
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert {split: found["rows"] for split, found in report["splits"].items()} == {
        "train": 60, "test": 10}  # fmt: skip
    assert f"data folder {folder}: train.csv as data.train, test.csv as data.test" in caplog.text


def test_evaluate_scores_a_split_folders_test_file_or_else_its_validation_file(tmp_path):
    from tunelab.data.split_folder import held_out_split

    folder = _touch(tmp_path / "reviews", "train.csv", "dev.csv", "test.csv")
    assert held_out_split(folder) == (
        folder / "test.csv", f"data folder {folder}: scoring its test split, test.csv"
    )  # fmt: skip
    (folder / "test.csv").unlink()
    assert held_out_split(folder)[0] == folder / "dev.csv"
    (folder / "dev.csv").unlink()
    with pytest.raises(UserError, match=r"holds no test or validation split.*only train.csv"):
        held_out_split(folder)
    photos = _images(tmp_path / "photos", "cat/a.png", "dog/b.png")  # classes: read as given
    assert held_out_split(photos) == (photos, None)
    digits = _images(tmp_path / "digits", "train/0/a.png", "test/0/b.png")
    assert held_out_split(digits)[0] == digits / "test"
    file = folder / "train.csv"
    assert held_out_split(file) == (file, None)
