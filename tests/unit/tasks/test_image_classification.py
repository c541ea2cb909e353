"""The image-classification task: images opened safely, folders and path columns read as paths
(decoded lazily), bad input as one sentence, and a tiny ViT trained, evaluated, reported and
predicted end to end, its folder loading in ``transformers.pipeline`` with the same labels."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

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


def test_a_folder_of_split_folders_reads_each_file_with_its_class_and_split(tmp_path):
    # tunelab predict --input on the image-folder layout: gold is the class, not the split
    make_colour_images(tmp_path / "images" / "train", per_class=2)
    make_colour_images(tmp_path / "images" / "val", per_class=1, seed=1)
    frame = read_table(tmp_path / "images")
    assert list(frame.columns) == ["image", "label", "split"] and len(frame) == 9
    assert set(frame["label"]) == {"red", "green", "blue"}
    assert frame["split"].value_counts().to_dict() == {"train": 6, "val": 3}


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
    report = (run / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in report or metrics["test"]["accuracy"] == 1.0
    assert "Token limit" not in report  # an image has no tokens to cut

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


def test_lora_on_a_vit_saves_an_adapter_that_predicts_and_merges(tmp_path, tiny_vit):
    """LoRA through the PEFT path: the adapters and the new head train, model/ holds the
    adapter alone, and tunelab merge folds it into a folder the pipeline loads, with the
    labels tunelab predicts."""
    from transformers import pipeline

    images = make_colour_images(tmp_path / "images", per_class=12)
    run = tmp_path / "run"
    config = run_config(tiny_vit, images, run)
    config["peft"] = {"method": "lora", "r": 4}
    config["training"]["learning_rate"] = 1e-2

    result = tunelab.train(config)

    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert 0 < metrics["train"]["trainable_share"] < 0.5
    assert metrics["test"]["accuracy"] >= 0.6
    assert (run / "model" / "adapter_config.json").is_file()
    photos = sorted(str(p) for p in images.rglob("*.png"))[::6]
    adapter = tunelab.predict(result["model_dir"], texts=photos)
    merged = tunelab.merge(run)
    classifier = pipeline("image-classification", model=merged, device="cpu")
    for record, answer in zip(adapter, classifier(photos, top_k=1), strict=True):
        assert record["label"] == answer[0]["label"]
        assert record["score"] == pytest.approx(answer[0]["score"], abs=1e-4)


def _saved_dataset(images, target):
    """The colour images as a datasets.Dataset with Image and ClassLabel features, saved."""
    from datasets import ClassLabel, Dataset, Features
    from datasets import Image as ImageFeature

    files = sorted(images.rglob("*.*"))
    names = sorted({p.parent.name for p in files})
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=names)})
    rows = {"image": [str(p) for p in files], "label": [names.index(p.parent.name) for p in files]}
    Dataset.from_dict(rows, features=features).save_to_disk(str(target))
    return target


def test_a_saved_dataset_and_image_bytes_train_and_predict(tmp_path, tiny_vit):
    """A folder saved by datasets (images embedded as bytes, ClassLabel ids) trains like a
    class folder; a Parquet file of image bytes predicts, each row named by its number."""
    images = make_colour_images(tmp_path / "images", per_class=12)
    saved = _saved_dataset(images, tmp_path / "saved")

    table = read_table(saved)
    assert set(table["label"]) == {"blue", "green", "red"}  # names, not class ids
    assert isinstance(table["image"].iloc[0]["bytes"], bytes)
    task = ImageClassification()
    shaped = task.standardize(table)
    assert isinstance(shaped["path"].iloc[0], bytes)

    run = tmp_path / "run"
    result = tunelab.train(run_config(tiny_vit, saved, run))
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["test"]["accuracy"] >= 0.6

    files = sorted(images.rglob("*.*"))[:5]
    pd.DataFrame({"image": [p.read_bytes() for p in files]}).to_parquet(tmp_path / "x.parquet")
    from_bytes = tunelab.predict(result["model_dir"], input=tmp_path / "x.parquet")
    from_files = tunelab.predict(result["model_dir"], texts=[str(p) for p in files])
    assert [r["path"] for r in from_bytes] == [f"row {i} (image bytes)" for i in range(1, 6)]
    assert [r["label"] for r in from_bytes] == [r["label"] for r in from_files]


def test_a_saved_dataset_dict_names_its_split_folders(tmp_path):
    from datasets import Dataset, DatasetDict

    rows = Dataset.from_dict({"image": ["a.png"], "label": ["x"]})
    DatasetDict({"train": rows, "test": rows}).save_to_disk(str(tmp_path / "splits"))
    with pytest.raises(UserError, match=r"holds several splits \(train, test\); give one split"):
        read_table(tmp_path / "splits")


def test_a_pattern_reads_the_image_files_it_names(tmp_path):
    images = make_colour_images(tmp_path / "images", per_class=3)
    frame = read_table(str(images / "*" / "*.png"))
    assert len(frame) == 3 and all(p.endswith(".png") for p in frame["image"])  # one a class
    assert list(frame["image"]) == sorted(frame["image"])
    with pytest.raises(UserError, match=r"matches no file"):
        read_table(str(images / "*.tiff"))
    (images / "notes.txt").write_text("x")
    with pytest.raises(UserError, match=r"notes\.txt, which is not an image file"):
        read_table(str(images / "*"))


def _test_images(run):
    """The image paths of a run's test predictions."""
    lines = (run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["path"] for line in lines]


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory, tiny_vit):
    """A tiny ViT trained on the colour images (the images stay on disk beside the run)."""
    root = tmp_path_factory.mktemp("colours")
    images = make_colour_images(root / "images", per_class=12)
    tunelab.train(run_config(tiny_vit, images, root / "run"))
    return root / "run"


