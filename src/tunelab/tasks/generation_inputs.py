"""Text-to-text rows in every input shape: source/target (or prompt/completion) columns, chat
``messages`` in the OpenAI fine-tuning format, or the Alpaca and ShareGPT files of
LLaMA-Factory and Axolotl, checked with errors that name the line.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data.chat_formats import (
    ALPACA_COLUMNS,
    CONVERSATIONS,
    HISTORY,
    INPUT,
    INSTRUCTION,
    OUTPUT,
    SYSTEM,
    alpaca_messages,
    alpaca_prompt,
    chat_turn,
    joined_tool_turns,
    present,
)  # fmt: skip
from tunelab.data.tool_calls import CALL_OPEN, TOOLS, read_tools, with_tools
from tunelab.errors import UserError

SOURCE, TARGET, MESSAGES = "source", "target", "messages"


def check_messages(value: Any, where: str, need_answer: bool = True) -> list[dict[str, str]]:
    """One row's ``messages`` as a list of ``{"role", "content"}``, or a clear error; ShareGPT's
    ``{"from", "value"}`` turns and lists of text parts are read as the same
    (:func:`tunelab.data.chat_formats.chat_turn`).

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
        messages.append(chat_turn(message, number, where))
    messages = joined_tool_turns(messages)
    if need_answer and not any(m["role"] == "assistant" for m in messages):
        raise UserError(f"{where}: the conversation has no assistant message to learn from")
    return messages


def split_conversation(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], str]:
    """The turns before the last assistant message, and that message (the reference). In a
    chat that calls tools the last call is the reference instead: whether the model calls the
    right function with the right arguments is what tool data teaches, and the words after
    the result mostly repeat it."""
    answers = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    calls = [i for i in answers if CALL_OPEN in messages[i]["content"]]
    last = (calls or answers)[-1]
    return messages[:last], messages[last]["content"]


def chat_column(frame: pd.DataFrame, messages_column: str) -> str | None:
    """The column of chats: ``messages_column``, else ShareGPT's ``conversations``."""
    return next((c for c in (messages_column, CONVERSATIONS) if c in frame.columns), None)


def standardize_pairs(
    frame: pd.DataFrame,
    source_column: str,
    target_column: str,
    messages_column: str,
    with_labels: bool,
    allow_messages: bool,
) -> pd.DataFrame:
    """Rows with ``source`` and (labelled) ``target`` strings, and ``messages`` for chats.

    ``prompt``/``completion`` columns stand in for source/target when those are absent, and
    so do Alpaca's ``instruction``/``input``/``output``; ShareGPT's ``conversations`` stands
    in for ``messages`` (:mod:`tunelab.data.chat_formats`). For a chat, ``source`` is the
    conversation before the last assistant turn (as JSON text, for display) and ``target``
    that turn. Unlabelled (for prediction), a chat that ends with the user's turn is asked as
    it is, with no ``target``.

    Raises:
        UserError: naming the file and line, for missing columns or malformed messages.
    """
    where = frame.attrs.get("source", "data")
    columns = ", ".join(map(str, frame.columns))
    if source_column not in frame.columns and {"prompt", "completion"} & set(frame.columns):
        source_column, target_column = "prompt", "completion"
    chats = chat_column(frame, messages_column) if allow_messages else None
    if chats is not None:
        systems = frame[SYSTEM] if SYSTEM in frame.columns else None
        tools = frame[TOOLS] if TOOLS in frame.columns else None
        conversations = []
        for row, value in frame[chats].items():
            messages = check_messages(value, f"{where} line {row}", need_answer=with_labels)
            if systems is not None and present(systems[row]) and messages[0]["role"] != "system":
                messages.insert(0, {"role": "system", "content": str(systems[row])})
            if tools is not None and present(tools[row]):
                messages = with_tools(messages, read_tools(tools[row], f"{where} line {row}"))
            conversations.append(messages)
        result = _chat_rows(conversations, frame.index, with_labels)
        read_from = {MESSAGES: chats}
    elif source_column in frame.columns:
        if with_labels and target_column not in frame.columns:
            raise UserError(
                f"{where} has no column '{target_column}' (set by generation.target_column); "
                f"its columns are: {columns}"
            )
        result = pd.DataFrame({SOURCE: frame[source_column].fillna("").astype(str)})
        if target_column in frame.columns:
            result[TARGET] = frame[target_column].fillna("").astype(str)
        read_from = {SOURCE: source_column, TARGET: target_column}
    elif INSTRUCTION in frame.columns:
        if with_labels and OUTPUT not in frame.columns:
            raise UserError(
                f"{where} has Alpaca's '{INSTRUCTION}' column but no '{OUTPUT}' column with the "
                f"answers to learn; its columns are: {columns}"
            )
        result = _alpaca_rows(frame, where, with_labels, allow_messages)
        read_from = {SOURCE: INSTRUCTION, TARGET: OUTPUT,
                     **{c: c for c in ALPACA_COLUMNS if c in frame.columns}}  # fmt: skip
    else:
        shapes = f"'{source_column}'/'{target_column}', 'prompt'/'completion'"
        if allow_messages:
            shapes += f", '{messages_column}' (chat), '{CONVERSATIONS}' (ShareGPT chat)"
        raise UserError(
            f"{where} needs columns {shapes} or '{INSTRUCTION}'/'{OUTPUT}' (Alpaca) (set by "
            "generation.source_column, generation.target_column, generation.messages_column); "
            f"its columns are: {columns}"
        )
    result.attrs = {**frame.attrs, "columns": read_from}  # the file's names, for messages
    return result


