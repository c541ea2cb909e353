import json
from pathlib import Path

import pytest

from tests.conftest import make_translations, tiny_run_config
from tunelab.data.load import read_table
from tunelab.errors import UserError
from tunelab.tasks.generation import CausalGeneration
from tunelab.tasks.token_windows import IGNORE

# BART leaves its plateau (the decoder ignoring the source) after ~250-300 updates at this rate
SEQ2SEQ_TRAINING = {"epochs": 60, "learning_rate": 3e-3, "batch_size": 16}
CAUSAL_TRAINING = {"epochs": 15, "learning_rate": 3e-3, "batch_size": 16}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def generation_config(model: Path, tmp_path: Path, task: str, rows: list[dict], **training):
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    test = write_jsonl(tmp_path / "test.jsonl", make_translations(20, seed=7))
    config = tiny_run_config(model, train, tmp_path / "run")
    config["task"] = task
    config["data"]["test"] = str(test)
    config["training"].update(training)
    config["generation"] = {"max_new_tokens": 12}
    return config


@pytest.mark.parametrize("family", ["tiny_t5", "tiny_bart"])
def test_seq2seq_learns_a_word_by_word_translation(family, request, tmp_path):
    import tunelab

    model = request.getfixturevalue(family)
    config = generation_config(
        model, tmp_path, "seq2seq", make_translations(400), **SEQ2SEQ_TRAINING
    )
    result = tunelab.train(config)
    test = result["metrics"]["test"]
    assert {"rouge1", "rougeL", "bleu", "chrf", "exact_match", "perplexity"} <= set(test)
    assert test["exact_match"] > 0.8  # random weights score near 0
    records = [json.loads(x) for x in (tmp_path / "run" / "predictions.jsonl").open()]
    assert len(records) == 20 and {"source", "reference", "output"} <= set(records[0])
    (answer,) = tunelab.predict(result["model_dir"], texts=["red cat"])
    assert answer["output"] == "红"


def test_causal_lm_loss_is_on_the_answer_only(tiny_llama):
    import pandas as pd
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    task = CausalGeneration()
    frame = task.standardize(pd.DataFrame({"prompt": ["red cat"], "completion": ["红猫"]}))
    features = task.encode(frame, tokenizer, 64)[0]
    pairs = zip(features["input_ids"], features["labels"], strict=True)
    answer = [token for token, label in pairs if label != IGNORE]
    assert tokenizer.decode(answer) == "红猫<|im_end|>"  # the answer and the end of its turn
    assert task.stop_ids(tokenizer) == [
        tokenizer.eos_token_id,
        tokenizer.convert_tokens_to_ids("<|im_end|>"),
    ]


def test_packed_rows_see_only_themselves(tiny_llama):
    """Padding-free packing: a row's logits inside a packed batch equal its logits alone."""
    import pandas as pd
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    task = CausalGeneration()
    model = task.build_model(str(tiny_llama)).eval()  # as the trainer gets it
    reference = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    frame = task.standardize(pd.DataFrame(make_translations(3)))
    rows = [dict(r) for r in task.encode(frame, tokenizer, 64)]
    task.max_length = sum(len(r["input_ids"]) for r in rows[:2])  # two rows fit, not three
    batch = task.collator(tokenizer)([{k: r[k] for k in ("input_ids", "labels")} for r in rows])
    assert batch["input_ids"].shape[0] == 2 and "attention_mask" not in batch
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
    found = 0
    for row in rows:  # find each row's tokens in the packed batch, compare its logits
        n = len(row["input_ids"])
        with torch.no_grad():
            alone = reference(input_ids=torch.tensor([row["input_ids"]])).logits[0]
        for b in range(2):
            ids = batch["input_ids"][b].tolist()
            for start in range(len(ids) - n + 1):
                if ids[start : start + n] == row["input_ids"]:
                    assert torch.allclose(packed[b, start : start + n], alone, atol=1e-4)
                    assert batch["labels"][b, start] == IGNORE  # nothing predicts across
                    found += 1
    assert found == 3


@pytest.mark.parametrize("packing", [True, False])
def test_causal_lm_instruction_tuning_end_to_end(tiny_llama, tmp_path, packing):
    import tunelab

    config = generation_config(
        tiny_llama, tmp_path, "causal-lm", make_translations(400), **CAUSAL_TRAINING
    )
    config["generation"]["packing"] = packing
    result = tunelab.train(config)
    assert result["metrics"]["test"]["exact_match"] > 0.8
    # a chat model from elsewhere is also scored untuned: the random one could not answer
    assert result["metrics"]["before"]["test"]["exact_match"] < 0.3
    (answer,) = tunelab.predict(result["model_dir"], texts=["red cat"])
    assert answer["output"] == "红"


