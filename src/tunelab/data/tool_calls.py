"""Function-calling chats written as text every chat template can render.

Tool data comes as LLaMA-Factory's ShareGPT turns (``function_call`` with a JSON call,
``observation`` with its result, and a ``tools`` column) or OpenAI's fine-tuning format
(an assistant message with ``tool_calls``, ``tool`` messages, and ``tools``). Templates
differ in whether and how they render tools, so tunelab writes them in the Hermes format that
Qwen2.5, Hermes and SmolLM3 were trained on, inside ordinary ``{role, content}`` messages:

- the tools are listed in the system turn, one JSON signature per line in ``<tools>`` tags;
- a call is the assistant's ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``;
- a result is a user turn in ``<tool_response>`` tags.

So a model learns one format whatever its template, and the server parses the calls back
(:func:`parse_calls`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from tunelab.errors import UserError

TOOLS = "tools"
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
RESULT_OPEN, RESULT_CLOSE = "<tool_response>", "</tool_response>"
_CALLS = re.compile(re.escape(CALL_OPEN) + r"\s*(.*?)\s*" + re.escape(CALL_CLOSE), re.DOTALL)

TOOLS_HEADER = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
)
TOOLS_FOOTER = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)


def _json(value: Any, what: str, where: str) -> Any:
    """``value`` itself, or the JSON that a text ``value`` holds."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise UserError(f"{where}: {what} is not valid JSON ({error.msg}); fix that text") from None


def read_tools(value: Any, where: str) -> list[dict[str, Any]]:
    """A row's ``tools`` (a list, or JSON text of one) as OpenAI's
    ``{"type": "function", "function": {name, description, parameters}}``; LLaMA-Factory's
    bare ``{name, description, parameters}`` are wrapped so.

    Raises:
        UserError: naming the row, for tools that are not a list of named functions.
    """
    tools = _json(value, "'tools'", where)
    if not isinstance(tools, list):
        raise UserError(f"{where}: 'tools' must be a list of function signatures")
    functions = []
    for number, tool in enumerate(tools, start=1):
        function = tool.get("function", tool) if isinstance(tool, dict) else None
        if not (isinstance(function, dict) and isinstance(function.get("name"), str)):
            raise UserError(f"{where}: 'tools' item {number} is not a function with a 'name'")
        functions.append({"type": "function", "function": function})
    return functions


def tools_text(tools: list[dict[str, Any]]) -> str:
    """The system turn's list of tools and how to call them."""
    lines = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in tools)
    return TOOLS_HEADER + lines + TOOLS_FOOTER


def with_tools(messages: list[dict[str, str]], tools: list[dict[str, Any]]) -> list[dict[str, str]]:
    """``messages`` with the tools listed after the system prompt (in a system turn of its
    own where the chat has none)."""
    if not tools:
        return messages
    listed = tools_text(tools)
    if messages and messages[0]["role"] == "system":
        system = {"role": "system", "content": f"{messages[0]['content']}\n\n{listed}"}
        return [system, *messages[1:]]
    return [{"role": "system", "content": listed}, *messages]


def call_text(call: Any, number: int, where: str) -> str:
    """One call, ``{"name", "arguments"}`` or OpenAI's ``{"function": {...}}`` (its
    arguments an object or JSON text), as the assistant writes it.

    Raises:
        UserError: naming the message, for a call without a name or with arguments that are
            not a JSON object.
    """
    call = _json(call, f"message {number}'s call", where)
    if isinstance(call, dict) and isinstance(call.get("function"), dict):
        call = call["function"]
    if not (isinstance(call, dict) and isinstance(call.get("name"), str)):
        raise UserError(f"{where}: message {number} is a call without a function 'name'")
    arguments = _json(call.get("arguments", {}), f"message {number}'s arguments", where)
    if not isinstance(arguments, dict):
        raise UserError(f"{where}: message {number}'s arguments are not a JSON object")
    written = json.dumps({"name": call["name"], "arguments": arguments}, ensure_ascii=False)
    return f"{CALL_OPEN}\n{written}\n{CALL_CLOSE}"


def result_text(content: Any) -> str:
    """A tool's result as the user turn that hands it to the model."""
    if not isinstance(content, str):
        content = json.dumps(content, ensure_ascii=False)
    return f"{RESULT_OPEN}\n{content}\n{RESULT_CLOSE}"


def parse_calls(text: str) -> list[dict[str, Any]]:
    """The calls an answer makes, ``[{"name", "arguments"}]``, in order; a call whose JSON
    does not read, or lacks a name, is left out."""
    calls = []
    for body in _CALLS.findall(text):
        try:
            call = json.loads(body)
        except json.JSONDecodeError:
            continue
        if isinstance(call, dict) and isinstance(call.get("name"), str):
            arguments = call.get("arguments", {})
            calls.append({"name": call["name"], "arguments": arguments})
    return calls


def call_metrics(predictions: list[str], references: list[str]) -> dict[str, float]:
    """How well the answers call tools, where some references are calls: ``tool_call_exact``
    (the same functions with the same arguments, in order) and ``tool_name_accuracy`` (the
    same functions) over the references that call, and ``tool_call_unasked`` (the share of
    answers that call where the reference answers in words). Empty without calls."""
    pairs = [(parse_calls(p), parse_calls(r)) for p, r in zip(predictions, references, strict=True)]
    calling = [(p, r) for p, r in pairs if r]
    if not calling:
        return {}
    worded = [p for p, r in pairs if not r]
    names = [[c["name"] for c in p] == [c["name"] for c in r] for p, r in calling]
    return {
        "tool_calls": float(len(calling)),
        "tool_call_exact": sum(p == r for p, r in calling) / len(calling),
        "tool_name_accuracy": sum(names) / len(calling),
        "tool_call_unasked": sum(bool(p) for p in worded) / len(worded) if worded else 0.0,
    }
