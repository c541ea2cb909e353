"""Instruction files as LLaMA-Factory and Axolotl users have them (Alpaca rows, ShareGPT chats)
train as tunelab's own shapes do: the same tokens and answer spans, a causal-lm guess that
says why, and errors that name the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_translations
from tunelab.config import build_config
from tunelab.data.load import read_table
from tunelab.errors import UserError
from tunelab.tasks.generation import CausalGeneration, Seq2SeqGeneration
from tunelab.training.guesses import guess_from_data


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def encoded(tokenizer, task, path: Path) -> list[tuple[list[int], list[int]]]:
    rows = task.encode(task.standardize(read_table(path)), tokenizer, 128)
    return list(zip(rows["input_ids"], rows["labels"], strict=True))


@pytest.fixture
def llama_tokenizer(tiny_llama):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama)


def test_alpaca_rows_encode_as_the_same_prompt_and_completion(llama_tokenizer, tmp_path):
    pairs = make_translations(30)
    alpaca = [{"instruction": "Translate the first word.", "input": r["source"],
               "output": r["target"]} for r in pairs]  # fmt: skip
    alpaca[0]["input"] = ""  # no input: the instruction alone is the prompt
    prompts = [{"prompt": a["instruction"] + ("\n" + a["input"] if a["input"] else ""),
                "completion": a["output"]} for a in alpaca]  # fmt: skip
    task = CausalGeneration()
    ours = encoded(llama_tokenizer, task, write_jsonl(tmp_path / "alpaca.jsonl", alpaca))
    assert ours == encoded(llama_tokenizer, task, write_jsonl(tmp_path / "p.jsonl", prompts))
    read = task.standardize(read_table(tmp_path / "alpaca.jsonl"))
    assert read["source"].iloc[0] == "Translate the first word."
    assert read.attrs["columns"]["source"] == "instruction"


def test_sharegpt_chats_encode_as_the_same_openai_messages(llama_tokenizer, tmp_path):
    pairs = make_translations(30)
    openai = [{"messages": [
        {"role": "system", "content": "Translate."},
        {"role": "user", "content": r["source"]},
        {"role": "assistant", "content": r["target"]},
    ]} for r in pairs]  # fmt: skip
    senders = {"system": "system", "user": "human", "assistant": "gpt"}
    sharegpt = [{"system": "Translate.", "conversations": [
        {"from": senders[m["role"]], "value": m["content"]} for m in chat["messages"][1:]
    ]} for chat in openai]  # fmt: skip
    task = CausalGeneration()
    ours = encoded(llama_tokenizer, task, write_jsonl(tmp_path / "sharegpt.jsonl", sharegpt))
    assert ours == encoded(llama_tokenizer, task, write_jsonl(tmp_path / "o.jsonl", openai))
    # the ShareGPT turns may sit under 'messages' too, with the system turn among them
    inline = [{"messages": [{"from": senders[m["role"]], "value": m["content"]}
                            for m in chat["messages"]]} for chat in openai]  # fmt: skip
    assert encoded(llama_tokenizer, task, write_jsonl(tmp_path / "in.jsonl", inline)) == ours


def test_alpaca_system_and_history_become_a_chat(tmp_path):
    row = {"instruction": "And green?", "input": "", "output": "绿", "system": "Translate.",
           "history": [["red", "红"], ["blue", "蓝"]]}  # fmt: skip
    plain = {"instruction": "cat", "output": "猫"}  # the other rows need no history
    read = CausalGeneration().standardize(read_table(write_jsonl(tmp_path / "a.jsonl",
                                                                 [row, plain])))  # fmt: skip
    assert [m["role"] for m in read["messages"].iloc[0]] == [
        "system", "user", "assistant", "user", "assistant", "user", "assistant"
    ]  # fmt: skip
    assert read["messages"].iloc[0][-2:] == [{"role": "user", "content": "And green?"},
                                        {"role": "assistant", "content": "绿"}]  # fmt: skip
    assert read["target"].tolist() == ["绿", "猫"]
    # a seq2seq model reads one input: the system prompt leads it; earlier turns cannot
    seq2seq = Seq2SeqGeneration().standardize(
        read_table(write_jsonl(tmp_path / "s.jsonl", [{**row, "history": []}, plain]))
    )
    assert seq2seq["source"].tolist() == ["Translate.\nAnd green?", "cat"]
    with pytest.raises(UserError, match=r"a.jsonl line 1: 'history' holds earlier turns.*"
                                         r"--task causal-lm"):  # fmt: skip
        Seq2SeqGeneration().standardize(read_table(tmp_path / "a.jsonl"))


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        ([{"instruction": "hi"}], r"Alpaca's 'instruction' column but no 'output'"),
        ([{"instruction": "", "input": "", "output": "x", "history": [["q", "a"]]}],
         r"line 1: the row has no instruction or input"),
        ([{"instruction": "q", "output": "a", "history": [["only the question"]]}],
         r"line 1: 'history' item 1 is not a \[question, answer\] pair"),
        ([{"instruction": "q", "output": "", "system": "s"}], r"line 1: the row has no 'output'"),
        ([{"conversations": [{"from": "human", "value": "weather?"},
                             {"from": "function_call", "value": "{}"}]}],
         r"line 1: message 2 is a call without a function 'name'"),
        ([{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]},
                        {"role": "assistant", "content": "red"}]}],
         r"line 1: message 1 holds an image; chats with images train with --task image-text"),
        ([{"conversations": [{"from": "bot", "value": "hi"}]}],
         r"line 1: message 1 is from 'bot'; use one of human, user, gpt"),
    ],
)  # fmt: skip
def test_malformed_instruction_files_name_the_line(tmp_path, rows, error):
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(UserError, match=error):
        CausalGeneration().standardize(read_table(path))


def test_alpaca_questions_without_outputs_are_asked_as_they_are(tmp_path):
    path = write_jsonl(tmp_path / "ask.jsonl", [{"id": 7, "instruction": "Translate.",
                                                 "input": "red cat"}])  # fmt: skip
    read = CausalGeneration().standardize(read_table(path), with_labels=False)
    assert read["source"].tolist() == ["Translate.\nred cat"] and "target" not in read


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([{"instruction": "Translate.", "input": "red", "output": "红"}] * 20,
         "Alpaca 'instruction'/'output' columns"),
        ([{"conversations": [{"from": "human", "value": "red"},
                             {"from": "gpt", "value": "红"}]}] * 20,
         "ShareGPT chats in 'conversations'"),
    ],
)  # fmt: skip
def test_instruction_files_are_guessed_as_causal_lm(tmp_path, rows, reason):
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    config = build_config({"data": {"train": str(path)}})
    guesses = guess_from_data(config)
    assert config.task == "causal-lm"
    assert reason in {k["key"]: k["evidence"] for k in guesses.decided}["task"]


def test_llama_factory_preference_files_read_as_prompt_chosen_rejected(tmp_path):
    from tunelab.tasks.preference import PreferenceTuning

    pairs = [{"prompt": [{"role": "system", "content": "Translate."},
                         {"role": "user", "content": "red"}],
              "chosen": "红", "rejected": "no idea"}] * 3  # fmt: skip
    sharegpt = [{"system": "Translate.", "conversations": [{"from": "human", "value": "red"}],
                 "chosen": {"from": "gpt", "value": "红"},
                 "rejected": {"from": "gpt", "value": "no idea"}}] * 3  # fmt: skip
    alpaca = [{"instruction": "red", "input": "", "system": "Translate.", "chosen": "红",
               "rejected": "no idea"}] * 3  # fmt: skip
    task = PreferenceTuning(preference={"method": "dpo"})
    ours = task.standardize(read_table(write_jsonl(tmp_path / "p.jsonl", pairs)))
    for rows in (sharegpt, alpaca):
        read = task.standardize(read_table(write_jsonl(tmp_path / "x.jsonl", rows)))
        assert read.to_dict("records") == ours.to_dict("records")


def test_a_kto_chat_file_is_guessed_as_kto_and_its_last_turn_is_the_answer(tmp_path):
    from tunelab.tasks.preference import PreferenceTuning

    rows = [{"messages": [{"role": "user", "content": f"red {i}"},
                          {"role": "assistant", "content": "红" if i % 2 else "no idea"}],
             "label": bool(i % 2)} for i in range(20)]  # fmt: skip
    path = write_jsonl(tmp_path / "kto.jsonl", rows)
    config = build_config({"data": {"train": str(path)}})
    guesses = guess_from_data(config)
    assert (config.task, config.preference.method) == ("preference", "kto")
    assert {k["key"] for k in guesses.decided} == {"task", "preference.method"}
    read = PreferenceTuning(preference={"method": "kto"}).standardize(read_table(path))
    assert read["target"].tolist()[:2] == ["no idea", "红"]
    assert read["label"].tolist()[:2] == [False, True]
    assert read["source"].iloc[0] == "red 0"
    # a method given is kept: the data only fills what was left unset
    given = build_config({"data": {"train": str(path)}, "preference": {"method": "dpo"}})
    guess_from_data(given)
    assert given.preference.method == "dpo"
    with pytest.raises(UserError, match=r"row 1: the chat in 'messages' must end with the "
                                         r"assistant answer"):  # fmt: skip
        PreferenceTuning(preference={"method": "kto"}).standardize(
            read_table(
                write_jsonl(
                    tmp_path / "bad.jsonl", [{"messages": rows[0]["messages"][:1], "label": True}]
                )
            )
        )


def test_chats_for_a_model_without_a_chat_template_stop_with_the_fix(llama_tokenizer, tmp_path):
    chats = [{"conversations": [{"from": "human", "value": "red"},
                                {"from": "gpt", "value": "红"}]}]  # fmt: skip
    task = CausalGeneration()
    frame = task.standardize(read_table(write_jsonl(tmp_path / "chats.jsonl", chats)))
    llama_tokenizer.chat_template = None
    with pytest.raises(UserError, match=r"chats.jsonl holds chats.*tokenizer has none.*"
                                         r"prompt/completion"):  # fmt: skip
        task.token_lengths(frame, llama_tokenizer)
    # single-turn Alpaca rows need no template: a base model reads them as plain text
    alpaca = [{"instruction": "Translate.", "input": "red", "output": "红"}]
    plain = task.standardize(read_table(write_jsonl(tmp_path / "a.jsonl", alpaca)))
    assert task.token_lengths(plain, llama_tokenizer)[0] > 3


def test_the_doctor_says_which_task_it_checks_and_why(tmp_path, caplog):
    from tunelab.api import doctor_task

    rows = [{"instruction": "Translate.", "input": "red", "output": "红"}] * 5
    path = write_jsonl(tmp_path / "alpaca.jsonl", rows)
    with caplog.at_level("INFO", logger="tunelab"):
        assert doctor_task(path) == "causal-lm"
    assert "doctor: causal-lm checks, as " in caplog.text
    assert "alpaca.jsonl holds Alpaca 'instruction'/'output' columns (--task overrides)" in (
        caplog.text
    )


def test_answers_longer_than_max_new_tokens_are_warned_of(llama_tokenizer, caplog):
    import pandas as pd

    frame = pd.DataFrame({"source": ["red"] * 10,
                          "target": ["红"] * 8 + ["red cat big dog " * 8] * 2})  # fmt: skip
    short = CausalGeneration(settings={"max_new_tokens": 8})
    with caplog.at_level("WARNING", logger="tunelab"):
        found = short.answer_room(frame, llama_tokenizer)
    assert found["longer_share"] == 0.2 and found["p95"] > 8
    assert "generation.max_new_tokens is 8 and 20% of the training answers are longer" in (
        caplog.text
    )
    caplog.clear()
    roomy = CausalGeneration(settings={"max_new_tokens": 128})
    with caplog.at_level("WARNING", logger="tunelab"):
        assert roomy.answer_room(frame, llama_tokenizer)["longer_share"] == 0.0
    assert "max_new_tokens" not in caplog.text


def test_max_new_tokens_left_unset_is_sized_to_the_training_answers(llama_tokenizer, caplog):
    import pandas as pd

    from tunelab.config import build_config

    frame = pd.DataFrame({"source": ["red"] * 100,
                          "target": ["红"] * 90 + ["red cat big dog " * 8] * 10})  # fmt: skip
    task = CausalGeneration.from_run_config(build_config({"task": "causal-lm"}))
    assert task.new_tokens == 128  # nothing sized yet: the fixed default
    with caplog.at_level("INFO", logger="tunelab"):
        found = task.answer_room(frame, llama_tokenizer)
    longest = found["p99"]
    assert found["sized"] and found["longer_share"] == 0.0
    assert longest * 1.25 <= task.new_tokens <= longest * 1.25 + 8 and task.new_tokens % 8 == 0
    assert task.generation_kwargs(llama_tokenizer)["max_new_tokens"] == task.new_tokens
    assert f"generation.max_new_tokens auto: {task.new_tokens}" in caplog.text
    # short answers get a short budget, down to the floor; a set value is kept
    short = CausalGeneration.from_run_config(build_config({"task": "causal-lm"}))
    short.answer_room(frame.assign(target="红"), llama_tokenizer)
    assert short.new_tokens == 16
    # answers longer than the ceiling: the ceiling, said as such rather than as room for them
    long = CausalGeneration.from_run_config(build_config({"task": "causal-lm"}))
    caplog.clear()
    with caplog.at_level("INFO", logger="tunelab"):
        long.answer_room(frame.assign(target="red cat big dog " * 200), llama_tokenizer)
    assert long.new_tokens == 256 and "256, its automatic ceiling" in caplog.text
    assert "room for the training answers" not in caplog.text
    given = build_config({"task": "causal-lm", "generation": {"max_new_tokens": 300}})
    kept = CausalGeneration.from_run_config(given)
    assert not kept.answer_room(frame, llama_tokenizer)["sized"] and kept.new_tokens == 300