def test_chat_jsonl_trains_as_is_and_agrees_with_the_pipeline(tiny_llama, tmp_path):
    from transformers import pipeline

    import tunelab

    chats = [
        {"messages": [
            {"role": "system", "content": "Translate."},
            {"role": "user", "content": r["source"]},
            {"role": "assistant", "content": r["target"]},
        ]}
        for r in make_translations(400)
    ]  # fmt: skip
    config = generation_config(tiny_llama, tmp_path, "causal-lm", chats, **CAUSAL_TRAINING)
    config["data"]["test"] = str(write_jsonl(tmp_path / "test.jsonl", chats[:10]))
    model_dir = tunelab.train(config)["model_dir"]
    ours = tunelab.predict(model_dir, input=config["data"]["test"])
    generator = pipeline("text-generation", model=model_dir)
    for chat, record in zip(chats[:10], ours, strict=True):
        theirs = generator(chat["messages"][:-1])[0]["generated_text"][-1]["content"]
        assert theirs.strip() == record["output"]
    # questions as users have them: the chat ends with the user's turn, with an id beside it
    questions = [{"id": f"q{i}", "messages": c["messages"][:-1]} for i, c in enumerate(chats[:10])]
    asked = tunelab.predict(model_dir, input=write_jsonl(tmp_path / "ask.jsonl", questions))
    assert [r["output"] for r in asked] == [r["output"] for r in ours]
    assert [r["id"] for r in asked] == [q["id"] for q in questions]
    assert "reference" not in asked[0] and "reference" in ours[0]


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"role": "robot", "content": "hi"}], r"line 1: message 1 has role 'robot'"),
        ([{"role": "user"}], r"line 1: message 1 \(user\) has no content"),
        ([{"role": "user", "content": "hi"}], "line 1: the conversation has no assistant"),
        ("hello", "line 1: 'messages' must be a non-empty list"),
    ],
)
def test_malformed_chats_name_the_line(tmp_path, messages, error):
    path = write_jsonl(tmp_path / "chat.jsonl", [{"messages": messages}])
    with pytest.raises(UserError, match=error):
        CausalGeneration().standardize(read_table(path))
    if "no assistant" not in error:  # a question without an answer is fine to predict for
        with pytest.raises(UserError, match=error):
            CausalGeneration().standardize(read_table(path), with_labels=False)


def test_generation_metrics_count_characters_for_chinese():
    from tunelab.evaluation.generation import generation_metrics

    same = generation_metrics(["红猫"], ["红猫"])
    assert same["rougeL"] == 1.0 and same["exact_match"] == 1.0 and same["chrf"] == 100.0
    half = generation_metrics(["红狗"], ["红猫"])
    assert half["rouge1"] == pytest.approx(0.5)
    assert half["bleu_tokenize"] == "zh"
    english = generation_metrics(["list directory contents"], ["list the directory contents"])
    assert english["bleu_tokenize"] == "13a" and 0 < english["rougeL"] < 1


def test_chat_streams_the_same_answer_as_predict(tiny_llama, tmp_path):
    import io

    import tunelab
    from tunelab.chat import chat

    config = generation_config(
        tiny_llama, tmp_path, "causal-lm", make_translations(400), **CAUSAL_TRAINING
    )
    model_dir = tunelab.train(config)["model_dir"]
    turns = iter(["blue dog", ""])
    out = io.StringIO()
    messages = chat(model_dir, read=lambda _: next(turns), out=out)
    (expected,) = tunelab.predict(model_dir, texts=["blue dog"])
    assert messages[-1] == {"role": "assistant", "content": expected["output"]}
    assert out.getvalue().strip() == f"model> {expected['output']}"


def test_chat_refuses_an_encoder(tiny_bert):
    from tunelab.chat import load_chat_model

    with pytest.raises(UserError, match="not a causal language model"):
        load_chat_model(tiny_bert)


