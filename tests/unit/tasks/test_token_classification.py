import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_entities, tiny_run_config
from tunelab.data.load import read_table
from tunelab.data.tag_schemes import convert_tags
from tunelab.errors import UserError
from tunelab.tasks.token_classification import TokenClassification
from tunelab.tasks.token_inputs import join_tokens, pre_tokenize
from tunelab.tasks.token_windows import Window, merge_windows, window_bounds


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def write_conll(path: Path, rows: list[dict], extra_column: bool = False) -> Path:
    blocks = []
    for row in rows:
        lines = [
            f"{t} X {tag}" if extra_column else f"{t}\t{tag}"
            for t, tag in zip(row["tokens"], row["tags"], strict=True)
        ]
        blocks.append("\n".join(lines))
    path.write_text("-DOCSTART- O\n\n" + "\n\n".join(blocks) + "\n", "utf-8")
    return path


def write_conllu(path: Path, rows: list[dict]) -> Path:
    """The rows as CoNLL-U, each tag in the UPOS field, with a comment before each sentence."""
    blocks = []
    for number, row in enumerate(rows, start=1):
        words = [
            f"{i}\t{t}\t{t}\t{tag}\t_\t_\t0\tdep\t_\t_"
            for i, (t, tag) in enumerate(zip(row["tokens"], row["tags"], strict=True), start=1)
        ]
        blocks.append(f"# sent_id = {number}\n" + "\n".join(words))
    path.write_text("\n\n".join(blocks) + "\n\n", "utf-8")
    return path


def as_spans(row: dict) -> dict:
    """The same sentence as raw text with character spans (Label Studio's shape)."""
    from tunelab.data.tag_schemes import spans_from_tags

    text = "".join(row["tokens"])
    spans = [
        {"start": s, "end": e, "labels": [kind]}
        for s, e, kind in spans_from_tags(row["tags"], "bio")
    ]
    return {"text": text, "spans": spans}


# -- reading ---------------------------------------------------------------------------------


def test_conll_reader_skips_docstart_and_reads_extra_columns(tmp_path):
    rows = make_entities(3)
    frame = read_table(write_conll(tmp_path / "a.conll", rows, extra_column=True))
    assert frame["tokens"].tolist() == [r["tokens"] for r in rows]
    assert frame["tags"].tolist() == [r["tags"] for r in rows]
    middle = read_table(tmp_path / "a.conll", tag_column=1)
    assert set(middle["tags"][middle.index[0]]) == {"X"}


def test_conll_line_without_a_tag_names_the_line(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("北\tB-LOC\n京\n", "utf-8")
    with pytest.raises(UserError, match=r"bad.conll line 2: expected a token and a tag"):
        read_table(path)


def test_tokens_and_tags_of_different_length_name_the_row(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"tokens": ["a", "b"], "tags": ["O"]}])
    with pytest.raises(UserError, match=r"row 1: 2 tokens but 1 tags in column 'tags'"):
        TokenClassification().standardize(read_table(path))


def test_spans_become_token_tags_and_misaligned_spans_are_widened(tmp_path):
    rows = [
        {"text": "我在北京 Beijing", "spans": [{"start": 2, "end": 4, "label": "LOC"}]},
        {"text": "Visit Beijing now", "spans": [[6, 10, "LOC"]]},  # doccano shape, cuts a word
    ]
    task = TokenClassification()
    frame = task.standardize(read_table(write_jsonl(tmp_path / "s.jsonl", rows)))
    first, second = frame.to_dict("records")
    assert first["tokens"] == ["我", "在", "北", "京", "Beijing"]
    assert first["tags"] == ["O", "O", "B-LOC", "I-LOC", "O"]
    assert second["tags"] == ["O", "B-LOC", "O"]
    assert frame.attrs["misaligned_spans"] == 1


def test_span_outside_the_text_and_overlapping_spans_are_rejected(tmp_path):
    outside = [{"text": "北京", "spans": [{"start": 0, "end": 5, "label": "LOC"}]}]
    with pytest.raises(UserError, match=r"row 1: span 0-5 lies outside the text"):
        TokenClassification().standardize(read_table(write_jsonl(tmp_path / "o.jsonl", outside)))
    overlap = [{"text": "北京市", "spans": [[0, 2, "LOC"], [1, 3, "LOC"]]}]
    with pytest.raises(UserError, match="spans overlap"):
        TokenClassification().standardize(read_table(write_jsonl(tmp_path / "v.jsonl", overlap)))


