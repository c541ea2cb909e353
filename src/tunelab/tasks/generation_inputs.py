"""Text-to-text rows in every input shape: source/target (or prompt/completion) columns, or
chat ``messages`` in the OpenAI fine-tuning format, checked with errors that name the line.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tunelab.errors import UserError

SOURCE, TARGET, MESSAGES = "source", "target", "messages"
ROLES = ("system", "user", "assistant")


def check_messages(value: Any, where: str, need_answer: bool = True) -> list[dict[str, str]]:
    """One row's ``messages`` as a list of ``{"role", "content"}``, or a clear error.

    Raises:
        UserError: for a non-list, an unknown role, a missing or empty content, or (with
            ``need_answer``, as in training) a conversation without an assistant turn.
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list) or not value:
        raise UserError(f"{where}: 'messages' must be a non-empty list of {{role, content}}")
    messages = []
    for number, message in enumerate(value, start=1):
        if not isinstance(message, dict):
            raise UserError(f"{where}: message {number} is not an object with role and content")
        role = message.get("role")
        if role not in ROLES:
            raise UserError(
                f"{where}: message {number} has role {role!r}; use one of {', '.join(ROLES)}"
            )
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            raise UserError(f"{where}: message {number} ({role}) has no content")
        messages.append({"role": role, "content": content})
    if need_answer and not any(m["role"] == "assistant" for m in messages):
        raise UserError(f"{where}: the conversation has no assistant message to learn from")
    return messages


def split_conversation(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], str]:
    """The turns before the last assistant message, and that message (the reference)."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return messages[:last], messages[last]["content"]


def standardize_pairs(
    frame: pd.DataFrame,
    source_column: str,
    target_column: str,
    messages_column: str,
    with_labels: bool,
    allow_messages: bool,
) -> pd.DataFrame:
    """Rows with ``source`` and (labelled) ``target`` strings, and ``messages`` for chats.

    ``prompt``/``completion`` columns stand in for source/target when those are absent.
    For a chat, ``source`` is the conversation before the last assistant turn (as JSON
    text, for display) and ``target`` that turn. Unlabelled (for prediction), a chat that
    ends with the user's turn is asked as it is, with no ``target``.

    Raises:
        UserError: naming the file and line, for missing columns or malformed messages.
    """
    where = frame.attrs.get("source", "data")
    columns = ", ".join(map(str, frame.columns))
    if source_column not in frame.columns and {"prompt", "completion"} & set(frame.columns):
        source_column, target_column = "prompt", "completion"
    if allow_messages and messages_column in frame.columns:
        import json

        rows = []
        for row, value in frame[messages_column].items():
            messages = check_messages(value, f"{where} line {row}", need_answer=with_labels)
            answered = messages[-1]["role"] == "assistant" or with_labels
            context, reference = split_conversation(messages) if answered else (messages, None)
            rows.append(
                {
                    SOURCE: json.dumps(context, ensure_ascii=False),
                    TARGET: reference,
                    MESSAGES: messages if with_labels else context,
                }
            )
        result = pd.DataFrame(rows, index=frame.index)
        if result[TARGET].isna().all():  # questions only: nothing to compare answers with
            result = result.drop(columns=TARGET)
    elif source_column in frame.columns:
        if with_labels and target_column not in frame.columns:
            raise UserError(
                f"{where} has no column '{target_column}' (set by generation.target_column); "
                f"its columns are: {columns}"
            )
        result = pd.DataFrame({SOURCE: frame[source_column].fillna("").astype(str)})
        if target_column in frame.columns:
            result[TARGET] = frame[target_column].fillna("").astype(str)
    else:
        shapes = f"'{source_column}'/'{target_column}' or 'prompt'/'completion'"
        if allow_messages:
            shapes += f", or '{messages_column}' (chat)"
        raise UserError(
            f"{where} needs columns {shapes} (set by generation.source_column, "
            f"generation.target_column, generation.messages_column); its columns are: {columns}"
        )
    read_from = ({MESSAGES: messages_column} if MESSAGES in result.columns
                 else {SOURCE: source_column, TARGET: target_column})  # fmt: skip
    result.attrs = {**frame.attrs, "columns": read_from}  # the file's names, for messages
    return result
