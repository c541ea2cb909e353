"""`tunelab chat --tools`: the model is offered tools as it trained on them, and the user
plays each tool it calls."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from tests.unit.tasks.test_tool_calls import CALL, WEATHER, openai_row
from tunelab import chat as chat_module
from tunelab.errors import UserError
from tunelab.tasks.generation import CausalGeneration


def test_a_call_asks_the_user_for_its_result_and_the_model_answers_with_it(
    tiny_llama, tmp_path, monkeypatch
):
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([{"type": "function", "function": WEATHER}]))
    prompts, asked = [], []
    answers = iter([f"<tool_call>\n{json.dumps(CALL)}\n</tool_call>", "It is 21 degrees."])

    def reply(model, tokenizer, stop, messages, *args):
        prompts.append([dict(m) for m in messages])
        return next(answers)

    def read(prompt):
        asked.append(prompt)
        return next(typed)

    typed = iter(["Weather in Paris?", '{"temperature": 21}', ""])
    monkeypatch.setattr(chat_module, "reply", reply)
    chat_module.chat(tiny_llama, read=read, out=io.StringIO(), tools=tools)
    assert asked == ["you> ", 'get_weather({"city": "Paris"}) returns> ', "you> "]
    # the second prompt is the chat as a training row of the same tool chat reads
    trained = CausalGeneration().standardize(pd.DataFrame([openai_row()]))["messages"].iloc[0]
    assert prompts[1] == trained[:4]
    assert prompts[0] == trained[:2]


def test_without_a_call_the_chat_asks_for_no_result(tiny_llama, tmp_path, monkeypatch):
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([WEATHER]))  # LLaMA-Factory's bare signatures
    monkeypatch.setattr(chat_module, "reply", lambda *args: "Hello.")
    typed = iter(["hi", ""])
    messages = chat_module.chat(tiny_llama, read=lambda _: next(typed), out=io.StringIO(),
                                tools=tools)  # fmt: skip
    assert [m["role"] for m in messages] == ["user", "assistant"]


@pytest.mark.parametrize(
    ("text", "error"),
    [("{not json", r"--tools .*tools.json: 'tools' is not valid JSON"),
     ('{"name": "f"}', r"'tools' must be a list"),
     ("[]", r"lists no functions")],
)  # fmt: skip
def test_a_bad_tools_file_is_named(tmp_path, text, error):
    tools = tmp_path / "tools.json"
    tools.write_text(text)
    with pytest.raises(UserError, match=error):
        chat_module.read_tools_file(tools)
