"""The image-classification task: images opened safely, folders and path columns read as paths
(decoded lazily), bad input as one sentence, and a tiny ViT trained, evaluated, reported and
predicted end to end, its folder loading in ``transformers.pipeline`` with the same labels."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

import tunelab
from tests.conftest import make_colour_images
from tunelab.cli import app, main
from tunelab.config import RunConfig
from tunelab.data.images import open_rgb
from tunelab.data.load import read_table
from tunelab.data.media import read_media_folder
from tunelab.errors import UserError
from tunelab.tasks.image_classification import ImageClassification
from tunelab.training.prepare import load_splits


def run_config(model, train, output, **data) -> dict:
    return {
        "task": "image-classification",
        "output": str(output),
        "data": {"train": str(train), **data},
        "model": {"name": str(model)},
        "training": {"epochs": 4, "learning_rate": 3e-3, "batch_size": 8,
                     "early_stopping_patience": None, "logging_steps": 1000},
    }  # fmt: skip


# -- opening images ---------------------------------------------------------------------


def test_every_format_opens_as_upright_rgb(tmp_path):
    wide = Image.new("RGB", (4, 2), (200, 10, 10))
    exif = wide.getexif()
    exif[0x0112] = 6  # EXIF orientation: the camera was turned; show the image rotated
    wide.save(tmp_path / "turned.jpg", exif=exif)
    assert open_rgb(tmp_path / "turned.jpg").size == (2, 4)

    Image.new("L", (5, 5), 40).save(tmp_path / "gray.png")
    Image.new("RGBA", (5, 5), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    Image.new("RGB", (5, 5), (0, 0, 255)).save(tmp_path / "blue.webp")
    Image.new("RGB", (5, 5), (0, 255, 0)).save(tmp_path / "green.bmp")
    frames = [Image.new("RGB", (5, 5), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:])

    for name in ("gray.png", "clear.png", "blue.webp", "green.bmp", "moving.gif"):
        assert open_rgb(tmp_path / name).mode == "RGB", name
    assert open_rgb(tmp_path / "clear.png").getpixel((0, 0)) == (255, 255, 255)  # on white
    red, _, blue = open_rgb(tmp_path / "moving.gif").getpixel((0, 0))
    assert red > 200 and blue < 50  # the first frame


# -- reading data -----------------------------------------------------------------------


def test_a_folder_of_class_folders_reads_as_paths_and_labels(tmp_path):
    make_colour_images(tmp_path / "images", per_class=2)
    frame = read_table(tmp_path / "images")
    assert list(frame.columns) == ["image", "label"] and len(frame) == 6
    assert set(frame["label"]) == {"red", "green", "blue"}
    assert frame.index[0] == 1


def test_the_encoded_dataset_holds_paths_and_decodes_each_batch_on_reading(tmp_path, tiny_vit):
    from transformers import AutoImageProcessor

    make_colour_images(tmp_path / "images", per_class=2)
    task = ImageClassification()
    frame = task.standardize(read_table(tmp_path / "images"))
    task.fit_labels(frame)
    dataset = task.encode(frame, AutoImageProcessor.from_pretrained(tiny_vit), 8)

    assert dataset.data.column_names == ["path", "labels"]  # no pixels stored
    assert dataset.data.nbytes < 2_000
    item = dataset[0]
    assert tuple(item["pixel_values"].shape) == (3, 16, 16)
    assert int(item["labels"]) == task.labels.index(frame["label"].iloc[0])


def test_a_csv_names_images_relative_to_its_own_folder(tmp_path):
    make_colour_images(tmp_path / "images", per_class=2)
    rows = read_media_folder(tmp_path / "images")
    table = pd.DataFrame(
        {"file": [p.replace(str(tmp_path) + "/", "") for p in rows["image"]],
         "label": rows["label"]}
    )  # fmt: skip
    table.to_csv(tmp_path / "data.csv", index=False)
    task = ImageClassification(image_column="file")
    frame = task.standardize(read_table(tmp_path / "data.csv"))
    assert frame["path"].iloc[0] == str((tmp_path / table["file"].iloc[0]).resolve())


def test_a_path_outside_the_data_files_folder_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    pd.DataFrame({"image": ["../secret.png"], "label": ["a"]}).to_csv(
        tmp_path / "data" / "rows.csv", index=False
    )
    with pytest.raises(UserError, match=r"row 1: image path '\.\./secret\.png' leads outside"):
        ImageClassification().standardize(read_table(tmp_path / "data" / "rows.csv"))


# -- bad input: one sentence, exit 2 ----------------------------------------------------


def test_an_empty_folder_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    config = run_config("scratch-vit", tmp_path / "empty", tmp_path / "run")
    (tmp_path / "run.yaml").write_text(json.dumps(config), encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["tunelab", "train", str(tmp_path / "run.yaml")])
    with pytest.raises(SystemExit) as stopped:
        main()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert stopped.value.code == 2 and len(errors) == 1 and "holds no image files" in errors[0]
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_a_folder_with_one_class_is_refused(tmp_path):
    make_colour_images(tmp_path / "images", per_class=3)
    for name in ("green", "blue"):
        for path in (tmp_path / "images" / name).iterdir():
            path.unlink()
        (tmp_path / "images" / name).rmdir()
    config = RunConfig.model_validate(run_config("scratch-vit", tmp_path / "images", tmp_path))
    with pytest.raises(UserError, match="only one class 'red'; an image classifier needs"):
        load_splits(config, ImageClassification.from_run_config(config))


def _with_truncated_jpeg(tmp_path):
    make_colour_images(tmp_path / "images", per_class=10)
    photo = tmp_path / "images" / "red" / "broken.jpg"
    Image.new("RGB", (64, 64), (200, 0, 0)).save(photo)
    photo.write_bytes(photo.read_bytes()[:300])  # cut off mid-scan
    return photo


def test_a_truncated_jpeg_is_left_out_with_a_warning(tmp_path, caplog):
    photo = _with_truncated_jpeg(tmp_path)
    config = RunConfig.model_validate(run_config("scratch-vit", tmp_path / "images", tmp_path))
    splits, report = load_splits(config, ImageClassification.from_run_config(config))
    assert sum(len(f) for f in splits.values()) == 30
    unreadable = report["doctor"]["images"]["train"]["unreadable"]
    assert [u["path"] for u in unreadable] == [str(photo.resolve())]
    assert "left out 1 unreadable image(s)" in caplog.text


def test_a_truncated_jpeg_stops_the_run_when_drop_invalid_is_off(tmp_path):
    photo = _with_truncated_jpeg(tmp_path)
    config = run_config("scratch-vit", tmp_path / "images", tmp_path, drop_invalid=False)
    config = RunConfig.model_validate(config)
    with pytest.raises(UserError, match=rf"row \d+: image {photo.resolve()} cannot be read"):
        load_splits(config, ImageClassification.from_run_config(config))


def test_a_decompression_bomb_is_refused_in_one_sentence(tmp_path, monkeypatch):
    make_colour_images(tmp_path / "images", per_class=3)
    Image.new("L", (200, 100)).save(tmp_path / "images" / "red" / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # 200x100 stands for 200 MP
    config = RunConfig.model_validate(run_config("scratch-vit", tmp_path / "images", tmp_path))
    with pytest.raises(UserError, match=r"huge\.png has 0\.0 megapixels and is larger than "
                       r"Pillow's limit .* decompression bombs"):  # fmt: skip
        load_splits(config, ImageClassification.from_run_config(config))


def test_scratch_bert_does_not_fit_images(tmp_path):
    make_colour_images(tmp_path / "images", per_class=2)
    with pytest.raises(UserError, match="scratch-bert does not fit task image-classification"):
        tunelab.train(run_config("scratch-bert", tmp_path / "images", tmp_path / "run"))


# -- end to end -------------------------------------------------------------------------


def test_a_tiny_vit_trains_evaluates_predicts_and_loads_in_a_pipeline(tmp_path, tiny_vit):
    from transformers import pipeline

    images = make_colour_images(tmp_path / "images", per_class=12)
    run = tmp_path / "run"
    result = tunelab.train(run_config(tiny_vit, images, run))

    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["test"]["examples"] >= 3 and metrics["test"]["accuracy"] >= 0.6
    assert metrics["baseline"]["method"].startswith("logistic regression on 16x16")
    first = json.loads((run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"path", "label", "score", "probabilities", "gold"}
    assert "data:image/png;base64," in (run / "report.html").read_text(encoding="utf-8") or (
        metrics["test"]["accuracy"] == 1.0
    )

    scores = tunelab.evaluate(run, images)  # a class folder is labelled data
    assert scores["examples"] == 36 and scores["accuracy"] >= 0.6

    photos = sorted(str(p) for p in (images / "blue").iterdir())[:4]
    records = tunelab.predict(result["model_dir"], input=images / "blue")
    assert len(records) == 12 and not any("gold" in r for r in records)  # loose images
    one = tunelab.predict(result["model_dir"], texts=photos)
    classifier = pipeline("image-classification", model=result["model_dir"], device="cpu")
    for record, answer in zip(one, classifier(photos, top_k=1), strict=True):
        assert record["label"] == answer[0]["label"]
        assert record["score"] == pytest.approx(answer[0]["score"], abs=1e-4)

    done = CliRunner().invoke(app, ["predict", str(run), "--input", photos[0]])
    assert done.exit_code == 0, done.output
    printed = re.search(r'\{"path".*\}', done.output)  # after the loading progress bar
    assert printed and json.loads(printed.group())["path"] == photos[0]
    assert np.isclose(sum(one[0]["probabilities"].values()), 1.0, atol=1e-4)

    pytest.importorskip("fastapi")
    from tunelab.serving.server import create_app

    with pytest.raises(UserError, match="takes texts only for now"):
        create_app(run)