def test_broken_tags_are_repaired_or_rejected_by_config(tmp_path):
    path = write_jsonl(
        tmp_path / "b.jsonl",
        [{"tokens": list("张三在北京"), "tags": ["B-PER", "I-PER", "O", "I-LOC", "I-LOC"]}],
    )
    repaired = TokenClassification().standardize(read_table(path))
    assert repaired["tags"].iloc[0] == ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]
    assert repaired.attrs["broken_rows"] == [1]
    with pytest.raises(UserError, match=r"row 1: tag 'I-LOC' at token 4 breaks the BIO scheme"):
        TokenClassification(repair=False).standardize(read_table(path))


def test_bio_data_is_converted_when_the_model_learns_bioes(tmp_path):
    path = write_jsonl(
        tmp_path / "c.jsonl", [{"tokens": list("在北京"), "tags": ["O", "B-LOC", "I-LOC"]}]
    )
    frame = TokenClassification(scheme="bioes").standardize(read_table(path))
    assert frame["tags"].iloc[0] == ["O", "B-LOC", "E-LOC"]


def test_raw_text_keeps_offsets_into_the_original_string():
    tokens, starts = pre_tokenize("我爱 New York！")
    assert tokens == ["我", "爱", "New", "York", "！"]
    assert starts == [0, 1, 3, 7, 11]
    text, starts = join_tokens(["北", "京", "is", "big", "。"])
    assert text == "北京 is big 。" and starts == [0, 1, 3, 6, 10]


# -- windows ---------------------------------------------------------------------------------


def test_windows_cover_every_subtoken_end_on_word_boundaries_and_overlap():
    word_ids = [w for w in range(20) for _ in range(2)]  # 20 words of two sub-tokens
    bounds = window_bounds(word_ids, budget=10, stride=4)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(word_ids)
    for (_, e1), (s2, _) in itertools.pairwise(bounds):
        assert s2 < e1  # overlap, nothing skipped
        assert e1 % 2 == 0 and s2 % 2 == 0  # cut between words
    assert all(e - s <= 10 for s, e in bounds)


def test_one_word_longer_than_the_window_is_cut_not_lost():
    bounds = window_bounds([0] * 25, budget=10, stride=2)
    assert bounds[-1][1] == 25


def test_merge_takes_each_word_from_the_window_where_it_is_most_central():
    # row of 6 words, windows [0, 4) and [2, 6); each window's logits say which window it is
    windows = [Window(0, 0, 4), Window(0, 2, 6)]
    word_ids = [[None, 0, 1, 2, 3, None], [None, 0, 1, 2, 3, None]]
    logits = [np.full((6, 2), 1.0), np.full((6, 2), 2.0)]
    merged = merge_windows(windows, word_ids, [6], logits)[0]
    # words 2 and 3 sit in both windows: 2 is one word from the first window's edge but on
    # the second's edge, 3 the other way round
    assert merged[:, 0].tolist() == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]


def test_long_texts_are_predicted_whole_through_windows(tiny_bert, tmp_path):
    import tunelab

    train = write_jsonl(tmp_path / "train.jsonl", make_entities(200))
    config = tiny_run_config(tiny_bert, train, tmp_path / "run")
    config["task"] = "token-classification"
    config["model"]["max_length"] = 12
    result = tunelab.train(config)
    long_text = "我们张三在北京买了东西" * 8  # 88 characters, a dozen windows
    (record,) = tunelab.predict(result["model_dir"], texts=[long_text])
    assert len(record["tags"]) == len(long_text)
    for entity in record["entities"]:
        assert long_text[entity["start"] : entity["end"]] == entity["text"]
    assert sum(e["label"] == "LOC" for e in record["entities"]) >= 6


