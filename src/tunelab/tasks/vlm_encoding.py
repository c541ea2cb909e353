"""Token ids and loss masks of chats with images: the loss is on the assistant's words only.

The conversation is rendered with the processor's own chat template, and the characters of
each assistant turn are found as for text chat (:func:`~tunelab.tasks.causal_encoding.
chat_text_and_spans`). The processor then replaces each image placeholder with the image's
tokens, which shifts every character after it; it reports the replacements
(``return_text_replacement_offsets``), so the assistant spans are moved by the same amounts
and mapped onto tokens through the fast tokenizer's offsets. Image tokens, prompts and the
template's markup get ``-100``. This works for any processor that reports its replacements
(Idefics3/SmolVLM, Qwen2-VL, LLaVA, ... in transformers 5).

A conversation longer than the run's ``max_length`` loses its last tokens, but never part of
an image: the model needs every token of an image to match its features, so a conversation
whose images reach past the limit keeps everything up to its last image's end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tunelab.data.images import open_rgb
from tunelab.errors import UserError
from tunelab.tasks.causal_encoding import chat_text_and_spans
from tunelab.tasks.token_windows import IGNORE

# the processor's outputs with a value per token (the rest describe the images)
TOKEN_KEYS = frozenset(
    {"input_ids", "attention_mask", "labels", "token_type_ids", "mm_token_type_ids"}
)
# outputs that hold the patch rows of every image of the call in one array, with each
# image's (frames, height, width) in patches beside them (Qwen2-VL), not one entry a sample
PATCH_KEYS = frozenset({"pixel_values", "image_grid_thw"})


def _shifted(position: int, replacements: list[dict[str, Any]]) -> int:
    """Where a character of the rendered text lands once the images' tokens are in."""
    shift = 0
    for replacement in replacements:
        (start, end), (new_start, new_end) = replacement["span"], replacement["new_span"]
        if end <= position:
            shift += (new_end - new_start) - (end - start)
    return position + shift


@contextmanager
def template_refusal_named(where: str) -> Iterator[None]:
    """Turns the chat template's refusal of a conversation (an image in a turn where the
    template allows none, roles out of order) into one line naming ``where``."""
    from jinja2 import TemplateError

    try:
        yield
    except TemplateError as exc:
        raise UserError(f"{where}: the model's chat template refuses this conversation "
                        f"({exc})") from None  # fmt: skip


def rendered_chat(processor: Any, messages: list[dict[str, Any]], where: str) -> tuple[str, list]:
    """The conversation rendered by the chat template, and its assistant spans.

    Raises:
        UserError: naming ``where``, when the template refuses the conversation.
    """
    with template_refusal_named(where):
        return chat_text_and_spans(processor, messages)


def _labelled(
    row: dict[str, Any], spans: list[tuple[int, int]], max_length: int | None = None
) -> dict[str, Any]:
    """One conversation's processor output with ``labels``: tokens inside an assistant span
    (moved past the images' tokens) keep their id, the rest get ``-100``; cut to
    ``max_length`` tokens, or to the end of its last image where that is later."""
    replacements = row.pop("text_replacement_offsets", None) or []  # none without images
    moved = [(_shifted(s, replacements), _shifted(e, replacements)) for s, e in spans]
    offsets = row.pop("offset_mapping")
    row["input_ids"] = list(row["input_ids"])
    row["labels"] = [
        token if end > start and any(s <= start and end <= e for s, e in moved) else IGNORE
        for token, (start, end) in zip(row["input_ids"], offsets, strict=True)
    ]
    if max_length is not None and len(row["input_ids"]) > max_length:
        images_end = max((r["new_span"][1] for r in replacements), default=0)
        through_images = sum(1 for start, _ in offsets if start < images_end)
        keep = max(max_length, through_images)
        for key in TOKEN_KEYS & row.keys():
            row[key] = list(row[key])[:keep]
    return row


