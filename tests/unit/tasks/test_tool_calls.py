"""Function-calling chats (LLaMA-Factory's ShareGPT tool turns, OpenAI's tool_calls) train as
Hermes-format text through any chat template: the model learns the calls, not the results,
and evaluation scores the calls it makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.data.load import read_table
from tunelab.data.tool_calls import call_metrics, parse_calls
from tunelab.errors import UserError
from tunelab.evaluation.generation import generation_metrics
from tunelab.tasks.generation import CausalGeneration

WEATHER = {"name": "get_weather", "description": "Weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}  # fmt: skip
CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def sharegpt_row() -> dict:
    """A row as LLaMA-Factory's glaive_toolcall demo writes it: tools as JSON text."""
    return {
        "conversations": [
            {"from": "human", "value": "Weather in Paris?"},
            {"from": "function_call", "value": json.dumps(CALL)},
            {"from": "observation", "value": '{"temperature": 21}'},
            {"from": "gpt", "value": "It is 21 degrees in Paris."},
        ],
        "tools": json.dumps([WEATHER]),
    }


def openai_row() -> dict:
    """The same chat in OpenAI's fine-tuning format: arguments as JSON text, a tool message."""
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}  # fmt: skip
    return {
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21}'},
            {"role": "assistant", "content": "It is 21 degrees in Paris."},
        ],
        "tools": [{"type": "function", "function": WEATHER}],
    }


def read(path: Path):
    return CausalGeneration().standardize(read_table(path))


def test_sharegpt_and_openai_tool_chats_read_as_the_same_hermes_text(tmp_path):
    ours = read(write_jsonl(tmp_path / "s.jsonl", [sharegpt_row()]))
    theirs = read(write_jsonl(tmp_path / "o.jsonl", [openai_row()]))
    assert ours["messages"].tolist() == theirs["messages"].tolist()
    messages = ours["messages"].iloc[0]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert (
        "<tools>\n" + json.dumps({"type": "function", "function": WEATHER})
        in messages[0]["content"]
    )
    assert messages[2]["content"] == f"<tool_call>\n{json.dumps(CALL)}\n</tool_call>"
    assert messages[3]["content"] == '<tool_response>\n{"temperature": 21}\n</tool_response>'
    # the call, not the words after its result, is what evaluation asks the model for
    assert ours["target"].iloc[0] == messages[2]["content"]
    assert [m["role"] for m in json.loads(ours["source"].iloc[0])] == ["system", "user"]


def test_the_loss_covers_the_call_and_not_the_tool_result(tmp_path, tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    task = CausalGeneration()
    rows = task.encode(read(write_jsonl(tmp_path / "s.jsonl", [sharegpt_row()])), tokenizer, 4096)
    ids, labels = rows["input_ids"][0], rows["labels"][0]
    learned = tokenizer.decode([t for t, label in zip(ids, labels, strict=True) if label >= 0])
    assert '"arguments": {"city": "Paris"}' in learned
    assert "It is 21 degrees in Paris." in learned
    assert "temperature" not in learned and 'get_weather", "description' not in learned


def test_parallel_calls_and_their_results_are_one_turn_each(tmp_path):
    row = sharegpt_row()
    london = {"name": "get_weather", "arguments": {"city": "London"}}
    row["conversations"][2:2] = [{"from": "function_call", "value": json.dumps(london)}]
    row["conversations"].insert(4, {"from": "observation", "value": '{"temperature": 15}'})
    messages = read(write_jsonl(tmp_path / "p.jsonl", [row]))["messages"].iloc[0]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert parse_calls(messages[2]["content"]) == [CALL, london]
    assert messages[3]["content"].count("<tool_response>") == 2


def test_words_before_a_call_are_part_of_the_call_turn_and_its_reference(tmp_path):
    row = openai_row()
    row["messages"][1]["content"] = "Let me check."
    frame = read(write_jsonl(tmp_path / "o.jsonl", [row]))
    call = f"<tool_call>\n{json.dumps(CALL)}\n</tool_call>"
    assert frame["target"].iloc[0] == f"Let me check.\n{call}"


def test_a_system_prompt_keeps_its_place_before_the_tools(tmp_path):
    row = {**sharegpt_row(), "system": "You are terse."}
    system = read(write_jsonl(tmp_path / "s.jsonl", [row]))["messages"].iloc[0][0]["content"]
    assert system.startswith("You are terse.\n\n# Tools")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda r: r["conversations"][1].update(value="{name: get_weather}"),
         r"s.jsonl line 1: message 2's call is not valid JSON"),
        (lambda r: r["conversations"][1].update(value='{"name": "f", "arguments": [1]}'),
         r"line 1: message 2's arguments are not a JSON object"),
        (lambda r: r.update(tools='{"name": "f"}'), r"line 1: 'tools' must be a list"),
        (lambda r: r.update(tools='[{"description": "no name"}]'),
         r"line 1: 'tools' item 1 is not a function with a 'name'"),
    ],
)  # fmt: skip
def test_malformed_tool_rows_name_the_line(tmp_path, change, error):
    row = sharegpt_row()
    change(row)
    with pytest.raises(UserError, match=error):
        read(write_jsonl(tmp_path / "s.jsonl", [row]))


