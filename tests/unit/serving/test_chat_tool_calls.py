"""Tools through ``/v1/chat/completions``: the request's tools and tool turns reach the model
as the same Hermes text tunelab trains on, and the calls in an answer come back as OpenAI
``tool_calls``, streamed or not."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from tunelab.serving.chat_completions import (
    ChatRequest,
    Generation,
    _events,
    answer_message,
    chat_messages,
)
from tunelab.serving.server import create_app
from tunelab.tasks.generation_inputs import check_messages

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}  # fmt: skip
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
ASKED = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
     "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": '{"temperature": 21}'},
]  # fmt: skip


def test_a_request_reads_as_the_training_rows_do():
    messages, tools = chat_messages(ChatRequest(messages=ASKED, tools=[WEATHER]))
    from tunelab.data.tool_calls import with_tools

    assert messages == with_tools(check_messages(ASKED, "row", need_answer=False), tools)
    assert messages[0]["role"] == "system" and '"name": "get_weather"' in messages[0]["content"]
    assert messages[2]["content"] == CALL
    result = '<tool_response>\n{"temperature": 21}\n</tool_response>'
    assert messages[3] == {"role": "user", "content": result}
    hidden, _ = chat_messages(ChatRequest(messages=ASKED, tools=[WEATHER], tool_choice="none"))
    assert hidden[0]["role"] == "user"  # tool_choice none: the tools are not shown
    with pytest.raises(ValueError, match="tool_choice: 'required' is not supported"):
        chat_messages(ChatRequest(messages=ASKED, tools=[WEATHER], tool_choice="required"))
    with pytest.raises(ValueError, match="tools: 'tools' item 1 is not a function"):
        chat_messages(ChatRequest(messages=ASKED, tools=[{"description": "nameless"}]))


def test_calls_in_an_answer_become_tool_calls():
    message, finish = answer_message(f"Let me look.\n{CALL}", tools=True)
    assert finish == "tool_calls" and message["content"] == "Let me look."
    (call,) = message["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    # without tools in the request the text is the answer, as is a call that does not parse
    assert answer_message(CALL, tools=False) == ({"role": "assistant", "content": CALL}, None)
    broken = "<tool_call>{oops</tool_call>"
    assert answer_message(broken, tools=True) == ({"role": "assistant", "content": broken}, None)


class _Written:
    """Stands in for ChatModel: hands out an answer in the given pieces."""

    def __init__(self, pieces: list[str]) -> None:
        self.given = pieces

    def pieces(self, job: Generation):
        job.finish_reason = "stop"
        yield from self.given


def _stream(pieces: list[str], tools: bool) -> list[dict]:
    job = Generation(ids=[1], max_new_tokens=8, stops=[], sampling={}, tools=tools)

    async def collect() -> list[str]:
        return [event async for event in _events(_Written(pieces), job, {"id": "x"}, False)]

    events = asyncio.run(collect())
    return [json.loads(e[len("data: ") :]) for e in events if e != "data: [DONE]\n\n"]


def test_a_streamed_call_comes_whole_after_the_words_before_it():
    # the opening tag arrives split across pieces: none of it may leak into the content
    pieces = ["Let me ", "look.\n<tool", "_call>\n", CALL[len("<tool_call>\n") :]]
    chunks = _stream(pieces, tools=True)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert "".join(d.get("content") or "" for d in deltas) == "Let me look.\n"
    (listed,) = [d["tool_calls"] for d in deltas if "tool_calls" in d]
    assert listed[0]["index"] == 0 and listed[0]["function"]["name"] == "get_weather"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    # a held-back '<tool' that turns out to be words is sent, not lost
    words = ["a <tool", " box"]
    chunks = _stream(words, tools=True)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "a <tool box"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert "".join(c["choices"][0]["delta"].get("content") or ""
                   for c in _stream(pieces, tools=False)) == "".join(pieces)  # fmt: skip


def test_the_server_prompts_with_the_tools_and_results(causal_run):
    from transformers import AutoTokenizer

    from tunelab.tasks.causal_encoding import prompt_ids

    tokenizer = AutoTokenizer.from_pretrained(causal_run / "model")
    messages, _ = chat_messages(ChatRequest(messages=ASKED, tools=[WEATHER]))
    expected = prompt_ids(tokenizer, messages, messages[-1]["content"])
    with TestClient(create_app(causal_run)) as client:
        answer = client.post("/v1/chat/completions", json={"messages": ASKED, "tools": [WEATHER]})
        plain = client.post("/v1/chat/completions", json={"messages": ASKED})
    # the tiny model reads 256 tokens, fewer than the tools' list: its refusal counts the
    # prompt the server built
    assert answer.status_code == 422
    assert f"the chat is {len(expected)} tokens long" in answer.json()["error"]["message"]
    assert plain.json()["usage"]["prompt_tokens"] == len(
        prompt_ids(tokenizer, messages[1:], messages[-1]["content"])
    )
