"""The image-text-to-text task: a tiny SmolVLM built in code learns to answer questions about
colour squares from chats with images (both the content-part and the `images` + `<image>`
forms), is judged on the last answers, and bad chats are one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tunelab
from tunelab.errors import UserError

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 220)}


def make_chats(root: Path, rows: int = 60, seed: int = 0) -> Path:
    """Chats asking the colour of a noisy square: half as OpenAI content parts, half as
    LLaMA-Factory's images + <image>; the answer is only in the image."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(rows):
        name = list(COLOURS)[i % len(COLOURS)]
        pixels = np.clip(np.array(COLOURS[name]) + rng.integers(-30, 30, (24, 24, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(root / "img" / f"{i}.png")
        if i % 2:
            chat = {"messages": [
                {"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": f"img/{i}.png"}},
                    {"type": "text", "text": "what colour is it"}]},
                {"role": "assistant", "content": name}]}  # fmt: skip
        else:
            chat = {"images": [f"img/{i}.png"], "messages": [
                {"role": "user", "content": "<image>what colour is it"},
                {"role": "assistant", "content": name}]}  # fmt: skip
        lines.append(json.dumps(chat))
    (root / "chats.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "chats.jsonl"


def two_image_chat(images: list[str], first: str, second: str) -> dict:
    """A conversation asking about two images, one per user turn (LLaMA-Factory's form)."""
    return {"images": images, "messages": [
        {"role": "user", "content": "<image>what colour is it"},
        {"role": "assistant", "content": first},
        {"role": "user", "content": "<image>and this one"},
        {"role": "assistant", "content": second}]}  # fmt: skip


def diagnosed(chats: Path, held_chat: dict) -> dict:
    """The image-chat doctor's report on ``chats`` as train and one held-out conversation,
    written beside it, as test."""
    from tunelab.data.load import read_table
    from tunelab.tasks.image_chat import ImageTextToText

    held = chats.parent / "test.jsonl"
    held.write_text(json.dumps(held_chat) + "\n", "utf-8")
    task = ImageTextToText()
    frames = {"train": task.standardize(read_table(chats)),
              "test": task.standardize(read_table(held))}  # fmt: skip
    return task.diagnose(frames, find_label_errors=False, seed=0)


@pytest.fixture(scope="module")
def tiny_qwen2_vl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Qwen2-VL (hidden 32; 4-pixel patches merged 2x2, 16x16 to 32x32 pixels: 4
    to 16 image tokens an image) and its processor, built without its video part as tunelab
    loads it where torchvision is missing."""
    from tunelab.models.scratch_vlm import save_scratch_qwen2_vl

    texts = ["what colour is it", *COLOURS] * 10
    return save_scratch_qwen2_vl(texts, tmp_path_factory.mktemp("tiny-qwen2-vl"))


def run_config(train: Path, output: Path) -> dict:
    return {
        "task": "image-text-to-text",
        "output": str(output),
        "data": {"train": str(train)},
        "model": {"name": "scratch-vlm", "scratch": {"layers": 2, "hidden": 32, "heads": 2}},
        "image": {"scratch_size": 16, "scratch_patch": 4},
        "generation": {"max_new_tokens": 6},
        "training": {"epochs": 12, "learning_rate": 3e-3, "batch_size": 8,
                     "early_stopping_patience": None, "logging_steps": 1000},
    }  # fmt: skip


def test_a_tiny_vlm_learns_to_answer_from_the_image(tmp_path: Path) -> None:
    chats = make_chats(tmp_path / "data")
    run = tmp_path / "run"
    tunelab.train(run_config(chats, run))
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    test = metrics["test"]
    # the three answers are equally frequent: above chance only by looking at the image
    assert test["examples"] >= 5 and test["exact_match"] >= 0.8, test
    assert test["exact_match"] <= test["rougeL"] <= 1.0  # answers are judged as descriptions too
    first = json.loads((run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"path", "prompt", "output", "reference", "character_errors"}
    assert first["prompt"] == "what colour is it"
    report = (run / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in report
    config = json.loads((run / "model" / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["Idefics3ForConditionalGeneration"]

    # predict: an image and a question, as tunelab predict --image --text gives them; the
    # answer is what plain transformers generates from the saved folder
    images = [str(tmp_path / "data" / "img" / f"{i}.png") for i in range(3)]
    records = tunelab.predict(run / "model", texts=["what colour is it"] * 3, images=images)
    assert [r["prompt"] for r in records] == ["what colour is it"] * 3
    assert sum(r["output"] == name for r, name in zip(records, COLOURS, strict=True)) >= 2
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(run / "model")
    model = AutoModelForImageTextToText.from_pretrained(run / "model")
    parts = [{"type": "image"}, {"type": "text", "text": "what colour is it"}]
    question = [{"role": "user", "content": parts}]
    text = processor.apply_chat_template(question, tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[text], images=[[Image.open(images[0]).convert("RGB")]],
                       return_tensors="pt")  # fmt: skip
    generated = model.generate(**inputs)[0, inputs["input_ids"].shape[1] :]
    assert processor.decode(generated, skip_special_tokens=True).strip() == records[0]["output"]

    # batched (left-padded, questions of different lengths) answers as one at a time does
    from tunelab.models.trained import load_trained

    model, processor, task, max_length = load_trained(run / "model")
    questions = ["what colour is it", "colour?", "what colour is it", "is it red or blue"]
    frame = task.question_frame([*images, images[0]], questions)
    batched = task.forward(model, processor, frame, max_length, batch_size=4)
    singly = task.forward(model, processor, frame, max_length, batch_size=1)
    assert list(batched) == list(singly) and batched.stopped == singly.stopped
    assert batched[0] == records[0]["output"]

    # a chats file ending with the user's turn is answered too
    ask = tmp_path / "data" / "ask.jsonl"
    turn = {"role": "user", "content": "<image>what colour is it"}
    ask.write_text(json.dumps({"images": ["img/1.png"], "messages": [turn]}) + "\n", "utf-8")
    [answered] = tunelab.predict(run / "model", input=ask)
    assert answered["output"] == records[1]["output"] and "reference" not in answered

    # tunelab chat --image: the first question goes with the image, /image adds another
    import io

    from tunelab.chat import chat

    answers = iter(["what colour is it", f"/image {images[1]}", "what colour is it", ""])
    out = io.StringIO()
    talk = chat(run, images=[Path(images[0])], read=lambda _: next(answers), out=out)
    assert [m["role"] for m in talk] == ["user", "assistant", "user", "assistant"]
    assert talk[0]["content"][0] == {"type": "image"} and talk[2]["content"][0] == {"type": "image"}
    assert talk[1]["content"][0]["text"] == records[0]["output"]  # as predict answered it
    assert "(image 2 goes with your next question)" in out.getvalue()
    with pytest.raises(UserError, match="cannot be read as an image"):
        chat(run, images=[tmp_path / "data" / "chats.jsonl"], read=lambda _: "")

    # served: an uploaded image (or base64 in JSON) with the question in prompt
    pytest.importorskip("fastapi")
    import base64

    from fastapi.testclient import TestClient

    from tunelab.serving.server import create_app

    blob = Path(images[0]).read_bytes()
    with TestClient(create_app(run)) as client:
        uploaded = client.post("/predict", files=[("files", ("sq.png", blob))],
                               data={"prompt": "what colour is it"})  # fmt: skip
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json()[0]["output"] == records[0]["output"]
        assert uploaded.json()[0]["path"] == "sq.png"
        encoded = client.post("/predict", json={"file": base64.b64encode(blob).decode(),
                                                "prompt": "what colour is it"})  # fmt: skip
        assert encoded.json()[0]["output"] == records[0]["output"]
        unasked = client.post("/predict", files=[("files", ("sq.png", blob))])
        assert unasked.status_code == 422 and "prompt" in unasked.json()["error"]
        broken = client.post("/predict", files=[("files", ("bad.png", blob[:40]))],
                             data={"prompt": "what colour is it"})  # fmt: skip
        assert broken.status_code == 422 and "cannot be read as an image" in broken.json()["error"]


def test_image_processor_sets_the_image_token_budget(tmp_path: Path) -> None:
    """image.processor reaches the processor as it loads (here SmolVLM's image splitting:
    a 32-pixel image in 16-pixel tiles is 4 tiles and the whole, 5x the tokens), is reported,
    and is saved with the run; a misspelt setting is refused instead of silently ignored."""
    chats = make_chats(tmp_path / "data", rows=30)
    config = run_config(chats, tmp_path / "plain")
    config["training"]["epochs"] = 1
    tunelab.train(config)
    plain = json.loads((tmp_path / "plain" / "data_report.json").read_text(encoding="utf-8"))
    assert plain["image_tokens_per_image"] == 4  # (16 / 4)^2 patches, shuffled by 2x2

    config["output"] = str(tmp_path / "split")
    config["image"]["processor"] = {"do_image_splitting": True, "size": {"longest_edge": 32}}
    tunelab.train(config)
    split = json.loads((tmp_path / "split" / "data_report.json").read_text(encoding="utf-8"))
    assert split["image_tokens_per_image"] == 5 * 4
    saved = json.loads((tmp_path / "split" / "model" / "processor_config.json").read_text("utf-8"))
    images = saved.get("image_processor", saved)
    assert images["do_image_splitting"] is True and images["size"] == {"longest_edge": 32}

    config["output"] = str(tmp_path / "typo")
    config["image"]["processor"] = {"max_pixel": 1000}
    with pytest.raises(UserError, match=r"image\.processor: 'max_pixel' is not a setting"):
        tunelab.train(config)


def test_images_and_questions_must_pair_up(tmp_path: Path) -> None:
    from tunelab.tasks.image_chat import ImageTextToText

    make_chats(tmp_path / "data", rows=3)
    images = [str(tmp_path / "data" / "img" / f"{i}.png") for i in range(2)]
    with pytest.raises(UserError, match="--image given 2 times and --text 3 times"):
        ImageTextToText().question_frame(images, ["a", "b", "c"])
    frame = ImageTextToText().question_frame(images[:1], ["a", "b"])  # one image, two questions
    assert len(frame) == 2 and "label" not in frame.columns


def test_the_doctor_sees_every_image_of_a_conversation_and_names_its_row(tmp_path: Path) -> None:
    """A second image in a later turn, copied from another conversation's image, is found as
    a duplicate; a test conversation whose second image is a training image is leakage; the
    report names the conversations' rows."""
    import shutil

    from tunelab.data.image_doctor import image_doctor_lines

    chats = make_chats(tmp_path / "data", rows=6)
    lines = chats.read_text(encoding="utf-8").splitlines()
    shutil.copy(tmp_path / "data" / "img" / "0.png", tmp_path / "data" / "img" / "copy.png")
    two = two_image_chat(["img/3.png", "img/copy.png"], "green", "red")
    lines[3] = json.dumps(two)
    chats.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = diagnosed(chats, {**two, "images": ["img/5.png", "img/2.png"]})
    train = report["images"]["train"]
    assert train["rows"] == 6 and train["images_read"] == 7
    assert train["duplicates"] == 1 and train["duplicate_examples"]
    assert report["leakage"]["test_in_train"]["exact"] == 2  # img/5.png and img/2.png
    assert {e["row"] for e in report["leakage"]["test_in_train"]["examples"]} == {1}
    said = image_doctor_lines(report)
    assert any("7 images" in line for line in said), said


def test_one_image_asked_about_twice_is_no_duplicate_but_still_leaks(tmp_path: Path) -> None:
    """Two questions about one image file (in one conversation, or two) are one image to the
    doctor, said with its uses; the same file in the test split is still leakage."""
    from tunelab.data.image_doctor import image_doctor_lines

    chats = make_chats(tmp_path / "data", rows=4)
    lines = chats.read_text(encoding="utf-8").splitlines()
    twice = two_image_chat(["img/0.png", "img/0.png"], "red", "still red")
    chats.write_text("\n".join([*lines, json.dumps(twice)]) + "\n", encoding="utf-8")
    report = diagnosed(chats, twice)
    train = report["images"]["train"]
    assert (train["images_read"], train["image_uses"], train.get("duplicates", 0)) == (4, 6, 0)
    assert report["leakage"]["test_in_train"]["exact"] == 1
    assert any("4 images (6 uses in 5 conversations)" in line
               for line in image_doctor_lines(report))  # fmt: skip


def test_bad_chats_are_one_line_and_exit_2(tmp_path: Path, monkeypatch, capsys) -> None:
    import sys

    from tunelab.cli import main

    chats = make_chats(tmp_path / "data", rows=12)
    good = chats.read_text(encoding="utf-8").splitlines()
    (tmp_path / "data" / "img" / "7.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    system = {"messages": [
        {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "img/1.png"}}]},
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "red"}]}  # fmt: skip
    cases = [
        (4, {"images": ["img/4.png", "img/5.png"], "messages": json.loads(good[4])["messages"]},
         "1 <image> placeholder(s) in the messages but 2 path(s) in 'images'"),
        (4, {"images": ["img/none.png"], "messages": json.loads(good[4])["messages"]},
         "image 1 'img/none.png' does not exist"),
        (7, None, "image 1 'img/7.png' cannot be read as an image"),
        (2, system, "message 1 (system) holds an image; the model reads images in user turns"),
    ]  # fmt: skip
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps(run_config(chats, tmp_path / "run")), encoding="utf-8")
    for line, row, says in cases:
        lines = list(good)
        if row is not None:
            lines[line] = json.dumps(row)
        chats.write_text("\n".join(lines) + "\n", encoding="utf-8")
        monkeypatch.setattr(sys, "argv", ["tunelab", "train", str(config)])
        with pytest.raises(SystemExit) as stopped:
            main()
        err = capsys.readouterr().err
        errors = [text for text in err.splitlines() if text.startswith("error:")]
        assert stopped.value.code == 2 and len(errors) == 1, err
        assert f"chats.jsonl row {line + 1}: " in errors[0] and says in errors[0], errors[0]
        assert not (tmp_path / "run").exists()  # nothing half-written


