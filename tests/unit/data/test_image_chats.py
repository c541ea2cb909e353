"""Chats with images: OpenAI content parts, LLaMA-Factory/TRL `images` + `<image>`, ShareGPT,
all read into one form; every bad input is one sentence naming the line."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import TWO_IMAGE_CHAT
from tunelab.data.image_chats import read_image_chats
from tunelab.errors import UserError


def picture(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 8), colour).save(path)
    return path


def chats_file(folder: Path, rows: list[dict], name: str = "chats.jsonl") -> Path:
    path = folder / name
    if name.endswith(".json"):
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def test_the_three_forms_read_the_same(tmp_path: Path) -> None:
    red, blue = (
        picture(tmp_path / "img" / "red.png"),
        picture(tmp_path / "img" / "b.png", (0, 0, 200)),
    )
    parts = {
        "messages": [
            {"role": "system", "content": "Read carefully."},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "img/red.png"}},
                    {"type": "text", "text": "Which is red?"},
                    {"type": "image", "image": f"file://{blue}"},
                ],
            },
            {"role": "assistant", "content": "The first."},
            {"role": "user", "content": "Sure?"},
            {"role": "assistant", "content": "Yes."},
        ]
    }
    placeholders = {
        "images": ["img/red.png", "img/b.png"],
        "messages": [
            {"role": "system", "content": "Read carefully."},
            {"role": "user", "content": "<image>Which is red?<image>"},
            {"role": "assistant", "content": "The first."},
            {"role": "user", "content": "Sure?"},
            {"role": "assistant", "content": "Yes."},
        ],
    }
    sharegpt = {
        "images": ["img/red.png", "img/b.png"],
        "conversations": [
            {"from": "system", "value": "Read carefully."},
            {"from": "human", "value": "<image>Which is red?<image>"},
            {"from": "gpt", "value": "The first."},
            {"from": "human", "value": "Sure?"},
            {"from": "gpt", "value": "Yes."},
        ],
    }
    jsonl = read_image_chats(chats_file(tmp_path, [parts, placeholders, sharegpt]))
    listed = read_image_chats(chats_file(tmp_path, [placeholders], "demo.json"))
    for chat in [*jsonl, *listed]:
        assert chat == {"messages": TWO_IMAGE_CHAT, "images": [str(red), str(blue)]}


def test_a_data_uri_is_read_as_the_images_bytes(tmp_path: Path) -> None:
    blob = picture(tmp_path / "x.png").read_bytes()
    uri = "data:image/png;base64," + base64.b64encode(blob).decode()
    row = {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": uri}}]},
            {"role": "assistant", "content": "red"},
        ]
    }
    [chat] = read_image_chats(chats_file(tmp_path, [row]))
    assert chat["images"] == [blob]


def bad(tmp_path: Path, row: dict, says: str) -> None:
    path = chats_file(
        tmp_path,
        [
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "ok"},
                ]
            },
            row,
        ],
    )
    with pytest.raises(UserError) as error:
        read_image_chats(path)
    message = str(error.value)
    assert message.startswith(f"{path} line 2: ") and says in message and "\n" not in message


def test_every_bad_input_is_one_sentence_naming_the_line(tmp_path: Path) -> None:
    picture(tmp_path / "ok.png")
    (tmp_path / "broken.png").write_bytes(picture(tmp_path / "b.png").read_bytes()[:30])
    user = {"role": "user", "content": "<image>what?"}
    answer = {"role": "assistant", "content": "red"}
    bad(
        tmp_path,
        {"images": ["ok.png", "ok.png"], "messages": [user, answer]},
        "1 <image> placeholder(s) in the messages but 2 path(s) in 'images'",
    )
    bad(
        tmp_path,
        {"messages": [user, answer]},
        "1 <image> placeholder(s) in the messages but 0 path(s)",
    )
    bad(
        tmp_path,
        {"images": ["missing.png"], "messages": [user, answer]},
        "image 1 'missing.png' does not exist (looked for",
    )
    bad(
        tmp_path,
        {"images": ["broken.png"], "messages": [user, answer]},
        "image 1 'broken.png' cannot be read as an image (",
    )
    bad(
        tmp_path,
        {"images": ["../outside.png"], "messages": [user, answer]},
        "leads outside the data file's folder",
    )
    bad(
        tmp_path,
        {"images": ["https://example.com/a.png"], "messages": [user, answer]},
        "is the remote URL https://example.com/a.png; tunelab reads local files",
    )
    system = {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "ok.png"}}]}
    bad(
        tmp_path,
        {"messages": [system, {"role": "user", "content": "hi"}, answer]},
        "message 1 (system) holds an image; the model reads images in user turns only",
    )
    bad(
        tmp_path,
        {
            "images": ["ok.png"],
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "<image>"},
            ],
        },
        "message 2 (assistant) holds an <image> placeholder; the model reads images in user",
    )
    bad(
        tmp_path,
        {"messages": [{"role": "user", "content": [{"type": "video", "url": "v.mp4"}]}, answer]},
        "has a content part",
    )
    bad(
        tmp_path,
        {"images": ["ok.png"], "messages": [{"role": "user", "content": "<image>hi"}]},
        "no assistant message to learn from",
    )
    bad(
        tmp_path,
        {
            "images": ["ok.png"],
            "messages": [
                {"role": "user", "content": [{"type": "image", "path": "ok.png"}]},
                answer,
            ],
        },
        "images are given both as content parts and in 'images'",
    )


def test_a_file_that_is_not_chats_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"messages": []}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"c\.jsonl line 1: 'messages' must be a non-empty list"):
        read_image_chats(path)
    path.write_text('{"messages": [{"role": "user", "content": "a"}]}\n{not json\n', "utf-8")
    with pytest.raises(UserError, match=r"c\.jsonl line 2 is not valid JSON"):
        read_image_chats(path)
    with pytest.raises(UserError, match=r"does not exist; check the path"):
        read_image_chats(tmp_path / "none.jsonl")
