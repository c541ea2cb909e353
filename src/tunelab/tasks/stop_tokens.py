"""Will the tuned model stop? Checks before a causal model trains, so that it learns to end its
answers and generation ends where it learned to.

Three ways this goes wrong in practice (LLaMA-Factory #2884 #7454, TRL #2059, Unsloth #419
#1008 #1135): the chat template closes an assistant turn with a token that generation does
not treat as the end (the model writes ``<|im_end|>`` and talks on); the pad token is the EOS
token and a collator masks every pad position out of the loss, EOS with it (the model never
sees an answer end); or truncation or a template without a closing token leaves the labels
without any end at all. Each check names the token it found.
"""

from __future__ import annotations

import logging
from typing import Any

from tunelab.errors import UserError
from tunelab.tasks.causal_encoding import chat_text_and_spans
from tunelab.tasks.token_windows import IGNORE

log = logging.getLogger("tunelab")

ROWS_CHECKED = 64  # training rows batched to see what the loss sees


def closing_token(tokenizer: Any) -> tuple[str, int | None]:
    """The text a chat template writes right after an assistant answer, and its first token
    if that token is a special (added) token; ``("", None)`` when it writes nothing."""
    chat = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    text, [(start, end)] = chat_text_and_spans(tokenizer, chat)
    answer = text[start:end]
    closing = answer[answer.index("a") + 1 :]  # the span starts where the answer does
    first = tokenizer(closing, add_special_tokens=False)["input_ids"][:1] if closing else []
    added = set(getattr(tokenizer, "added_tokens_decoder", {}))
    return closing, first[0] if first and first[0] in added else None


def _named(tokenizer: Any, token_id: int | None) -> str:
    return f"{tokenizer.convert_ids_to_tokens(token_id)!r} (id {token_id})"


def _generation_eos(model: Any) -> list[int]:
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    return list(eos) if isinstance(eos, (list, tuple)) else [] if eos is None else [eos]


def check_stop_tokens(
    model: Any,
    tokenizer: Any,
    stop_ids: list[int],
    features: Any,
    collator: Any,
    strict: bool = True,
) -> list[str]:
    """Check the template's closing token, the pad token and the labels of batched training
    rows; return what was found, in sentences (also logged as warnings).

    Args:
        stop_ids: the tokens the trained model will stop at (its saved generation_config).
        features: the encoded training rows (``input_ids``, ``labels``).
        collator: what batches them for the Trainer.
        strict: raise on a problem that keeps the model from learning to stop; else warn.

    Raises:
        UserError: (strict) naming the token, when no batched training label holds a stop
            token, or when the template closes answers with no token at all or with one that
            generation never stops at.
    """
    findings: list[str] = []
    problems: list[str] = []
    if tokenizer.chat_template:
        closing, token = closing_token(tokenizer)
        if not closing.strip():
            problems.append(
                "the chat template writes nothing after an assistant answer, so the model cannot "
                "learn where an answer ends; close assistant turns in the template with the EOS "
                f"token {tokenizer.eos_token!r} or an end-of-turn token such as '<|im_end|>'"
            )
        elif token is None:
            problems.append(
                f"the chat template closes assistant answers with {closing.strip()!r}, which is "
                "not one special token, so generation cannot stop at it; close assistant turns "
                f"with the EOS token {tokenizer.eos_token!r} or an added end-of-turn token"
            )
        elif token not in stop_ids:
            problems.append(
                f"the chat template closes assistant answers with {_named(tokenizer, token)}, "
                "which generation does not stop at; add it to the tokenizer as a special token"
            )
        elif token not in _generation_eos(model):
            findings.append(
                f"the chat template closes assistant answers with {_named(tokenizer, token)}, "
                "which the base model's generation_config does not treat as end of sequence "
                f"(it has {_generation_eos(model)}); the trained model's generation_config "
                "will stop at it"
            )
    problems += _label_problems(tokenizer, stop_ids, features, collator, findings)
    for sentence in findings:
        log.warning("%s", sentence)
    if problems and strict:
        raise UserError(problems[0] + "; or set generation.check_stop_tokens=false to train anyway")
    for sentence in problems:
        log.warning("%s", sentence)
    return findings + problems


def _label_problems(
    tokenizer: Any, stop_ids: list[int], features: Any, collator: Any, findings: list[str]
) -> list[str]:
    """Batch the first training rows one by one with the Trainer's collator and count those
    whose loss covers a stop token."""
    rows = min(len(features), ROWS_CHECKED)
    if not rows or not stop_ids:
        return []
    with_stop = dropped = 0
    for i in range(rows):
        row = features[i]
        batch = collator([{"input_ids": row["input_ids"], "labels": row["labels"]}])
        labels = [int(t) for t in batch["labels"].reshape(-1).tolist() if int(t) != IGNORE]
        if set(labels) & set(stop_ids):
            with_stop += 1
        elif set(row["labels"]) & set(stop_ids):
            dropped += 1  # encoded with its end, and the batching masked it
    names = " or ".join(_named(tokenizer, t) for t in stop_ids)
    if with_stop == 0:
        pad = tokenizer.pad_token_id
        why = (
            f"; the pad token {_named(tokenizer, pad)} is a stop token and the batches mask it "
            "out of the loss: give the tokenizer its own pad token"
            if pad in stop_ids and dropped
            else "; the batches mask it out of the loss"
            if dropped
            else ": check that the chat template (or, without one, the EOS token) ends each "
            "answer, and that generation.max_target_length / training.max_length keep the end"
        )
        return [f"none of the first {rows} training rows has {names} in its labels{why}"]
    if with_stop < rows:
        findings.append(
            f"{rows - with_stop} of the first {rows} training rows have no {names} in their "
            "labels (cut off at the token limit?): the model sees fewer answers end"
        )
    return []