def test_chat_with_an_image_needs_a_vision_language_model(tmp_path: Path, tiny_llama: Path) -> None:
    from tunelab.chat import chat

    make_chats(tmp_path / "data", rows=1)
    with pytest.raises(UserError, match="is not a vision-language model; --image needs one"):
        chat(tiny_llama, images=[tmp_path / "data" / "img" / "0.png"], read=lambda _: "")


def test_lora_adapts_the_language_model_and_leaves_the_vision_tower(tmp_path: Path) -> None:
    from tunelab.models.scratch_vlm import save_scratch_vlm

    chats = make_chats(tmp_path / "data", rows=12)
    base = save_scratch_vlm(["what colour is it", *COLOURS] * 10, tmp_path / "base",
                            image_size=16, patch_size=4, layers=2, hidden=32, heads=2,
                            vision_hidden=32)  # fmt: skip
    config = run_config(chats, tmp_path / "run")
    config.update(model={"name": str(base)}, peft={"method": "lora"})
    config["training"]["epochs"] = 1
    tunelab.train(config)
    model_dir = tmp_path / "run" / "model"
    targets = json.loads((model_dir / "adapter_config.json").read_text())["target_modules"]
    assert "text_model" in targets and "vision" not in targets
    image = str(tmp_path / "data" / "img" / "0.png")
    [record] = tunelab.predict(model_dir, texts=["what colour is it"], images=[image])
    assert isinstance(record["output"], str)