def _chat_rows(
    conversations: list[list[dict[str, str]]], index: pd.Index, with_labels: bool
) -> pd.DataFrame:
    """Checked conversations as ``source`` (the turns before the answer, as JSON text),
    ``target`` (the last assistant turn) and ``messages`` (all turns; for prediction, the
    turns the model reads)."""
    rows = []
    for messages in conversations:
        answered = messages[-1]["role"] == "assistant" or with_labels
        context, reference = split_conversation(messages) if answered else (messages, None)
        rows.append(
            {
                SOURCE: json.dumps(context, ensure_ascii=False),
                TARGET: reference,
                MESSAGES: messages if with_labels else context,
            }
        )
    result = pd.DataFrame(rows, index=index)
    if result[TARGET].isna().all():  # questions only: nothing to compare answers with
        result = result.drop(columns=TARGET)
    return result


def _alpaca_rows(
    frame: pd.DataFrame, where: str, with_labels: bool, allow_messages: bool
) -> pd.DataFrame:
    """Alpaca rows as source/target pairs, or as chats where a row has a system prompt or
    earlier turns and the task reads chats; a seq2seq model reads the system prompt as the
    first line of its input and cannot read earlier turns."""
    records = dict(zip(frame.index, frame.to_dict("records"), strict=True))
    if allow_messages and any(present(r.get(SYSTEM)) or present(r.get(HISTORY))
                              for r in records.values()):  # fmt: skip
        conversations = []
        for row, record in records.items():
            if with_labels and not present(record.get(OUTPUT)):
                raise UserError(f"{where} line {row}: the row has no '{OUTPUT}' to learn")
            conversations.append(alpaca_messages(record, f"{where} line {row}"))
        return _chat_rows(conversations, frame.index, with_labels)
    sources = []
    for row, record in records.items():
        if present(record.get(HISTORY)):
            raise UserError(
                f"{where} line {row}: '{HISTORY}' holds earlier turns, which a seq2seq model "
                "cannot read; train a chat model (--task causal-lm) or drop the column"
            )
        prompt = alpaca_prompt(record.get(INSTRUCTION), record.get(INPUT))
        if not prompt:
            raise UserError(f"{where} line {row}: the row has no instruction or input to answer")
        system = record.get(SYSTEM)
        sources.append(f"{system}\n{prompt}" if present(system) else prompt)
    result = pd.DataFrame({SOURCE: sources}, index=frame.index)
    if OUTPUT in frame.columns:
        result[TARGET] = [str(r[OUTPUT]) if present(r[OUTPUT]) else "" for r in records.values()]
    return result
