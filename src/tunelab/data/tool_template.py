"""A chat template that renders tools, calls and results as the text tunelab trains on.

tunelab writes function-calling chats as Hermes text inside plain ``{role, content}``
messages (:mod:`tunelab.data.tool_calls`), so any template can train on them. A model trained
so is then served elsewhere (vLLM, llama.cpp, Ollama, ``apply_chat_template(tools=...)``) from
OpenAI-shaped messages: ``tools``, assistant ``tool_calls`` and ``tool`` messages, which its
original template renders its own way or drops. :func:`with_tool_rendering` puts a preamble
before that template that rewrites those messages into the trained text first, so every
server shows the model what it learned. Plain chats pass through unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from tunelab.data.tool_calls import (
    CALL_CLOSE,
    CALL_OPEN,
    RESULT_CLOSE,
    RESULT_OPEN,
    TOOLS_FOOTER,
    TOOLS_HEADER,
)

MARK = "{#- tunelab: tools, tool calls and tool results as the Hermes text trained on -#}"


def _quoted(text: str) -> str:
    """``text`` as a Jinja string literal (JSON's escapes are Jinja's)."""
    return json.dumps(text)


# Arguments given as JSON text are written as given (a template cannot parse JSON); as an
# object they are written as json.dumps writes them, like tool_calls.call_text. Every tag
# trims the whitespace around it, so the preamble itself writes nothing.
_PREAMBLE_SOURCE = """
{%- set tunelab = namespace(messages=[]) -%}
{%- for message in messages -%}
  {%- set before = tunelab.messages[-1] if tunelab.messages | length > 0 else none -%}
  {%- if message.role == 'tool' -%}
    {%- set said = message.content if message.content is string else message.content | tojson -%}
    {%- set text = @RESULT_HEAD@ ~ said ~ @RESULT_TAIL@ -%}
    {%- if before is not none and before.role == 'user' and @RESULT_OPEN@ in before.content -%}
      {%- set joined = {'role': 'user', 'content': before.content ~ '\\n' ~ text} -%}
      {%- set tunelab.messages = tunelab.messages[:-1] + [joined] -%}
    {%- else -%}
      {%- set tunelab.messages = tunelab.messages + [{'role': 'user', 'content': text}] -%}
    {%- endif -%}
  {%- elif message.role == 'assistant' and message.tool_calls is defined and message.tool_calls -%}
    {%- set calls = namespace(written=[]) -%}
    {%- if message.content is string and message.content | trim -%}
      {%- set calls.written = [message.content] -%}
    {%- endif -%}
    {%- for call in message.tool_calls -%}
      {%- set function = call.function if call.function is defined else call -%}
      {%- set arguments = function.arguments if function.arguments is defined else {} -%}
      {%- set arguments = arguments if arguments is string else arguments | tojson -%}
      {%- set named = @CALL_HEAD@ ~ function.name | tojson ~ ', "arguments": ' -%}
      {%- set calls.written = calls.written + [named ~ arguments ~ @CALL_TAIL@] -%}
    {%- endfor -%}
    {%- set text = calls.written | join('\\n') -%}
    {%- if before is not none and before.role == 'assistant' and @CALL_OPEN@ in before.content
          and text.startswith(@CALL_OPEN@) -%}
      {%- set joined = {'role': 'assistant', 'content': before.content ~ '\\n' ~ text} -%}
      {%- set tunelab.messages = tunelab.messages[:-1] + [joined] -%}
    {%- else -%}
      {%- set tunelab.messages = tunelab.messages + [{'role': 'assistant', 'content': text}] -%}
    {%- endif -%}
  {%- else -%}
    {%- set tunelab.messages = tunelab.messages + [message] -%}
  {%- endif -%}
{%- endfor -%}
{%- if tools is defined and tools -%}
  {%- set listed = namespace(lines=[]) -%}
  {%- for tool in tools -%}
    {%- set function = tool.function if tool.function is defined else tool -%}
    {%- set listed.lines = listed.lines + [{'type': 'function', 'function': function} | tojson] -%}
  {%- endfor -%}
  {%- set listed = @TOOLS_HEADER@ ~ listed.lines | join('\\n') ~ @TOOLS_FOOTER@ -%}
  {%- if tunelab.messages and tunelab.messages[0].role == 'system' -%}
    {%- set system = tunelab.messages[0].content ~ '\\n\\n' ~ listed -%}
    {%- set tunelab.messages = [{'role': 'system', 'content': system}] + tunelab.messages[1:] -%}
  {%- else -%}
    {%- set tunelab.messages = [{'role': 'system', 'content': listed}] + tunelab.messages -%}
  {%- endif -%}
{%- endif -%}
{%- set messages = tunelab.messages -%}
{%- set tools = none -%}
"""
_TEXTS = {
    "@RESULT_HEAD@": RESULT_OPEN + "\n", "@RESULT_TAIL@": "\n" + RESULT_CLOSE,
    "@RESULT_OPEN@": RESULT_OPEN, "@CALL_OPEN@": CALL_OPEN,
    "@CALL_HEAD@": CALL_OPEN + '\n{"name": ', "@CALL_TAIL@": "}\n" + CALL_CLOSE,
    "@TOOLS_HEADER@": TOOLS_HEADER, "@TOOLS_FOOTER@": TOOLS_FOOTER,
}  # fmt: skip
PREAMBLE = MARK + _PREAMBLE_SOURCE.strip()
for _name, _text in _TEXTS.items():
    PREAMBLE = PREAMBLE.replace(_name, _quoted(_text))


def with_tool_rendering(template: str) -> str:
    """``template`` with :data:`PREAMBLE` before it (once: a template that has it is kept)."""
    return template if template.startswith(MARK) else PREAMBLE + template


def holds_tools(messages: Any) -> bool:
    """Whether a chat (tunelab's converted messages) lists tools, calls one or hands back a
    result: a model trained on it should keep the rendering (:func:`with_tool_rendering`)."""
    if not isinstance(messages, list):
        return False
    marks = (CALL_OPEN, RESULT_OPEN, TOOLS_HEADER)
    return any(
        isinstance(m, dict) and any(mark in str(m.get("content", "")) for mark in marks)
        for m in messages
    )