def test_a_tiny_qwen2_vl_learns_to_answer_and_its_saved_folder_predicts(
    tmp_path: Path, tiny_qwen2_vl: Path
) -> None:
    """Qwen2-VL end to end, through the processor tunelab loads without torchvision: its
    patch rows and 3-D positions (image_grid_thw, mm_token_type_ids) reach the model, it
    learns the colours, and the saved folder names the usual processor class and answers."""
    import io

    from tunelab.chat import chat, load_vision_chat_model

    chats = make_chats(tmp_path / "data")
    run = tmp_path / "run"
    config = run_config(chats, run)
    config.update(model={"name": str(tiny_qwen2_vl)})
    # Qwen2-VL's image-token budget, as the README's example sets it (folded into `size`)
    config["image"] = {"processor": {"min_pixels": 8 * 8, "max_pixels": 16 * 16}}
    tunelab.train(config)
    test = json.loads((run / "metrics.json").read_text(encoding="utf-8"))["test"]
    assert test["examples"] >= 5 and test["exact_match"] >= 0.8, test
    report = json.loads((run / "data_report.json").read_text(encoding="utf-8"))
    assert report["image_tokens_per_image"] == 4  # 24x24 squares cut to 16x16: 4x4 patches / 2x2
    saved = json.loads((run / "model" / "processor_config.json").read_text(encoding="utf-8"))
    assert saved["processor_class"] == "Qwen2VLProcessor"
    assert saved["image_processor"]["size"] == {"longest_edge": 16 * 16, "shortest_edge": 8 * 8}

    images = [str(tmp_path / "data" / "img" / f"{i}.png") for i in range(3)]
    records = tunelab.predict(run / "model", texts=["what colour is it"] * 3, images=images)
    assert sum(r["output"] == name for r, name in zip(records, COLOURS, strict=True)) >= 2
    _, processor, _ = load_vision_chat_model(run)
    assert type(processor).__name__ == "Qwen2VLProcessor"
    # tunelab chat --image, a second image joining the conversation: both images' patches
    answers = iter(["what colour is it", f"/image {images[1]}", "what colour is it", ""])
    talk = chat(run, images=[Path(images[0])], read=lambda _: next(answers), out=io.StringIO())
    assert [m["role"] for m in talk] == ["user", "assistant", "user", "assistant"]
    assert talk[1]["content"][0]["text"] == records[0]["output"]  # as predict answered it
    assert isinstance(talk[3]["content"][0]["text"], str)

    pytest.importorskip("fastapi")  # tunelab serve: an uploaded image and its question
    from fastapi.testclient import TestClient

    from tunelab.serving.server import create_app

    square = ("sq.png", Path(images[0]).read_bytes())
    with TestClient(create_app(run)) as client:
        uploaded = client.post("/predict", files=[("files", square)],
                               data={"prompt": "what colour is it"})  # fmt: skip
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json()[0]["output"] == records[0]["output"]