def test_onnx_export_of_an_image_model_agrees_with_pytorch(colour_run, tmp_path):
    pytest.importorskip("onnxruntime")
    from tunelab.serving.export import export_onnx
    from tunelab.serving.onnx_model import load_onnx

    info = export_onnx(colour_run, output=tmp_path / "onnx", quantize="int8", samples=16)

    assert info["samples"]["source"].endswith("predictions.jsonl")  # the run's test images
    assert info["parity"]["fp32"]["label_agreement"] == 1.0
    assert info["parity"]["fp32"]["max_abs_logit_diff"] < 1e-4
    assert info["parity"]["int8"]["rows"] == info["samples"]["rows"]
    model, processor, task, _ = load_onnx(tmp_path / "onnx", variant="fp32")
    photos = _test_images(colour_run)
    frame = tunelab.api.text_frame(task, photos)
    served = task.predictions(task.forward(model, processor, frame, 1, 8), frame)
    direct = tunelab.predict(colour_run, texts=photos)
    assert [r["label"] for r in served] == [r["label"] for r in direct]

    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from tunelab.serving.server import create_app

    with TestClient(create_app(tmp_path / "onnx", backend="onnx")) as client:
        answer = client.post("/predict", files=[("files", ("a.png", Path(photos[0]).read_bytes()))])
        assert answer.status_code == 200 and answer.json()[0]["label"] == direct[0]["label"]


def test_explain_shows_which_part_of_an_image_carries_the_label(colour_run, tmp_path):
    """Occlusion: in an image whose top half is red and bottom half blue, the top cells
    speak for red and the bottom ones against it; the page draws the grid over the image."""
    from PIL import Image

    from tunelab.explain import explain
    from tunelab.explain.media_html import render_media_page

    pixels = np.zeros((16, 16, 3), dtype=np.uint8)
    pixels[:8], pixels[8:] = (220, 30, 30), (30, 40, 220)
    Image.fromarray(pixels).save(tmp_path / "half.png")

    explained = explain(colour_run, [str(tmp_path / "half.png")], target="red", parts=4)
    cells = np.array(explained[0]["cells"])
    assert cells.shape == (4, 4) and explained[0]["width"] == 16
    assert cells[:2].mean() > 0 > cells[2:].mean()  # hiding red lowers red, hiding blue raises it
    page = render_media_page(explained, [str(tmp_path / "half.png")], "half")
    assert page.count("<rect") == 16 and "data:image/png;base64," in page


def test_the_report_draws_occlusion_maps_of_the_worst_errors(colour_run, tmp_path):
    import shutil

    from tunelab.evaluation.report import build_report

    run = tmp_path / "run"
    shutil.copytree(colour_run, run)
    lines = (run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["gold"] = next(label for label in ("red", "green", "blue") if label != first["label"])
    (run / "predictions.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")

    page = build_report(run).read_text(encoding="utf-8")
    maps = page.split("Occlusion maps of the 1 worst errors above")
    assert len(maps) == 2  # the one wrong prediction, explained
    assert maps[1].count("<rect") >= 64 and "data:image/png;base64," in maps[1]
    assert "<script" not in page
    without = build_report(run, explanations=False).read_text(encoding="utf-8")
    assert "Occlusion maps" not in without and "were not requested" in without


def test_the_server_takes_uploads_and_base64_and_refuses_bad_files(colour_run):
    """Image models on /predict: multipart files and base64 JSON answer as tunelab predict
    does, named as sent; a corrupt file, a file over the limit, too many files and a text
    body each get one sentence and their status, and never reach a shared batch."""
    pytest.importorskip("fastapi")
    import base64

    from fastapi.testclient import TestClient

    from tunelab.serving.server import create_app

    photos = _test_images(colour_run)[:3]
    expected = [r["label"] for r in tunelab.predict(colour_run, texts=photos)]
    blobs = [Path(p).read_bytes() for p in photos]
    limit = max(map(len, blobs)) + 10
    app = create_app(colour_run, max_texts=3, max_file_bytes=limit)
    with TestClient(app) as client:
        assert client.get("/metadata").json()["inputs"] == "image"
        body = client.get("/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]
        assert set(body["content"]) == {"multipart/form-data", "application/json"}
        uploaded = client.post(
            "/predict", files=[("files", (f"photo{i}.png", b)) for i, b in enumerate(blobs)]
        )
        assert uploaded.status_code == 200, uploaded.text
        assert [r["label"] for r in uploaded.json()] == expected
        assert [r["path"] for r in uploaded.json()] == ["photo0.png", "photo1.png", "photo2.png"]
        encoded = client.post("/predict", json={"file": base64.b64encode(blobs[0]).decode()})
        assert encoded.status_code == 200 and encoded.json()[0]["label"] == expected[0]
        assert encoded.json()[0]["path"] == "file 0"

        broken = client.post("/predict", files=[("files", ("bad.jpg", blobs[0][:40]))])
        assert broken.status_code == 422
        assert broken.json()["error"].startswith("file bad.jpg cannot be read as an image")
        big = client.post("/predict", files=[("files", ("big.png", b"x" * (limit + 1)))])
        assert big.status_code == 413 and "over the server's limit" in big.json()["error"]
        many = client.post("/predict", json={"files": [base64.b64encode(blobs[0]).decode()] * 4})
        assert many.status_code == 413 and "at most 3" in many.json()["error"]
        text = client.post("/predict", json={"text": "a photo"})
        assert text.status_code == 422 and "give either file" in text.json()["error"]
        garbled = client.post("/predict", json={"files": ["not base64!"]})
        assert garbled.status_code == 422 and "files[0] is not base64" in garbled.json()["error"]