def test_call_metrics_score_the_calls_made():
    call = f"<tool_call>\n{json.dumps(CALL)}\n</tool_call>"
    wrong_city = call.replace("Paris", "Lyon")
    words = "It is sunny."
    references = [call, call, call, words, words]
    predictions = [call, wrong_city, "<tool_call>{broken</tool_call>", call, words]
    scores = call_metrics(predictions, references)
    assert scores == {"tool_calls": 3.0, "tool_call_exact": 1 / 3, "tool_name_accuracy": 2 / 3,
                      "tool_call_unasked": 0.5}  # fmt: skip
    assert generation_metrics(predictions, references)["tool_call_exact"] == 1 / 3
    assert "tool_call_exact" not in generation_metrics([words], [words])


def test_image_chats_still_refuse_tool_turns():
    from tunelab.data.chat_formats import role_and_content

    with pytest.raises(UserError, match=r"message 2 is a tool turn \('observation'\).*causal-lm"):
        role_and_content({"from": "observation", "value": "{}"}, 2, "chats.jsonl line 3")


def test_chats_alike_up_to_the_call_are_not_duplicates(tmp_path):
    from tunelab.config import build_config

    first, second = sharegpt_row(), sharegpt_row()
    second["conversations"][-1]["value"] = "Paris is at 21 degrees."
    frame = read(write_jsonl(tmp_path / "s.jsonl", [first, second, first]))
    assert frame["target"].nunique() == 1  # both are asked for the same call
    clean = build_config({"task": "causal-lm"}).data.clean
    kept, report = CausalGeneration().clean(frame, clean, is_training=True)
    assert len(kept) == 2 and report == {"duplicates": 1}  # the third row repeats the first


def test_the_doctor_counts_the_chats_answered_with_a_call(tmp_path):
    plain = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}
    frame = read(write_jsonl(tmp_path / "s.jsonl", [sharegpt_row(), sharegpt_row(), plain]))
    task = CausalGeneration()
    (line,) = task.doctor_lines(task.diagnose({"train": frame}, False, 0))
    assert "1 duplicate chat," in line
    assert "2 chats answered with a tool call (scored by tool_call_exact)" in line


def test_predictions_carry_the_calls_as_data(tmp_path):
    frame = read(write_jsonl(tmp_path / "s.jsonl", [sharegpt_row(), sharegpt_row()]))
    call = f"<tool_call>\n{json.dumps(CALL)}\n</tool_call>"
    records = CausalGeneration().predictions([call, "It is sunny."], frame)
    assert records[0]["tool_calls"] == [CALL] and records[0]["reference"] == call
    assert "tool_calls" not in records[1]