def test_a_qwen2_vl_conversation_keeps_the_patch_rows_of_all_its_images(
    tmp_path: Path, tiny_qwen2_vl: Path
) -> None:
    """Qwen2-VL's processor returns one array of patch rows for all images of a call, not one
    entry a conversation: an encoded conversation keeps every row of every image (the first
    row alone once passed for the whole of them)."""
    from tunelab.models.load import from_pretrained
    from tunelab.models.vision_processor import VisionProcessor
    from tunelab.tasks.vlm_encoding import encode_image_chat

    processor = from_pretrained(VisionProcessor, str(tiny_qwen2_vl))
    paths = []
    for i, size in enumerate([(32, 32), (16, 24)]):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", size, (200, 10, 10)).save(paths[-1])
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "image"},
                                             {"type": "text", "text": "what colour is it"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "red"}]}]  # fmt: skip
    row = encode_image_chat(processor, messages, paths, "chats.jsonl line 1")
    grids = np.asarray(row["image_grid_thw"])
    assert grids.shape == (2, 3)
    assert len(row["pixel_values"]) == int(grids.prod(axis=1).sum())  # 8x8 + 4x6 patches
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert list(row["input_ids"]).count(image_id) == int(grids.prod(axis=1).sum()) // 4
    answer = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label >= 0]
    assert processor.tokenizer.decode(answer).startswith("red")