def test_rows_are_packed_first_fit_without_exceeding_the_length():
    from tunelab.tasks.packing import pack_rows

    bins = pack_rows([5, 3, 4, 2, 9], max_length=8)
    assert sorted(i for b in bins for i in b) == [0, 1, 2, 3, 4]
    lengths = [5, 3, 4, 2, 9]
    assert all(sum(lengths[i] for i in b) <= 8 or len(b) == 1 for b in bins)
    assert len(bins) == 3  # [9], [5, 3], [4, 2]


def test_seq2seq_targets_end_in_eos_even_when_the_tokenizer_adds_none(tiny_llama):
    import pandas as pd
    from transformers import AutoTokenizer

    from tunelab.tasks.generation import Seq2SeqGeneration

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)  # byte-level BPE, no post-processor
    task = Seq2SeqGeneration()
    frame = task.standardize(pd.DataFrame(make_translations(2)))
    labels = task.encode(frame, tokenizer, 32)["labels"]
    assert all(row[-1] == tokenizer.eos_token_id for row in labels)


def test_causal_lm_path_runs_on_the_bundled_starter(tmp_path):
    """The starter causal model (byte-level BPE, ChatML template) trains, scores and predicts
    through the same path; a few steps only, so this checks the plumbing, not quality."""
    from transformers import AutoTokenizer

    import tunelab
    from tunelab.models.load import resolve_model_source

    config = generation_config(
        Path(resolve_model_source("zh-llama-mini")), tmp_path, "causal-lm",
        make_translations(64), max_steps=4, batch_size=8,
    )  # fmt: skip
    result = tunelab.train(config)
    test = result["metrics"]["test"]
    assert test["examples"] == 20 and test["perplexity"] > 1
    assert "before" not in result["metrics"]  # a starter cannot answer before tuning
    saved = Path(result["model_dir"])
    tokenizer = AutoTokenizer.from_pretrained(saved)
    generation = json.loads((saved / "generation_config.json").read_text())
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in generation["eos_token_id"]
    (answer,) = tunelab.predict(saved, texts=["red cat"])
    assert isinstance(answer["output"], str)


def test_source_target_data_given_a_decoder_only_model_trains_as_causal_lm(tiny_llama, tmp_path):
    import tunelab

    config = generation_config(tiny_llama, tmp_path, "seq2seq", make_translations(60),
                               epochs=1)  # fmt: skip
    with pytest.raises(UserError, match=r"not an encoder-decoder model.*--task causal-lm"):
        tunelab.train(config)  # the user named seq2seq: say what to change
    del config["task"]  # guessed from source/target columns: seq2seq, then causal-lm
    run = Path(tunelab.train(config)["output"])
    assert "task: causal-lm" in (run / "config.yaml").read_text()
    report = json.loads((run / "data_report.json").read_text())
    assert {"key": "task", "value": "causal-lm"}.items() <= report["guessed"]["keys"][0].items()


def test_a_prompt_too_long_loses_the_end_of_its_text_not_the_instruction(tiny_llama):
    from transformers import AutoTokenizer

    from tunelab.tasks.causal_encoding import fitted_prompt_ids, prompt_ids

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    prefix, source = "Translate: ", " ".join(["red cat big dog"] * 40)
    whole = prompt_ids(tokenizer, None, prefix + source)
    assert fitted_prompt_ids(tokenizer, None, prefix, source, len(whole)) == whole  # fits
    cut = fitted_prompt_ids(tokenizer, None, prefix, source, 60)
    assert len(cut) <= 60
    head = prompt_ids(tokenizer, None, prefix)
    header = len(tokenizer(tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}], tokenize=False, add_generation_prompt=True
    ).split("x", 1)[1], add_special_tokens=False)["input_ids"])  # fmt: skip
    # the user turn's opening and the prefix stay, and so does the assistant header after it
    assert cut[:5] == whole[:5] and tokenizer.decode(cut).count("Translate:") == 1
    assert cut[-header:] == whole[-header:] and len(head) < len(cut)


def test_a_prompt_and_its_answer_fit_the_position_table_when_max_length_is_all_of_it(
    tiny_llama, monkeypatch
):
    import pandas as pd
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.tasks import generation

    seen = []
    monkeypatch.setattr(
        generation, "generate_in_batches", lambda model, tok, prompts, *a, **k: seen.extend(prompts)
    )
    task = CausalGeneration(settings={"max_new_tokens": 40})
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)  # 256 positions
    frame = task.standardize(pd.DataFrame({"prompt": ["red cat " * 300], "completion": ["x"]}))
    # max_length set to the model's whole limit (the 99th percentile of long chats reaches it)
    task.forward(model, tokenizer, frame, max_length=256, batch_size=1)
    assert len(seen) == 1 and len(seen[0]) + 40 <= 256 and len(seen[0]) > 200