def encode_image_chat(
    processor: Any,
    messages: list[dict[str, Any]],
    images: list[Any],
    where: str,
    max_length: int | None = None,
) -> dict[str, Any]:
    """One conversation as the model's inputs with ``labels`` on the assistant turns only.

    Args:
        processor: the model's processor (chat template, image processor, fast tokenizer).
        messages: content-part messages, as :func:`tunelab.data.image_chats.read_image_chat`
            gives them.
        images: the conversation's images (paths or bytes) in the order of their parts.
        where: how errors name the conversation (``"chats.jsonl line 4"``).
        max_length: cut longer conversations to this many tokens, but never inside an image.

    Raises:
        UserError: when the chat template refuses the conversation (an image where the
            template allows none) or the processor cannot place the images.
    """
    text, spans = rendered_chat(processor, messages, where)
    opened = [open_rgb(image) for image in images]
    try:
        encoded = processor(text=[text], images=[opened] if opened else None,
                            return_text_replacement_offsets=True,
                            return_offsets_mapping=True)  # fmt: skip
    except ValueError as exc:  # e.g. placeholders that do not match the images
        raise UserError(f"{where}: the processor cannot place the images ({exc})") from None
    patches = "image_grid_thw" in encoded  # this one conversation's images, all of them
    sample = {key: value if patches and key in PATCH_KEYS else value[0]
              for key, value in encoded.items()}  # fmt: skip
    return _labelled(sample, spans, max_length)


def encode_image_chats(
    processor: Any,
    chats: list[tuple[list[dict[str, Any]], list[Any], str]],
    max_length: int | None = None,
) -> list[dict[str, Any]]:
    """Several conversations (messages, images, where) as :func:`encode_image_chat` encodes
    each, in one processor call: answered sample by sample (Idefics3, LLaVA), or with the
    patch rows of all images in one array (Qwen2-VL), which is cut back into conversations by
    their image counts and grids. One at a time where the call fails, to name the
    conversation a processor error is about."""
    rendered = [rendered_chat(processor, messages, where) for messages, _, where in chats]
    opened = [[open_rgb(image) for image in images] for _, images, _ in chats]
    if chats and all(opened):
        try:
            encoded = processor(text=[text for text, _ in rendered], images=opened,
                                return_text_replacement_offsets=True,
                                return_offsets_mapping=True)  # fmt: skip
        except ValueError:
            encoded = None  # encoded one at a time below, so the error names its row
        samples = _samples(encoded, [len(images) for images in opened]) if encoded else None
        if samples is not None:
            return [_labelled(sample, spans, max_length)
                    for sample, (_, spans) in zip(samples, rendered, strict=True)]  # fmt: skip
    return [encode_image_chat(processor, messages, images, where, max_length)
            for messages, images, where in chats]  # fmt: skip


def _samples(encoded: Any, image_counts: list[int]) -> list[dict[str, Any]] | None:
    """One processor call's output as one dict a conversation; None where it does not split
    so (then each conversation is encoded alone)."""
    chats = len(image_counts)
    patches = "image_grid_thw" in encoded
    per_sample = {key: value for key, value in encoded.items()
                  if not (patches and key in PATCH_KEYS)}  # fmt: skip
    if any(len(value) != chats for value in per_sample.values()):
        return None
    samples = [{key: value[i] for key, value in per_sample.items()} for i in range(chats)]
    if not patches:
        return samples
    import numpy as np

    grids = np.asarray(encoded["image_grid_thw"])
    rows = grids.prod(axis=1)  # each image's patch rows
    if len(grids) != sum(image_counts) or len(encoded["pixel_values"]) != int(rows.sum()):
        return None
    image_ends = np.cumsum(image_counts)
    row_ends = np.concatenate([[0], np.cumsum(rows)])
    for sample, last, count in zip(samples, image_ends, image_counts, strict=True):
        first = last - count
        sample["image_grid_thw"] = encoded["image_grid_thw"][first:last]
        sample["pixel_values"] = encoded["pixel_values"][row_ends[first] : row_ends[last]]
    return samples