def test_qwen2_vl_conversations_encoded_in_one_call_are_what_each_makes_alone(
    tmp_path: Path, tiny_qwen2_vl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One processor call for a batch (2-4x faster than a call a conversation), its patch
    rows cut back by image counts and grids: conversations of one and two images of several
    sizes get exactly the tokens, labels, patches and grids they get alone."""
    from tunelab.models.load import from_pretrained
    from tunelab.models.vision_processor import VisionProcessor
    from tunelab.tasks.vlm_encoding import encode_image_chat, encode_image_chats

    processor = from_pretrained(VisionProcessor, str(tiny_qwen2_vl))
    paths = []
    for i, size in enumerate([(32, 32), (16, 24), (40, 16), (24, 24)]):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.new("RGB", size, (20 * i, 90, 200 - 20 * i)).save(paths[-1])

    def chat(images: int, answer: str) -> list[dict]:
        question = [{"type": "image"}] * images + [{"type": "text", "text": "what colour is it"}]
        return [{"role": "user", "content": question},
                {"role": "assistant", "content": [{"type": "text", "text": answer}]}]  # fmt: skip

    chats = [(chat(1, "red"), paths[:1], "c line 1"), (chat(2, "blue"), paths[1:3], "c line 2"),
             (chat(1, "green"), paths[3:], "c line 3")]  # fmt: skip
    import tunelab.tasks.vlm_encoding as encoding

    with monkeypatch.context() as patched:  # the batch must not fall back to one at a time
        patched.setattr(encoding, "encode_image_chat", lambda *a, **k: pytest.fail("alone"))
        together = encode_image_chats(processor, chats)
    for batched, (messages, images, where) in zip(together, chats, strict=True):
        alone = encode_image_chat(processor, messages, images, where)
        assert set(batched) == set(alone)
        for key in ("input_ids", "labels", "mm_token_type_ids"):
            assert list(batched[key]) == list(alone[key]), key
        for key in ("pixel_values", "image_grid_thw"):
            assert np.array_equal(np.asarray(batched[key]), np.asarray(alone[key])), key
    assert [len(row["image_grid_thw"]) for row in together] == [1, 2, 1]


def test_the_processor_loads_without_its_video_part_only_where_torchvision_is_missing(
    tmp_path: Path, tiny_qwen2_vl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback is for one failure: a video processor that cannot load for want of
    torchvision. A processor with no video part loads as AutoProcessor gives it, and where
    torchvision is installed the original error stands."""
    import transformers.utils

    from tunelab.models.scratch_vlm import save_scratch_vlm
    from tunelab.models.vision_processor import VisionProcessor, image_only_processor

    smol = save_scratch_vlm(["what colour is it"] * 10, tmp_path / "smol", image_size=16,
                            patch_size=4, layers=1, hidden=32, vision_hidden=32)  # fmt: skip
    assert type(VisionProcessor.from_pretrained(str(smol))) is transformers.Idefics3Processor
    qwen = VisionProcessor.from_pretrained(str(tiny_qwen2_vl))
    assert type(qwen) is image_only_processor(transformers.Qwen2VLProcessor)
    assert not hasattr(qwen, "video_processor") and qwen.chat_template

    # a class that cannot be built without its video part (Gemma 4 passes it on by name)
    import tunelab.models.vision_processor as vision

    class Unbuildable:
        @staticmethod
        def from_pretrained(*args: object, **kwargs: object) -> None:
            raise TypeError("Unexpected keyword argument video_processor.")

    Unbuildable.__name__ = "Gemma4Processor"

    with monkeypatch.context() as patched:
        patched.setattr(vision, "_image_only_class", lambda *_: Unbuildable)
        with pytest.raises(UserError, match=r"\(Gemma4Processor\) holds a video processor.*"
                                            r"install torchvision"):  # fmt: skip
            VisionProcessor.from_pretrained(str(tiny_qwen2_vl))

    monkeypatch.setattr(transformers.utils, "is_torchvision_available", lambda: True)
    with pytest.raises(OSError, match="video processor"):
        VisionProcessor.from_pretrained(str(tiny_qwen2_vl))


@pytest.mark.parametrize("name", ["Qwen2_5_VLProcessor", "Qwen3VLProcessor"])
def test_later_qwen_processors_build_without_their_video_part(name: str) -> None:
    """The same fallback serves Qwen2.5-VL and Qwen3-VL, whose processors also hold a video
    processor: built from an image processor and a tokenizer, they expand an image."""
    import transformers
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    from tunelab.models.scratch_vlm import QWEN_VISION_TOKENS
    from tunelab.models.tokenizer_training import byte_level_bpe_tokenizer
    from tunelab.models.vision_processor import image_only_processor

    tokenizer = byte_level_bpe_tokenizer(["what colour is it"] * 10, vocab_size=300)
    tokenizer.add_tokens(QWEN_VISION_TOKENS, special_tokens=True)
    images = Qwen2VLImageProcessorPil(min_pixels=16 * 16, max_pixels=32 * 32, patch_size=4)
    processor = image_only_processor(getattr(transformers, name))(images, tokenizer)
    assert type(processor).__name__ == name and not hasattr(processor, "video_processor")
    encoded = processor(text=["<|vision_start|><|image_pad|><|vision_end|>"],
                        images=[Image.new("RGB", (32, 32))])  # fmt: skip
    assert list(encoded["input_ids"][0]).count(processor.image_token_id) > 1


def test_qwen2_vl_batches_concatenate_patches_and_pad_per_token_keys() -> None:
    """Qwen2-VL's collated layout on rows built by hand: patch rows of every image
    concatenated with their image_grid_thw, mm_token_type_ids padded per token like
    input_ids; a tiny Qwen2-VL takes the batch and its loss back-propagates."""
    from types import SimpleNamespace

    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    from tunelab.tasks.image_chat import ImageTextToText

    image_id, start, end = 60, 61, 62
    images = Qwen2VLImageProcessorPil(min_pixels=16 * 16, max_pixels=64 * 64, patch_size=8,
                                      merge_size=2, temporal_patch_size=2)  # fmt: skip
    rows = []
    for size, answer in (((40, 32), [5, 6, 7]), ((64, 16), [8, 9])):
        pixels = images(images=[Image.new("RGB", size, (200, 10, 10))], return_tensors="np")
        count = int(np.prod(pixels["image_grid_thw"][0])) // 4  # merged 2x2
        ids = [start] + [image_id] * count + [end] + answer
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids),
                     "mm_token_type_ids": [0] + [1] * count + [0] * (1 + len(answer)),
                     "labels": [-100] * (count + 2) + answer,
                     "pixel_values": pixels["pixel_values"],
                     "image_grid_thw": pixels["image_grid_thw"]})  # fmt: skip
    tokenizer = SimpleNamespace(tokenizer=SimpleNamespace(pad_token_id=0))
    batch = ImageTextToText().collator(tokenizer)(rows)
    width = max(len(row["input_ids"]) for row in rows)
    assert batch["input_ids"].shape == batch["mm_token_type_ids"].shape == (2, width)
    assert batch["labels"][1, -1].item() == -100 and batch["mm_token_type_ids"][1, -1] == 0
    patches = sum(row["pixel_values"].shape[0] for row in rows)
    assert batch["pixel_values"].shape[0] == patches and batch["image_grid_thw"].shape == (2, 3)

    config = Qwen2VLConfig(
        text_config={"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                     "rope_scaling": {"type": "mrope", "mrope_section": [2, 2, 4]},
                     "eos_token_id": 1, "bos_token_id": 1},
        vision_config={"depth": 1, "embed_dim": 32, "hidden_size": 32, "num_heads": 2,
                       "patch_size": 8, "spatial_merge_size": 2, "temporal_patch_size": 2},
        image_token_id=image_id, vision_start_token_id=start, vision_end_token_id=end,
        video_token_id=63,
    )  # fmt: skip
    torch.manual_seed(0)
    loss = Qwen2VLForConditionalGeneration(config)(**batch).loss
    loss.backward()
    assert torch.isfinite(loss)


