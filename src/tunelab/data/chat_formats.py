"""Instruction-tuning files as other tools write them, read as chats.

LLaMA-Factory's two data formats, which Axolotl, FastChat and most published instruction sets
(Alpaca, BELLE, ShareGPT exports) use too:

- **Alpaca**: ``instruction``, ``input`` (optional, joined to the instruction by a line break),
  ``output`` (the answer), and optionally ``system`` and ``history`` (earlier turns as
  ``[question, answer]`` pairs).
- **ShareGPT**: ``conversations`` of ``{"from": human|gpt|system, "value": ...}``, with an
  optional ``system`` column.

Both become OpenAI-style ``messages`` of ``{"role", "content"}``, the form tunelab trains on.
Tool turns (ShareGPT's ``function_call`` and ``observation``, OpenAI's ``tool_calls`` and
``tool`` messages) become text in the Hermes format (:mod:`tunelab.data.tool_calls`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tunelab.data.tool_calls import CALL_OPEN, RESULT_OPEN, call_text, result_text
from tunelab.errors import UserError

ROLES = ("system", "user", "assistant")
CONVERSATIONS = "conversations"
INSTRUCTION, INPUT, OUTPUT, SYSTEM, HISTORY = "instruction", "input", "output", "system", "history"
ALPACA_COLUMNS = (INSTRUCTION, INPUT, OUTPUT, SYSTEM, HISTORY)
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "system": "system"}  # fmt: skip
# LLaMA-Factory's tool turns: a call (the assistant's) and its result (handed back to it)
CALL_TURNS, RESULT_TURNS = ("function_call", "function"), ("observation", "tool")
TOOL_TURNS = CALL_TURNS + RESULT_TURNS


def sharegpt_role(sender: Any, number: int, where: str) -> str:
    """The OpenAI role of a ShareGPT turn's ``from``, or a clear error naming the message."""
    role = SHAREGPT_ROLES.get(str(sender))
    if role is not None:
        return role
    if sender in TOOL_TURNS:
        raise UserError(
            f"{where}: message {number} is a tool turn ({sender!r}), which a chat with images "
            "cannot hold; train tool calls as text chats (--task causal-lm) or drop the turn"
        )
    raise UserError(
        f"{where}: message {number} is from {sender!r}; use one of {', '.join(SHAREGPT_ROLES)}"
    )


def role_and_content(message: Any, number: int, where: str) -> tuple[str, Any]:
    """A message's OpenAI role and its content as written: ``{role, content}`` or ShareGPT's
    ``{from, value}``.

    Raises:
        UserError: naming the message, for a message that is no object or an unknown role or
            sender.
    """
    if not isinstance(message, dict):
        raise UserError(f"{where}: message {number} is not an object with role and content")
    if "from" in message and "role" not in message:  # ShareGPT
        return sharegpt_role(message["from"], number, where), message.get("value")
    role = message.get("role")
    if role not in ROLES:
        raise UserError(
            f"{where}: message {number} has role {role!r}; use one of {', '.join(ROLES)}"
        )
    return role, message.get("content")


def chat_turn(message: Any, number: int, where: str) -> dict[str, str]:
    """One message as ``{"role", "content"}``: OpenAI's ``{role, content}``, its content text
    or a list of text parts (``{"type": "text", "text"|"value": ...}``), or ShareGPT's
    ``{from, value}``.

    A tool turn is text too: a call (ShareGPT's ``function_call``, or an assistant message's
    ``tool_calls``) is the assistant's ``<tool_call>`` text, a result (``observation``, or a
    ``tool`` message) a user turn in ``<tool_response>`` tags.

    Raises:
        UserError: naming the message, for an unknown role or sender, an image part (a chat
            with images is another task), a call that is not JSON, or no text.
    """
    made = tool_turn(message, number, where)
    if made is not None:
        return made
    role, content = role_and_content(message, number, where)
    if isinstance(content, (list, np.ndarray)):
        content = "".join(_part_text(part, number, where) for part in content)
    if not isinstance(content, str) or not content.strip():
        raise UserError(f"{where}: message {number} ({role}) has no content")
    return {"role": role, "content": content}


