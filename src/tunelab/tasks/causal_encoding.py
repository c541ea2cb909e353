"""Token ids and loss masks of causal-LM training rows: the loss is on the answer only.

A chat is rendered with the tokenizer's own chat template; the characters of each
assistant turn are found by rendering the conversation up to that turn (with and without
the generation prompt), then mapped onto tokens through the fast tokenizer's offsets. This
works for any template, with or without ``{% generation %}`` markers.
"""

from __future__ import annotations

from typing import Any

from tunelab.tasks.token_windows import IGNORE


def _render(tokenizer: Any, messages: list[dict[str, str]], prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)


def chat_text_and_spans(
    tokenizer: Any, messages: list[dict[str, str]]
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns."""
    text = _render(tokenizer, messages, prompt=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(_render(tokenizer, messages[:i], prompt=True)) if i else 0
        # the turn's closing token belongs to the answer (the model must learn to stop);
        # the line break after it is the template's
        end = len(_render(tokenizer, messages[: i + 1], prompt=False).rstrip())
        spans.append((start, end))
    return text, spans


def plain_text_and_spans(tokenizer: Any, prompt: str, completion: str) -> tuple[str, list]:
    """Prompt and completion joined for a model without a chat template, ending in EOS."""
    end = tokenizer.eos_token or ""
    return prompt + completion + end, [(len(prompt), len(prompt) + len(completion) + len(end))]


def prompt_text(tokenizer: Any, context: list[dict[str, str]] | None, prompt: str) -> str:
    """What the model reads before it answers: the chat so far plus the generation prompt."""
    if tokenizer.chat_template:
        messages = context if context is not None else [{"role": "user", "content": prompt}]
        return _render(tokenizer, messages, prompt=True)
    return prompt


def needs_bos(tokenizer: Any, ids: list[int]) -> bool:
    """Whether the tokenizer defines a BOS token that ``ids`` (template output) lacks."""
    bos = tokenizer.bos_token_id
    return bos is not None and (not ids or ids[0] != bos)


def prompt_ids(tokenizer: Any, context: list[dict[str, str]] | None, prompt: str) -> list[int]:
    """Token ids of :func:`prompt_text`, with BOS where the tokenizer has one."""
    # verbose=False: a prompt over the model's limit is cut by the caller, not an error
    text = prompt_text(tokenizer, context, prompt)
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    return [tokenizer.bos_token_id, *ids] if needs_bos(tokenizer, ids) else ids


def fitted_prompt_ids(
    tokenizer: Any, context: list[dict[str, str]] | None, prefix: str, source: str, limit: int
) -> list[int]:
    """:func:`prompt_ids` of ``prefix + source`` in at most ``limit`` tokens. A plain prompt
    too long loses the end of ``source``, so the template's head (system turn), the prefix's
    instruction and the assistant header that follows all stay; a chat loses its oldest
    tokens (its last turns matter most)."""
    ids = prompt_ids(tokenizer, context, prefix + source)
    if len(ids) <= limit:
        return ids
    if context is None:
        words = tokenizer(source, add_special_tokens=False)["input_ids"]
        keep = len(words) - (len(ids) - limit)
        while keep > 0:  # a decoded cut can re-tokenize a little longer: step down
            ids = prompt_ids(tokenizer, None, prefix + tokenizer.decode(words[:keep]))
            if len(ids) <= limit:
                return ids
            keep -= max(1, len(ids) - limit)
    return ids[-limit:]


def encode_with_mask(
    tokenizer: Any, text: str, spans: list[tuple[int, int]], max_length: int
) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` (IGNORE outside ``spans``), truncated to ``max_length``.

    The text already holds the template's special tokens, so none are added here; a BOS
    token is prepended where the tokenizer defines one and the template did not write it.
    """
    encoded = tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, truncation=True,
        max_length=max_length,
    )  # fmt: skip
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    labels = [
        token if any(start <= a and b <= end and b > a for start, end in spans) else IGNORE
        for token, (a, b) in zip(ids, offsets, strict=True)
    ]
    if needs_bos(tokenizer, ids) and len(ids) < max_length:
        ids, labels = [tokenizer.bos_token_id, *ids], [IGNORE, *labels]
    return {"input_ids": ids, "labels": labels}