def test_token_lengths_are_what_the_processor_makes_so_max_length_cuts_nothing_it_need_not(
    tmp_path: Path,
) -> None:
    """The run's max_length comes from these counts: an undercount would cut every answer."""
    from transformers import AutoProcessor

    from tunelab.data.load import read_table
    from tunelab.models.scratch_vlm import save_scratch_vlm
    from tunelab.tasks.image_chat import ImageTextToText

    chats = make_chats(tmp_path / "data", rows=6)
    lines = chats.read_text(encoding="utf-8").splitlines()
    lines[2] = json.dumps({"images": ["img/2.png", "img/3.png"], "messages": [
        {"role": "user", "content": "<image><image>which is greener"},
        {"role": "assistant", "content": "the second one, by far"}]})  # fmt: skip
    chats.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = save_scratch_vlm(["what colour is it", *COLOURS] * 10, tmp_path / "vlm",
                             image_size=16, patch_size=4, layers=1, hidden=32, heads=2,
                             vision_hidden=32)  # fmt: skip
    processor = AutoProcessor.from_pretrained(model)
    task = ImageTextToText()
    frame = task.standardize(read_table(chats))
    counted = task.token_lengths(frame, processor)
    encoded = task.encode(frame, processor, max_length=10_000)
    assert list(counted) == [len(encoded[i]["input_ids"]) for i in range(len(frame))]
    assert counted[2] > counted[0]  # two images and a longer answer