# -- end to end ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape", ["conll", "conll-txt", "bmes", "conllu", "jsonl-tokens", "jsonl-spans"]
)
def test_train_each_input_format_end_to_end(tiny_bert, tmp_path, shape):
    import tunelab

    rows, test_rows = make_entities(240), make_entities(40, seed=1)
    if shape in ("conll", "conll-txt"):  # MSRA NER ships its CoNLL as dh_msra.txt
        suffix = ".txt" if shape == "conll-txt" else ".conll"
        train, test = (
            write_conll(tmp_path / f"train{suffix}", rows),
            write_conll(tmp_path / f"test{suffix}", test_rows),
        )
    elif shape == "bmes":  # ResumeNER's train.char.bmes: entities as B-/M-/E-/S- tags
        rows, test_rows = (
            [{**row, "tags": convert_tags(row["tags"], "bio", "bmeso")} for row in part]
            for part in (rows, test_rows)
        )
        train = write_conll(tmp_path / "train.char.bmes", rows)
        test = write_conll(tmp_path / "test.char.bmes", test_rows)
    elif shape == "conllu":
        train = write_conllu(tmp_path / "train.conllu", rows)
        test = write_conllu(tmp_path / "test.conllu", test_rows)
    elif shape == "jsonl-tokens":
        train, test = (
            write_jsonl(tmp_path / "train.jsonl", rows),
            write_jsonl(tmp_path / "test.jsonl", test_rows),
        )
    else:
        train = write_jsonl(tmp_path / "train.jsonl", [as_spans(r) for r in rows])
        test = write_jsonl(tmp_path / "test.jsonl", [as_spans(r) for r in test_rows])
    config = tiny_run_config(tiny_bert, train, tmp_path / "run")
    config["task"] = "token-classification"
    config["data"]["test"] = str(test)
    result = tunelab.train(config)
    test_metrics = result["metrics"]["test"]
    assert set(test_metrics["per_type"]) == {"PER", "LOC"}
    assert test_metrics["f1"] > 0.8  # names and places from a closed list: learnable
    baseline = result["metrics"]["baseline"]  # and remembered from the training rows alone
    assert baseline["method"].startswith("tags remembered") and baseline["test"]["f1"] > 0.9
    records = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").open()]
    assert len(records) == 40
    for record in records:
        for entity in record["entities"]:
            assert record["text"][entity["start"] : entity["end"]] == entity["text"]
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert report["doctor"]["tagging"]["train"]["entities"].keys() == {"PER", "LOC"}


def test_saved_model_agrees_with_the_transformers_pipeline(tiny_bert, tmp_path):
    from transformers import pipeline

    import tunelab

    train = write_jsonl(tmp_path / "train.jsonl", make_entities(240))
    config = tiny_run_config(tiny_bert, train, tmp_path / "run")
    config["task"] = "token-classification"
    model_dir = tunelab.train(config)["model_dir"]
    texts = ["我们张三在北京买了东西", "上海的王芳觉得还是广州好", "这个东西"]
    ours = tunelab.predict(model_dir, texts=texts)
    tagger = pipeline("token-classification", model=model_dir, aggregation_strategy="simple")
    for text, record in zip(texts, ours, strict=True):
        theirs = tagger(text)
        assert [(e["entity_group"], e["start"], e["end"]) for e in theirs] == [
            (e["label"], e["start"], e["end"]) for e in record["entities"]
        ]
        for a, b in zip(theirs, record["entities"], strict=True):
            assert float(a["score"]) == pytest.approx(b["score"], abs=1e-4)


def test_evaluate_scores_a_saved_tagger_on_a_new_file(tiny_bert, tmp_path):
    import tunelab

    train = write_jsonl(tmp_path / "train.jsonl", make_entities(200))
    config = tiny_run_config(tiny_bert, train, tmp_path / "run")
    config["task"] = "token-classification"
    model_dir = tunelab.train(config)["model_dir"]
    other = write_conll(tmp_path / "other.conll", make_entities(30, seed=5))
    scores = tunelab.evaluate(model_dir, other, output=tmp_path / "eval")
    assert {"f1", "precision", "recall", "per_type", "confusion"} <= set(scores)
    assert (tmp_path / "eval" / "predictions.jsonl").is_file()


