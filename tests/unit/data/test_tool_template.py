"""The saved template renders OpenAI-shaped tool chats as the text the model trained on."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest

from tests.unit.tasks.test_tool_calls import WEATHER, openai_row
from tunelab.data.tool_template import MARK, holds_tools, with_tool_rendering
from tunelab.tasks.generation import CausalGeneration

# SmolLM2-Instruct's shape: a default system prompt where the chat has none
DEFAULT_SYSTEM = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Qwen2.5's shape: a template that renders the tools itself
OWN_TOOLS = "{% if tools %}OWN TOOL LIST{% endif %}" + DEFAULT_SYSTEM


def variants() -> dict[str, dict]:
    """OpenAI-format chats: plain, with a system prompt, parallel calls, words before a call,
    arguments as an object."""
    base = openai_row()
    system = copy.deepcopy(base)
    system["messages"].insert(0, {"role": "system", "content": "You are terse."})
    parallel = copy.deepcopy(base)
    london = {"id": "call_2", "type": "function",
              "function": {"name": "get_weather", "arguments": {"city": "London"}}}  # fmt: skip
    parallel["messages"][1]["tool_calls"].append(london)
    parallel["messages"].insert(3, {"role": "tool", "content": {"temperature": 15}})
    worded = copy.deepcopy(base)
    worded["messages"][1]["content"] = "Let me check."
    bare_tools = copy.deepcopy(base)
    bare_tools["tools"] = [WEATHER]  # LLaMA-Factory's bare function signatures
    return {"plain": base, "system": system, "parallel": parallel, "worded": worded,
            "bare_tools": bare_tools}  # fmt: skip


@pytest.mark.parametrize("template", [DEFAULT_SYSTEM, OWN_TOOLS], ids=["default", "own-tools"])
@pytest.mark.parametrize("name", list(variants()))
def test_openai_tool_chats_render_as_the_trained_text(tiny_llama, template, name):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    row = variants()[name]
    trained = CausalGeneration().standardize(pd.DataFrame([row]))["messages"].iloc[0]
    expected = tokenizer.apply_chat_template(trained, tokenize=False, chat_template=template)
    served = tokenizer.apply_chat_template(
        row["messages"], tools=row["tools"], tokenize=False,
        chat_template=with_tool_rendering(template),
    )  # fmt: skip
    assert served == expected
    assert "OWN TOOL LIST" not in served and served.count("<tools>\n") == 1


def test_the_answer_prompt_after_a_tool_result_matches_training(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    row = openai_row()
    asked = row["messages"][:3]  # the result is in: the model answers in words next
    trained = CausalGeneration().standardize(pd.DataFrame([row]))["messages"].iloc[0][:4]
    expected = tokenizer.apply_chat_template(trained, tokenize=False, add_generation_prompt=True)
    tokenizer.chat_template = with_tool_rendering(tokenizer.chat_template)
    served = tokenizer.apply_chat_template(
        asked, tools=row["tools"], tokenize=False, add_generation_prompt=True
    )
    assert served == expected and served.endswith(
        "</tool_response><|im_end|>\n<|im_start|>assistant\n"
    )


def test_plain_chats_render_as_before_and_the_preamble_goes_on_once(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    before = tokenizer.apply_chat_template(chat, tokenize=False)
    wrapped = with_tool_rendering(tokenizer.chat_template)
    assert tokenizer.apply_chat_template(chat, tokenize=False, chat_template=wrapped) == before
    assert with_tool_rendering(wrapped) == wrapped and wrapped.count(MARK) == 1


def test_only_a_model_trained_on_tool_chats_saves_the_tool_rendering(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    for rows, wrapped in (([openai_row()], True), ([{"prompt": "hi", "completion": "yo"}], False)):
        tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
        task = CausalGeneration()
        task.encode(task.standardize(pd.DataFrame(rows)), tokenizer, 512)
        task.finish(model, tokenizer)
        assert tokenizer.chat_template.startswith(MARK) is wrapped


def test_holds_tools_finds_lists_calls_and_results():
    trained = CausalGeneration().standardize(pd.DataFrame([openai_row()]))["messages"].iloc[0]
    assert holds_tools(trained)
    assert not holds_tools([{"role": "user", "content": json.dumps(WEATHER)}])
    assert not holds_tools("not a chat")
