"""Chats with images: the chat JSONL tunelab reads for text chat, with images in the turns as
the ecosystem writes them, checked with errors that name the line.

The forms read, all normalised to one:

- **OpenAI-style content parts**: a message's ``content`` is a list of ``{"type": "text",
  "text": ...}`` and ``{"type": "image_url", "image_url": {"url": ...}}`` parts (also
  ``{"type": "image", "image"|"url"|"path": ...}``); the URL is a path relative to the file, a
  ``file://`` URL or a ``data:image/...;base64,`` URI.
- **LLaMA-Factory / TRL**: the row's ``images`` list of paths, and one ``<image>`` placeholder
  per image in the message strings, in order.
- **ShareGPT**: ``conversations`` (or ``messages``) of ``{"from": human|gpt|system, "value"}``.

Each row becomes ``{"messages", "images"}``: messages in the form Hugging Face processors'
chat templates take (``content`` a list of ``{"type": "text", "text"}`` and ``{"type":
"image"}`` parts) and the images (absolute paths, or the bytes of a ``data:`` URI) in the order
their parts appear, which is the order ``processor(images=...)`` expects. Several images per
turn and several turns are fine. Images belong to user turns: the model reads them, it does
not write them, and most chat templates place them in user turns only.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from tunelab.data.chat_formats import role_and_content
from tunelab.data.images import ImageBombError, image_problem
from tunelab.errors import UserError

PLACEHOLDER = "<image>"
IMAGE_PART_KEYS = ("image", "url", "path")
DATA_URI = re.compile(r"data:image/[\w.+-]+;base64,(?P<data>.*)", re.DOTALL)


def read_image_chat(
    row: dict[str, Any], where: str, base: Path, allow_system_images: bool = False,
    need_answer: bool = True, confine: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """One row of a chat JSONL with images as ``{"messages", "images"}`` (see the module).

    Args:
        row: the row as read from the file.
        where: how errors name it (``"chats.jsonl line 4"``).
        base: the data file's folder: relative paths are read from it, and no path may leave it.
        allow_system_images: whether the model's chat template takes images in a system turn.
        need_answer: whether the conversation must hold an assistant answer (training and
            evaluation; a conversation to answer ends with the user's turn).
        confine: whether image paths must stay inside ``base`` (a data file's images; a path
            typed on the command line may be anywhere).

    Raises:
        UserError: naming the line (and message, and image) for a malformed conversation, an
            image in a turn that cannot hold one, placeholders that do not match the images, a
            missing, remote, unreadable or outside image.
    """
    turns = row.get("messages", row.get("conversations"))
    if not isinstance(turns, list) or not turns:
        raise UserError(f"{where}: 'messages' must be a non-empty list of {{role, content}}")
    listed = row.get("images") or []
    if isinstance(listed, str):
        listed = [listed]
    if not isinstance(listed, list):
        raise UserError(f"{where}: 'images' must be a list of image paths")
    messages: list[dict[str, Any]] = []
    sources: list[Any] = []  # each image as written: a path, URL or data URI
    for number, turn in enumerate(turns, start=1):
        role, parts = _turn(turn, number, where)
        for part in parts:
            if part["type"] == "image":
                if role == "assistant" or (role == "system" and not allow_system_images):
                    raise UserError(
                        f"{where}: message {number} ({role}) holds an image; the model reads "
                        "images in user turns only, so move it into the user message"
                    )
                sources.append(part.pop("source", None))
        messages.append({"role": role, "content": parts})
    placeholders = sum(str(p.get("text", "")).count(PLACEHOLDER) for m in messages
                       for p in m["content"])  # fmt: skip
    if listed and sources:
        raise UserError(f"{where}: images are given both as content parts and in 'images'; use "
                        "one form")  # fmt: skip
    if listed or placeholders:
        if placeholders != len(listed):
            raise UserError(
                f"{where}: {placeholders} {PLACEHOLDER} placeholder(s) in the messages but "
                f"{len(listed)} path(s) in 'images'; give one path per placeholder, in order"
            )
        messages = [_split_placeholders(m, number, where, allow_system_images)
                    for number, m in enumerate(messages, start=1)]  # fmt: skip
        sources = list(listed)
    if need_answer and not any(m["role"] == "assistant" for m in messages):
        raise UserError(f"{where}: the conversation has no assistant message to learn from")
    images = [_image(source, n, where, base, confine) for n, source in enumerate(sources, start=1)]
    return {"messages": messages, "images": images}


def _turn(turn: Any, number: int, where: str) -> tuple[str, list[dict[str, Any]]]:
    """A message's role and its content as parts (an image part keeps its ``source``)."""
    role, content = role_and_content(turn, number, where)
    if isinstance(content, str):
        parts = [{"type": "text", "text": content}]
    elif isinstance(content, list):
        parts = [_part(part, number, where) for part in content]
    else:
        parts = []
    texts = "".join(p.get("text", "") for p in parts)
    if not texts.strip() and not any(p["type"] == "image" for p in parts):
        raise UserError(f"{where}: message {number} ({role}) has no content")
    if role == "assistant" and not texts.strip():
        raise UserError(f"{where}: message {number} (assistant) has no text to learn")
    return str(role), parts


def _part(part: Any, number: int, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]}
    if kind == "image_url":
        url = part.get("image_url")
        url = url.get("url") if isinstance(url, dict) else url
        return {"type": "image", "source": url}
    if kind == "image":
        source = next((part[key] for key in IMAGE_PART_KEYS if part.get(key)), None)
        return {"type": "image", "source": source}
    raise UserError(
        f"{where}: message {number} has a content part {str(part)[:60]!r}; parts are "
        '{"type": "text", "text"} or {"type": "image_url", "image_url": {"url"}}'
    )