def test_segmentation_and_plain_tags_pick_their_own_metric(tmp_path):
    task = TokenClassification()
    frame = pd.DataFrame({"tokens": [list("我爱北京")], "tags": [["S", "S", "B", "E"]]})
    task.standardize(frame)
    assert task.scheme == "bmes" and task.main_metric == "word_f1"
    pos = TokenClassification()
    pos.standardize(pd.DataFrame({"tokens": [["我", "爱"]], "tags": [["r", "v"]]}))
    assert pos.scheme == "plain" and pos.main_metric == "accuracy"


def test_doctor_reports_broken_sequences_and_fix_repairs_them(tmp_path):
    from tunelab.api import doctor_tagging

    rows = [{"tokens": list("张三在北京"), "tags": ["B-PER", "I-PER", "O", "I-LOC", "I-LOC"]}] * 2
    data = write_conll(tmp_path / "train.conll", rows)
    text = doctor_tagging(data, report=tmp_path / "report.json", fixed=tmp_path / "fixed.conll")
    assert "2 rows with broken tag sequences" in text
    assert "1 of 2 rows written" in text  # the duplicate is dropped
    fixed = read_table(tmp_path / "fixed.conll")
    assert fixed["tags"].tolist() == [["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["tagging"]["train"]["entities"] == {"PER": 2, "LOC": 2}


CLUENER_ROWS = [
    {"text": "浙商银行企业信贷部叶老桂博士", "label": {"name": {"叶老桂": [[9, 11]]},
                                             "company": {"浙商银行": [[0, 3]]}}},
    # a book title naming a company: nested entities, which flat tags cannot both hold
    {"text": "刊发了《招商银行浮亏》的文章", "label": {"book": {"《招商银行浮亏》": [[3, 10]]},
                                               "company": {"招商银行": [[4, 7]]}}},
    {"text": "今天天气很好", "label": {}},
]  # fmt: skip


def test_cluener_entity_spans_by_type_are_read_and_recognised(tmp_path, caplog):
    import logging

    from tunelab.config import build_config
    from tunelab.training.guesses import guess_from_data

    path = write_jsonl(tmp_path / "train.jsonl", CLUENER_ROWS * 10)
    task = TokenClassification(spans_column="label")
    with caplog.at_level(logging.WARNING, logger="tunelab"):
        frame = task.standardize(read_table(path))
    assert frame["tags"].iloc[0] == ["B-company", "I-company", "I-company", "I-company",
                                   "O", "O", "O", "O", "O", "B-name", "I-name", "I-name",
                                   "O", "O"]  # fmt: skip
    # the outer span kept, the company inside the title left out, and said with the rows
    assert frame["tags"].iloc[1][3:11] == ["B-book", *["I-book"] * 7]
    assert frame.attrs["nested_spans"] == 10
    assert "10 span(s) inside a longer one left out, the outer kept" in caplog.text
    assert frame["tags"].iloc[2] == ["O"] * 6  # {}: a row without entities
    (line,) = task.doctor_lines(task.diagnose({"train": frame}, False, 0))
    assert line.endswith("; 10 spans inside a longer one left out"), line
    once = task.standardize(read_table(write_jsonl(tmp_path / "once.jsonl", CLUENER_ROWS)))
    (line,) = task.doctor_lines(task.diagnose({"train": once}, False, 0))
    assert line.endswith("; 1 span inside a longer one left out"), line
    # the doctor finds the column as train does
    from tunelab.api import doctor_tagging

    text = doctor_tagging(path, report=tmp_path / "report.json")
    assert "10 company, 10 name, 10 book; 10 spans inside a longer one left out" in text, text
    # plain train guesses the task and the column, and says so
    config = build_config({"data": {"train": str(path)}})
    with caplog.at_level(logging.INFO, logger="tunelab"):
        guess_from_data(config)
    assert config.task == "token-classification" and config.data.spans_column == "label"
    assert "CLUENER's entity spans by type" in caplog.text
    # the model choice shapes a sample of the rows to read their language: silently, since
    # the data stage warns of every row (two warnings, with different counts, read as two)
    from tunelab.training.finetune import _choose_model

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tunelab"):
        _choose_model(config, TokenClassification(spans_column="label"), read_table(path))
    assert "model.name auto: zh-bert-mini" in caplog.text
    assert "inside a longer one" not in caplog.text
    # offsets that do not name their entity's characters stop with the row and the rule
    # (an end counted exclusive, as other tools write it, shifts onto the next character)
    wrong = [{"text": "在浙商银行上班", "label": {"company": {"浙商银行": [[1, 5]]}}}]
    with pytest.raises(
        UserError,
        match=r"row 1: entity '浙商银行' \(company\) at 1-5 does not match the text there "
        r"\('浙商银行上'\); CLUENER offsets count characters from 0 with the end inclusive",
    ):
        task.standardize(read_table(write_jsonl(tmp_path / "wrong.jsonl", wrong)))


def test_span_over_whitespace_only_is_rejected(tmp_path):
    rows = [{"text": "北京  上海", "spans": [[2, 4, "LOC"]]}]
    with pytest.raises(UserError, match=r"row 1: span 2-4 covers only whitespace"):
        TokenClassification().standardize(read_table(write_jsonl(tmp_path / "w.jsonl", rows)))


def test_the_doctor_line_counts_a_corpus_in_readable_numbers():
    report = {"tagging": {"train": {
        "tokens": 1_466_957, "entities": {"LOC": 22_270, "PER": 15_937},
        "broken_sequences": {"rows": 0, "first_rows": []}, "misaligned_spans": 0,
    }}}  # fmt: skip
    (line,) = TokenClassification().doctor_lines(report)
    assert line == "data doctor: train: 1,466,957 tokens; 22,270 LOC, 15,937 PER"
    # part of speech has no entities: its tags are counted instead, the most frequent first
    task = TokenClassification()
    pos = {"tokens": ["施力", "的", "大小", "不同"], "tags": ["VERB", "SCONJ", "NOUN", "ADJ"]}
    noun = {"tokens": ["加速", "度"], "tags": ["NOUN", "NOUN"]}
    frames = {"train": task.standardize(pd.DataFrame([pos, noun]))}
    (line,) = task.doctor_lines(task.diagnose(frames, False, 0))
    assert line.endswith("; 6 tokens; 4 tags, the most frequent NOUN 3, VERB 1, SCONJ 1"), line


def test_the_doctor_lines_name_duplicates_and_leakage_and_cleaning_says_what_it_dropped(caplog):
    """The plain command printed only token and entity counts, then trained on fewer rows
    than the file held without a word on why."""
    import logging

    task = TokenClassification()
    sentence = {"tokens": list("张三在北京"), "tags": ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]}
    other = {"tokens": list("李四去上海"), "tags": ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]}
    frames = {
        "train": task.standardize(pd.DataFrame([sentence, sentence, other])),
        "test": task.standardize(pd.DataFrame([other])),
    }
    lines = task.doctor_lines(task.diagnose(frames, False, 0))
    said = "data doctor: train: 3 rows, 1 exact / 1 near duplicates; 15 tokens; 3 PER, 3 LOC"
    assert lines[0] == said
    assert "data doctor: 1 test text also occurs in train (leakage)" in lines
    with caplog.at_level(logging.WARNING, logger="tunelab"):
        kept, steps = task.clean(frames["train"], _Cleaning(), is_training=True)
    assert len(kept) == 2 and steps == {"duplicates": 1}
    assert "dropped 1 duplicate row(s)" in caplog.text


class _Cleaning:
    drop_duplicates = True


def test_prediction_says_windows_when_long_rows_were_cut(tiny_bert, caplog):
    import logging

    from transformers import AutoModelForTokenClassification, AutoTokenizer

    task = TokenClassification()
    frame = task.standardize(pd.DataFrame(make_entities(80)))
    model = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=5)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    with caplog.at_level(logging.INFO, logger="tunelab"):
        whole = task.forward(model, tokenizer, frame, 64, 16, "checked")
        cut = task.forward(model, tokenizer, frame, 6, 16, "checked")
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("prediction")]
    # checked in bf16 or, where most rows are close calls, fp32 alone: either line says what
    assert " 80 rows" in said[0] and "windows" not in said[0]
    assert " 337 windows of 6 tokens" in said[1]
    assert [len(words) for words in cut] == [len(words) for words in whole]
