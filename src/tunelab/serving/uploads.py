"""Files sent to the server for image and audio models: multipart uploads, or base64 in
JSON, each checked against the size limit and opened once before it joins a batch, so one bad
file fails its own request and never a batch shared with other requests."""

# no ``from __future__ import annotations``: kept like server.py, whose FastAPI types these share
import base64
import binascii
from collections.abc import Callable
from typing import Any

from tunelab.data.audio import inspect_audio
from tunelab.data.images import ImageBombError, image_problem
from tunelab.data.media import UnreadableFile

Upload = tuple[str, bytes]  # the file's name (or its place in the request) and its bytes


def _image_check(data: bytes) -> tuple[int, str] | None:
    """(status, why) when the bytes are no usable image; 413 above the pixel limit."""
    try:
        problem = image_problem(data)
    except ImageBombError as error:
        return 413, f"has {error} pixels, above the server's decompression-bomb limit"
    return (422, f"cannot be read as an image ({problem})") if problem else None


def _audio_check(data: bytes) -> tuple[int, str] | None:
    """(422, why) when the bytes are no clip soundfile decodes in full."""
    try:
        inspect_audio(data)
    except UnreadableFile as error:
        return 422, f"cannot be read as audio ({error})"
    return None


# by the task's input_kind: what each file must pass before it reaches the model
CHECKS: dict[str, Callable[[bytes], tuple[int, str] | None]] = {
    "image": _image_check,
    "audio": _audio_check,
}


async def read_uploads(request: Any, max_files: int, max_file_bytes: int) -> list[Upload]:
    """The files of a ``multipart/form-data`` request (any file field), or of a JSON body
    ``{"file": "<base64>"}`` / ``{"files": ["<base64>", ...]}`` (optional ``"names"``).

    Raises:
        HTTPException: 413 for too many or too large files, 422 for a malformed body.
    """
    from fastapi import HTTPException

    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=max_files + 1)
        files = [
            (item.filename or f"file {i}", await item.read(max_file_bytes + 1))
            for i, (_, item) in enumerate(form.multi_items())
            if hasattr(item, "filename")
        ]
    elif content_type.startswith("application/json"):
        files = _json_files(await _json(request))
    else:
        raise HTTPException(
            415,
            "send the files as multipart/form-data, or JSON with file (base64) or files "
            "(a list of base64 strings)",
        )
    if not files:
        raise HTTPException(422, "the request holds no file; send at least one")
    if len(files) > max_files:
        raise HTTPException(
            413, f"{len(files)} files in one request; the server takes at most {max_files}"
        )
    for name, data in files:
        if len(data) > max_file_bytes:
            raise HTTPException(
                413, f"file {name} is over the server's limit of {max_file_bytes:,} bytes"
            )
        if not data:
            raise HTTPException(422, f"file {name} is empty")
    return files


async def read_prompt(request: Any, max_chars: int = 4000) -> str:
    """The ``prompt`` of a request :func:`read_uploads` has read: a form field, or a JSON key
    (Starlette keeps the parsed body, so nothing is read twice).

    Raises:
        HTTPException: 422 without a prompt or with a longer one than ``max_chars``.
    """
    from fastapi import HTTPException

    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        prompt = (await request.form()).get("prompt")
    else:
        body = await _json(request)
        prompt = body.get("prompt") if isinstance(body, dict) else None
    if not isinstance(prompt, str) or not prompt.strip():
        raise HTTPException(422, "give the question about the image(s) in the prompt field")
    if len(prompt) > max_chars:
        raise HTTPException(
            413, f"the prompt has {len(prompt):,} characters; the server takes {max_chars:,}"
        )
    return prompt


async def _json(request: Any) -> Any:
    from fastapi import HTTPException

    try:
        return await request.json()
    except ValueError:
        raise HTTPException(422, "the request body is not valid JSON") from None


def _json_files(body: Any) -> list[Upload]:
    from fastapi import HTTPException

    if not isinstance(body, dict) or ("file" in body) == ("files" in body):
        raise HTTPException(422, "give either file (one base64 string) or files (a list)")
    encoded = [body["file"]] if "file" in body else body["files"]
    names = body.get("names") or [f"file {i}" for i in range(len(encoded or []))]
    if not isinstance(encoded, list) or not isinstance(names, list):
        raise HTTPException(422, "files and names must be lists")
    if len(names) != len(encoded):
        raise HTTPException(422, f"{len(names)} names for {len(encoded)} files; give one each")
    files = []
    for i, (name, text) in enumerate(zip(names, encoded, strict=True)):
        try:
            files.append((str(name), base64.b64decode(str(text), validate=True)))
        except (binascii.Error, ValueError):
            raise HTTPException(422, f"files[{i}] is not base64; encode each file") from None
    return files