def _split_placeholders(
    message: dict[str, Any], number: int, where: str, allow_system_images: bool
) -> dict[str, Any]:
    """A message's ``<image>`` placeholders as image parts between its text parts."""
    parts: list[dict[str, Any]] = []
    for part in message["content"]:
        if part["type"] != "text" or PLACEHOLDER not in part["text"]:
            parts.append(part)
            continue
        role = message["role"]
        if role == "assistant" or (role == "system" and not allow_system_images):
            raise UserError(f"{where}: message {number} ({role}) holds an {PLACEHOLDER} "
                            "placeholder; the model reads images in user turns only, so move "
                            "it into the user message")  # fmt: skip
        pieces = part["text"].split(PLACEHOLDER)
        for i, piece in enumerate(pieces):
            if i:
                parts.append({"type": "image"})
            if piece.strip():
                parts.append({"type": "text", "text": piece.strip()})
    return {"role": message["role"], "content": parts}


def _image(source: Any, number: int, where: str, base: Path, confine: bool) -> str | bytes:
    """The image a part or ``images`` entry names: an absolute path inside ``base``, or the
    bytes of a data URI; checked to open as an image."""
    name = f"image {number}"
    if not isinstance(source, str) or not source.strip():
        raise UserError(f"{where}: {name} has no path or URL")
    source = source.strip()
    image: str | bytes
    if found := DATA_URI.fullmatch(source):
        try:
            image = base64.b64decode(found["data"], validate=True)
        except (binascii.Error, ValueError):
            raise UserError(f"{where}: {name} is a data: URI that is not valid base64") from None
        shown = f"{name} (data: URI)"
    else:
        parsed = urlparse(source)
        if parsed.scheme in ("http", "https", "ftp"):
            raise UserError(f"{where}: {name} is the remote URL {source}; tunelab reads local "
                            "files and data: URIs, so download it and give its path")  # fmt: skip
        relative = unquote(parsed.path) if parsed.scheme == "file" else source
        path = (base / relative).resolve()
        if confine and not path.is_relative_to(base.resolve()):
            raise UserError(f"{where}: {name} '{source}' leads outside the data file's folder "
                            f"{base}; keep images beside or below the data file")  # fmt: skip
        if not path.is_file():
            raise UserError(f"{where}: {name} '{source}' does not exist (looked for {path})")
        image, shown = str(path), f"{name} '{source}'"
    try:
        problem = image_problem(image)
    except ImageBombError:
        raise UserError(f"{where}: {shown} is larger than Pillow's decompression-bomb limit; "
                        "downscale it") from None  # fmt: skip
    if problem is not None:
        raise UserError(f"{where}: {shown} cannot be read as an image ({problem})")
    return image


def read_image_chats(path: Path, allow_system_images: bool = False) -> list[dict[str, Any]]:
    """Every conversation of a chat file with images: JSONL (one conversation per line) or a
    JSON list (LLaMA-Factory's ``mllm_demo.json`` layout), each as :func:`read_image_chat`
    returns it; paths are read from the file's folder.

    Raises:
        UserError: naming the file and line (or item) of the first problem, or for a file
            that is missing, empty or not JSON.
    """
    import json

    if not path.is_file():
        raise UserError(f"data file {path} does not exist; check the path")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); a "
                            "chat file is a JSON list or JSON lines") from None  # fmt: skip
        if not isinstance(rows, list):
            raise UserError(f"{path} holds a JSON {type(rows).__name__}; give a list of "
                            "conversations")  # fmt: skip
        numbered = [(f"{path} item {n}", row) for n, row in enumerate(rows, start=1)]
    else:
        numbered = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                numbered.append((f"{path} line {n}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise UserError(f"{path} line {n} is not valid JSON ({exc.msg}); each line "
                                "is one conversation") from None  # fmt: skip
    if not numbered:
        raise UserError(f"{path} holds no conversation")
    chats = []
    for where, row in numbered:
        if not isinstance(row, dict):
            raise UserError(f"{where} is not an object with 'messages'")
        chats.append(read_image_chat(row, where, path.parent, allow_system_images))
    return chats
