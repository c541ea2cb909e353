"""The image-to-text task (OCR, captions): images letterboxed with their aspect kept, texts
as decoder labels, a tiny scratch-ocr reader trained end to end whose readings depend on the
image, the report showing the worst readings with their images, and bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image, ImageDraw, ImageFont

import tunelab
from tunelab.errors import UserError
from tunelab.tasks.image_to_text import ImageToText, letterbox

WORDS = {"12": (220, 60, 60), "345": (60, 200, 60), "6789": (60, 60, 220), "A1": (230, 230, 40)}


def make_lines(root: Path, rows: int = 48) -> Path:
    """Lines of four words, each on its own paper colour: a tiny reader can tell them apart in
    a few epochs only by looking at the image (the words are equally frequent)."""
    (root / "img").mkdir(parents=True, exist_ok=True)
    font = ImageFont.load_default()
    records = []
    for i in range(rows):
        text = list(WORDS)[i % len(WORDS)]
        image = Image.new("RGB", (64, 16), WORDS[text])
        ImageDraw.Draw(image).text((2 + i % 5, 2), text, fill=(0, 0, 0), font=font)
        name = f"img/{i}.png"
        image.save(root / name)
        records.append({"image": name, "text": text})
    pd.DataFrame(records).to_csv(root / "lines.csv", index=False)
    return root / "lines.csv"


def run_config(train: Path, output: Path, **data) -> dict:
    return {
        "task": "image-to-text",
        "output": str(output),
        "data": {"train": str(train), **data},
        "model": {"name": "scratch-ocr", "scratch": {"layers": 1, "hidden": 32, "heads": 2}},
        "image": {"scratch_size": 16, "scratch_width": 64, "scratch_patch": 8},
        "generation": {"max_new_tokens": 8},
        "training": {"epochs": 25, "learning_rate": 2e-3, "batch_size": 8,
                     "early_stopping_patience": None, "logging_steps": 1000},
    }  # fmt: skip


def test_letterbox_keeps_the_aspect_and_pads_with_the_paper_colour():
    line = Image.new("RGB", (200, 20), (200, 190, 180))
    ImageDraw.Draw(line).rectangle((0, 5, 199, 14), fill=(0, 0, 0))
    boxed = letterbox(line, 32, 400)
    assert boxed.size == (400, 32)
    # scaled by 1.6 (height-bound), not stretched to 400: the right part is paper
    assert boxed.getpixel((399, 16)) == (200, 190, 180)
    assert boxed.getpixel((100, 16)) == (0, 0, 0)


def test_labels_drop_the_decoder_start_and_end_with_eos(tmp_path):
    from transformers import AutoProcessor

    from tunelab.models.scratch import save_scratch_ocr

    folder = save_scratch_ocr(["你好世AB"], tmp_path / "m", 16, 64, 8, 1, 32, 2, 1)
    tokenizer = AutoProcessor.from_pretrained(folder).tokenizer
    task = ImageToText()
    ids = task.label_ids(tokenizer, ["你好世", "AB"], tokenizer.cls_token_id)
    assert all(row[0] != tokenizer.cls_token_id and row[-1] == tokenizer.sep_token_id
               for row in ids)  # fmt: skip
    assert tokenizer.decode(ids[1], skip_special_tokens=True) == "AB"  # case kept
    batch = task.collator(None)(
        [{"pixel_values": __import__("torch").zeros(3, 16, 64), "labels": row} for row in ids]
    )
    assert batch["labels"].shape == (2, 4) and batch["labels"][1, -1].item() == -100


def test_a_table_of_images_and_texts_is_read_as_image_to_text(tmp_path):
    from tunelab.config import as_config
    from tunelab.training.guesses import guess_from_data

    csv = make_lines(tmp_path / "lines")
    frame = pd.read_csv(csv)
    frame["text"] = [f"{text}-{row}" for row, text in enumerate(frame["text"])]  # lines differ
    frame.to_csv(csv, index=False)
    config = as_config({"output": str(tmp_path / "run"), "data": {"train": str(csv)}}, [])
    guesses = guess_from_data(config)
    assert config.task == "image-to-text"
    assert guesses.decided[0]["evidence"] == "images in 'image' with their text in 'text'"


def test_a_tiny_reader_trains_reads_reports_and_predicts(tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    csv = make_lines(tmp_path / "lines")
    run = tmp_path / "run"
    result = tunelab.train(run_config(csv, run))

    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    test = metrics["test"]
    assert test["examples"] >= 4 and test["cer"] <= 0.3 and test["exact_match"] >= 0.6
    # each exact reading scores ROUGE-L 1: the mean is at least the exact share
    assert test["exact_match"] <= test["rougeL"] <= 1.0 and 0.0 <= test["bleu"] <= 100.0
    first = json.loads((run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"path", "output", "reference", "character_errors"}
    report = (run / "report.html").read_text(encoding="utf-8")
    assert "Worst readings" in report and "data:image/png;base64," in report

    paths = [str(tmp_path / "lines" / "img" / f"{i}.png") for i in range(4)]
    records = tunelab.predict(result["model_dir"], texts=paths)
    assert [r["output"] for r in records] == list(WORDS) or test["exact_match"] < 1.0
    # the folder reads the same in plain transformers (the images are the model's input
    # size already, so letterboxing changes nothing)
    processor = AutoProcessor.from_pretrained(result["model_dir"])
    model = AutoModelForImageTextToText.from_pretrained(result["model_dir"])
    pixels = processor(images=[Image.open(p).convert("RGB") for p in paths], return_tensors="pt")
    generated = model.generate(pixel_values=pixels["pixel_values"])
    plain = processor.batch_decode(generated, skip_special_tokens=True)
    assert [r["output"] for r in records] == ["".join(text.split()) for text in plain]

    pytest.importorskip("fastapi")
    import base64

    from fastapi.testclient import TestClient

    from tunelab.serving.server import create_app

    with TestClient(create_app(run)) as client:
        assert client.get("/metadata").json()["inputs"] == "image"
        blob = Path(paths[0]).read_bytes()
        uploaded = client.post("/predict", files=[("files", ("line.png", blob))])
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json()[0]["output"] == records[0]["output"]
        encoded = client.post("/predict", json={"file": base64.b64encode(blob).decode()})
        assert encoded.json()[0]["output"] == records[0]["output"]
        broken = client.post("/predict", files=[("files", ("bad.png", blob[:40]))])
        assert broken.status_code == 422 and "cannot be read as an image" in broken.json()["error"]


def test_a_missing_image_names_the_row_and_path(tmp_path):
    csv = make_lines(tmp_path / "lines", rows=12)
    (tmp_path / "lines" / "img" / "3.png").unlink()
    with pytest.raises(UserError, match=r"lines.csv row 4: image .*3\.png cannot be read"):
        tunelab.train(run_config(csv, tmp_path / "run", drop_invalid=False))


def test_training_without_any_text_is_refused(tmp_path):
    csv = make_lines(tmp_path / "lines", rows=12)
    frame = pd.read_csv(csv)
    frame["text"] = ""
    frame.to_csv(csv, index=False)
    with pytest.raises(UserError, match=r"lines\.csv: no rows are left after dropping empty texts"):
        tunelab.train(run_config(csv, tmp_path / "run"))


def test_a_corrupt_image_in_strict_mode_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    import sys

    from tunelab.cli import main

    csv = make_lines(tmp_path / "lines", rows=12)
    (tmp_path / "lines" / "img" / "5.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps(run_config(csv, tmp_path / "run", drop_invalid=False)))
    monkeypatch.setattr(sys, "argv", ["tunelab", "train", str(config)])
    with pytest.raises(SystemExit) as stopped:
        main()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert stopped.value.code == 2 and len(errors) == 1
    assert "lines.csv row 6: image" in errors[0] and "5.png cannot be read" in errors[0]
    assert not (tmp_path / "run" / "model").exists()  # nothing half-written


def test_an_odd_aspect_ratio_is_letterboxed_not_squashed(tmp_path):
    from tunelab.data.load import read_table

    csv = make_lines(tmp_path / "lines", rows=12)
    Image.new("RGB", (640, 16), (220, 60, 60)).save(tmp_path / "lines" / "img" / "3.png")
    task = ImageToText()
    frame = task.standardize(read_table(csv))
    lines = task.doctor_lines(task.diagnose({"train": frame}, False, 0))
    odd = [line for line in lines if "aspect ratio over" in line]
    assert odd and "letterboxed into the model's input shape" in odd[0] and "squashed" not in odd[0]