def test_a_prompt_file_is_read_under_its_own_names_and_only_its_ids_pass_through():
    import pandas as pd

    from tunelab.api import _with_other_input_columns

    task = CausalGeneration()
    given = pd.DataFrame({"id": ["a7"], "prompt": ["hi"], "completion": ["yo"]})
    read = task.standardize(given, with_labels=False)
    assert read.attrs["columns"] == {"source": "prompt", "target": "completion"}
    records = _with_other_input_columns([{"source": "hi", "output": "x"}], given, read, task)
    assert records == [{"id": "a7", "source": "hi", "output": "x"}]


def test_the_doctor_tells_several_references_from_duplicate_pairs(caplog):
    import pandas as pd

    task = CausalGeneration()
    given = pd.DataFrame({
        "prompt": ["name[Aromi]", "name[Aromi]", "name[Aromi]", "name[Bibimbap]"],
        "completion": ["Aromi is a pub.", "A pub: Aromi.", "Aromi is a pub.", "It is Bibimbap."],
    })  # fmt: skip
    train = task.standardize(given)
    report = task.diagnose({"train": train}, find_label_errors=False, seed=0)
    assert task.doctor_lines(report) == [
        "data doctor: train: 4 rows, 1 duplicate pair (same input and target), "
        "1 row gives an earlier input another target (several references per input)"
    ]

    class Clean:
        drop_duplicates = True

    with caplog.at_level("WARNING", logger="tunelab"):
        kept, steps = task.clean(train, Clean(), is_training=True)
    assert len(kept) == 3 and steps == {"duplicates": 1}
    assert "dropped 1 duplicate row(s) (the same input and target" in caplog.text


def test_a_long_generation_says_how_far_it_is(tiny_llama, monkeypatch, caplog):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab import inference

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    monkeypatch.setattr(inference, "PROGRESS_SECONDS", 0.0)  # every batch after the first
    settings = {"max_new_tokens": 2, "do_sample": False, "eos_token_id": None}
    with caplog.at_level("INFO", logger="tunelab"):
        answers = inference.generate_in_batches(
            model, tokenizer, [[5, 6, 7], [8, 9], [10]], 1, "fp32", settings, decoder_only=True
        )
    assert len(answers) == 3
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("generating")]
    assert [line.split(",")[0] for line in said] == ["generating: 1/3 rows", "generating: 2/3 rows"]


def test_the_doctor_keeps_its_plain_duplicates_line_for_rows_without_targets():
    from tunelab.tasks.generation import generation_doctor_lines

    split = {"rows": 5, "duplicates": {"exact_duplicates": 2, "near_duplicates": 3}}
    report = {"splits": {"test": split}, "targets": {}}
    assert generation_doctor_lines(report) == [
        "data doctor: test: 5 rows, 2 exact / 3 near duplicates"
    ]


def test_long_prompts_on_a_cpu_generate_in_batches_capped_by_tokens(tiny_llama, monkeypatch):
    import numpy as np
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab import inference

    lengths = [1700, 1600, 900, 120, 100, 90, 80]
    order = np.argsort(lengths, kind="stable")[::-1]
    chunks = [list(c) for _, c in inference.length_chunks(lengths, order, 64, 4000, 128)]
    # 4,000 tokens hold 2 rows of 1,700 (+128 to write), 3 of 900, and all the short ones
    assert chunks == [[0, 1], [2, 3, 4], [5, 6]]
    assert [list(c) for _, c in inference.length_chunks(lengths, order, 64, None)] == [list(order)]
    # one row too long for the budget still gets a batch of its own
    assert [len(c) for _, c in inference.length_chunks([9000], np.array([0]), 64, 4000, 0)] == [1]
    # generate_in_batches answers every row, whatever the batching
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    settings = {"max_new_tokens": 2, "do_sample": False, "eos_token_id": None}
    prompts = [[5, 6, 7, 8], [8, 9], [10]]
    batched = inference.generate_in_batches(model, tokenizer, prompts, 8, "fp32", settings, True)
    monkeypatch.setattr(inference, "CPU_GENERATION_TOKENS", 6)  # one row a batch
    alone = inference.generate_in_batches(model, tokenizer, prompts, 8, "fp32", settings, True)
    assert list(alone) == list(batched) and len(alone) == 3