def tool_turn(message: Any, number: int, where: str) -> dict[str, str] | None:
    """A call (ShareGPT's ``function_call``, an assistant message with ``tool_calls``) or a
    tool's result (``observation``, a ``tool`` message) as text, or None for any other
    message.

    Raises:
        UserError: naming the message, for a call that is not JSON or has no name.
    """
    if not isinstance(message, dict):
        return None
    sender = message.get("from") if "role" not in message else None
    if sender in CALL_TURNS:
        return {"role": "assistant", "content": call_text(message.get("value"), number, where)}
    if sender in RESULT_TURNS or message.get("role") == "tool":
        content = message.get("value") if sender else message.get("content")
        if isinstance(content, (list, np.ndarray)):
            content = "".join(_part_text(part, number, where) for part in content)
        return {"role": "user", "content": result_text(content)}
    calls = message.get("tool_calls")
    if message.get("role") == "assistant" and isinstance(calls, (list, np.ndarray)) and len(calls):
        said = [str(message["content"])] if present(message.get("content")) else []
        written = [call_text(call, number, where) for call in calls]
        return {"role": "assistant", "content": "\n".join(said + written)}
    return None


def joined_tool_turns(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """``messages`` with calls made one after another (parallel calls) in one assistant turn,
    and results that follow each other in one user turn, as a model is shown them."""
    joined: list[dict[str, str]] = []
    for message in messages:
        before = joined[-1] if joined else None
        mark = CALL_OPEN if message["role"] == "assistant" else RESULT_OPEN
        if (before is not None and before["role"] == message["role"]
                and message["content"].startswith(mark) and mark in before["content"]):  # fmt: skip
            joined[-1] = {**before, "content": f"{before['content']}\n{message['content']}"}
        else:
            joined.append(message)
    return joined


def _part_text(part: Any, number: int, where: str) -> str:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return str(part.get("text", part.get("value", "")))
    if kind in ("image", "image_url"):
        raise UserError(
            f"{where}: message {number} holds an image; chats with images train with --task "
            "image-text-to-text"
        )
    if kind in ("video", "audio"):
        raise UserError(
            f"{where}: message {number} holds {kind}, and tunelab trains chats of text and "
            "images only; drop those parts or rows"
        )
    raise UserError(f"{where}: message {number} has a content part that is not text")


def present(value: Any) -> bool:
    """Whether a cell holds something (not None, NaN, blank text or an empty list)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return len(value) > 0
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return False
    return not (isinstance(value, str) and not value.strip())


def alpaca_prompt(instruction: Any, extra: Any) -> str:
    """The user's turn of an Alpaca row: the instruction, then its input on the next line."""
    prompt = str(instruction) if present(instruction) else ""
    if present(extra):
        prompt = f"{prompt}\n{extra}" if prompt else str(extra)
    return prompt


def alpaca_messages(row: Mapping[str, Any], where: str) -> list[dict[str, str]]:
    """One Alpaca row as messages: system, the ``history`` turns, the prompt and the answer.

    Raises:
        UserError: naming the row, for a ``history`` that is not a list of
            ``[question, answer]`` pairs or a row with no instruction or input.
    """
    messages = []
    if present(row.get(SYSTEM)):
        messages.append({"role": "system", "content": str(row[SYSTEM])})
    history = row.get(HISTORY)
    if isinstance(history, np.ndarray):
        history = history.tolist()
    if present(history):
        if not isinstance(history, list):
            raise UserError(f"{where}: 'history' must be a list of [question, answer] pairs")
        for number, turn in enumerate(history, start=1):
            if isinstance(turn, np.ndarray):
                turn = turn.tolist()
            if not (isinstance(turn, (list, tuple)) and len(turn) == 2
                    and all(isinstance(t, str) and t.strip() for t in turn)):  # fmt: skip
                raise UserError(
                    f"{where}: 'history' item {number} is not a [question, answer] pair of texts"
                )
            messages += [{"role": "user", "content": turn[0]},
                         {"role": "assistant", "content": turn[1]}]  # fmt: skip
    prompt = alpaca_prompt(row.get(INSTRUCTION), row.get(INPUT))
    if not prompt:
        raise UserError(f"{where}: the row has no instruction or input to answer")
    messages.append({"role": "user", "content": prompt})
    if present(row.get(OUTPUT)):
        messages.append({"role": "assistant", "content": str(row[OUTPUT])})
    return messages
