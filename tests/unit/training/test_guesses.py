"""The task and columns a config leaves unset are read from the training file: said in one log
line and in data_report.json, and two equally plausible columns stop the run naming both."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import make_colour_images, make_entities, make_reviews
from tunelab.config import RunConfig, as_config, build_config, given_keys
from tunelab.errors import UserError
from tunelab.training.guesses import guess_from_data


def _guess(tmp_path: Path, frame: pd.DataFrame, name: str = "d.csv", **data: str):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    config = build_config({"data": {"train": str(path), **data}})
    return config, guess_from_data(config)


def _reviews_with_unusual_names(n: int = 60) -> pd.DataFrame:
    frame = make_reviews(n).rename(columns={"text": "Kommentar", "label": "Ergebnis"})
    frame.insert(0, "Nr.", range(1, n + 1))  # unique numbers: an id, neither text nor label
    return frame


def test_unusual_column_names_are_guessed_from_contents_and_logged(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="tunelab"):
        config, guesses = _guess(tmp_path, _reviews_with_unusual_names())
    assert (config.task, config.data.text_column, config.data.label_column) == (
        "text-classification", "Kommentar", "Ergebnis",
    )  # fmt: skip
    report = guesses.as_report()
    assert report["file"].endswith("d.csv")
    assert [(k["key"], k["value"], k["flag"]) for k in report["keys"]] == [
        ("task", "text-classification", "--task"),
        ("data.text_column", "Kommentar", "--text-column"),
        ("data.label_column", "Ergebnis", "--label-column"),
    ]
    assert "2 values in 60 rows" in report["keys"][2]["evidence"]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("guessed")]
    assert len(lines) == 1
    assert "text column 'Kommentar'" in lines[0] and "--text-column overrides" in lines[0]
    assert "label column 'Ergebnis'" in lines[0] and "--label-column overrides" in lines[0]


def test_a_file_sorted_by_its_labels_is_read_over_all_its_rows(tmp_path):
    # every positive review, then every negative one, as files joined from pos.csv and neg.csv
    # are: the first 2,000 cells of the label column hold one value, no label set
    frame = pd.DataFrame(
        [(f"这家店的菜品{i}号很好吃", "好评") for i in range(3000)]
        + [(f"送餐太慢了{i}，菜都凉了", "差评") for i in range(3000)],
        columns=["评论", "结果"],
    )
    config, guesses = _guess(tmp_path, frame)
    assert (config.data.text_column, config.data.label_column) == ("评论", "结果")
    evidence = {k["key"]: k["evidence"] for k in guesses.decided}["data.label_column"]
    assert evidence.endswith("2 values in 2000 of its 6000 rows")


def test_texts_without_labels_stop_with_what_was_found_not_a_default_column_name(tmp_path):
    # the data stage said "has no column 'text' (set by data.text_column)": a column nobody
    # set, of a file whose text column is plain to see
    frame = pd.DataFrame(
        [(f"这家店的菜品{i}号很好吃", "好评") for i in range(30)]
        + [(f"送餐太慢了{i}，菜都凉了", "差评") for i in range(30)],
        columns=["评论", "结果"],
    )
    with pytest.raises(UserError) as refused:
        _guess(tmp_path, frame.head(30))
    assert str(refused.value) == (
        f"{tmp_path / 'd.csv'} has no column that reads as labels (its columns are: 评论, 结果; "
        "'结果' holds one value, '好评', in every row); name it with --label-column, or name "
        "the task with --task"
    )
    # the whole file is labelled, but data.max_rows cut it where its labels are sorted
    with pytest.raises(
        UserError,
        match=r"in every row of the first 30 \(data.max_rows reads "
        r"a file's first rows.*data.train_rows draws a stratified sample\)",
    ):
        _guess(tmp_path, frame, max_rows="30")


def test_the_usual_names_win_and_are_still_said(tmp_path):
    frame = make_reviews(40).assign(notes=["a much longer remark than any review " * 3] * 40)
    config, guesses = _guess(tmp_path, frame)
    assert (config.data.text_column, config.data.label_column) == ("text", "label")
    evidence = {k["key"]: k["evidence"] for k in guesses.decided}
    assert evidence["data.text_column"] == "its name"
    assert evidence["data.label_column"] == "its name"  # no other column could be the label
    # a second column of a few repeated values (online_shopping_10_cats' product category
    # beside its sentiment 'label') is named, as the label the user may have meant instead
    frame["cat"] = ["书籍", "平板", "手机", "水果"] * 10
    config, guesses = _guess(tmp_path, frame)
    assert config.data.label_column == "label"
    evidence = {k["key"]: k["evidence"] for k in guesses.decided}["data.label_column"]
    assert evidence == "its name; 'cat' (4 values) could be the label as well"


def test_a_name_that_says_text_or_label_beats_contents(tmp_path):
    frame = make_reviews(40).rename(columns={"text": "Customer Comment", "label": "Sentiment"})
    frame["Shop"] = ["north", "south", "east", "west"] * 10  # repeated values, but no label name
    config, _ = _guess(tmp_path, frame)
    assert (config.data.text_column, config.data.label_column) == ("Customer Comment", "Sentiment")


def test_two_equally_plausible_text_columns_stop_with_both_names_and_the_flag(tmp_path):
    frame = make_reviews(40).rename(columns={"text": "a", "label": "b"})
    frame["c"] = make_reviews(40, seed=1)["text"]
    tie = r"could equally be the text column, '[ac]' \(\d+ characters on average\) and '[ac]' "
    with pytest.raises(UserError, match=tie + r".*; name it with --text-column"):
        _guess(tmp_path, frame)


def test_two_label_columns_stop_with_both_names_and_the_flag(tmp_path):
    frame = _reviews_with_unusual_names(40)
    frame["Filiale"] = ["Nord", "Süd", "Ost", "West"] * 10
    with pytest.raises(
        UserError, match=r"'Ergebnis' \(2 values\) and 'Filiale' \(4 values\); name it with "
        "--label-column",
    ):  # fmt: skip
        _guess(tmp_path, frame)


def test_what_the_user_set_is_kept_and_the_rest_is_guessed(tmp_path):
    frame = _reviews_with_unusual_names(40)
    frame["Filiale"] = ["Nord", "Süd", "Ost", "West"] * 10
    config, guesses = _guess(tmp_path, frame, label_column="Ergebnis")  # no tie left
    assert config.data.text_column == "Kommentar"
    assert [k["key"] for k in guesses.decided] == ["task", "data.text_column"]
    config, guesses = _guess(tmp_path, frame, text_column="missing", label_column="Filiale")
    assert config.data.text_column == "missing"  # the data stage names it as missing


def test_nothing_is_guessed_when_the_config_names_it_all(tmp_path):
    path = tmp_path / "d.csv"
    _reviews_with_unusual_names(20).to_csv(path, index=False)
    raw = {"task": "text-classification", "data": {"train": str(path), "text_column": "Kommentar",
           "label_column": "Ergebnis"}}  # fmt: skip
    assert guess_from_data(build_config(raw)).decided == []


def test_the_task_follows_the_shape_of_the_data(tmp_path):
    conll = tmp_path / "ner.conll"
    conll.write_text(
        "\n\n".join("\n".join(f"{t} {g}" for t, g in zip(r["tokens"], r["tags"], strict=True))
                    for r in make_entities(20)), encoding="utf-8",
    )  # fmt: skip
    config = build_config({"data": {"train": str(conll)}})
    guess_from_data(config)
    assert config.task == "token-classification"
    pairs = pd.DataFrame({"prompt": ["hi"] * 4, "completion": ["hello"] * 4})
    assert _guess(tmp_path, pairs, "chat.csv")[0].task == "causal-lm"
    pairs = pd.DataFrame({"source": ["red cat"] * 4, "target": ["红"] * 4})
    assert _guess(tmp_path, pairs, "pairs.csv")[0].task == "seq2seq"


def test_image_folders_and_search_pairs_are_recognised(tmp_path):
    folder = make_colour_images(tmp_path / "colours", per_class=2)
    config = build_config({"data": {"train": str(folder)}})
    guess_from_data(config)
    assert config.task == "image-classification"
    pairs = pd.DataFrame({"query": ["ls list", "cp copy"] * 3, "document": ["a", "b"] * 3})
    assert _guess(tmp_path, pairs, "search.csv")[0].task == "sentence-embedding"


def test_a_sentence_pair_with_word_labels_is_pair_classification_with_numbers_similarity(
    tmp_path,
):
    texts = {"Premise": ["a man sleeps", "kids play", "it rains"] * 4,
             "Hypothesis": ["someone rests", "nobody plays", "it is wet"] * 4}  # fmt: skip
    labels = ["entailment", "contradiction", "entailment"] * 4
    config, _ = _guess(tmp_path, pd.DataFrame({**texts, "label": labels}), "nli.csv")
    assert (config.task, config.data.text_column, config.data.text_pair_column) == (
        "text-classification", "Premise", "Hypothesis",
    )  # fmt: skip
    assert config.data.label_column == "label"
    config, _ = _guess(tmp_path, pd.DataFrame({**texts, "gold": labels}), "nli.csv",
                       label_column="gold")  # fmt: skip
    assert config.data.text_pair_column == "Hypothesis"  # a named label keeps the pair guess
    scored = pd.DataFrame({"sentence1": texts["Premise"], "sentence2": texts["Hypothesis"],
                           "score": [round(0.41 * i, 2) for i in range(12)]})  # fmt: skip
    config, _ = _guess(tmp_path, scored, "sts.csv")
    assert config.task == "sentence-embedding"  # similarities, not classes: no label column
    both = scored.rename(columns={"score": "label"}).assign(label=[1, 0, 1] * 4)
    with pytest.raises(UserError, match=r"fits the task text-classification .* as well as "
                       r"sentence-embedding"):  # fmt: skip
        _guess(tmp_path, both, "mrpc.csv")  # 0/1: classes or similarities, the user says
    # SICK's shape: a relatedness score and an entailment label beside the pair; naming the
    # label column (a classifier's flag) settles the task
    sick = scored.rename(columns={"score": "relatedness_score"}).assign(
        entailment_judgment=[label.upper() for label in labels]
    )
    config, _ = _guess(tmp_path, sick, "sick.csv", label_column="entailment_judgment")
    assert (config.task, config.data.text_pair_column) == ("text-classification", "sentence2")


def test_labels_joined_by_a_separator_are_read_as_multi_label(tmp_path):
    texts = [f"review number {i}" for i in range(40)]
    topics = ["price", "delivery|price", "quality", "price|quality", "delivery"] * 8
    config, _ = _guess(tmp_path, pd.DataFrame({"text": texts, "topics": topics}), "m.csv")
    assert (config.data.label_column, config.data.label_separator) == ("topics", "|")
    config, _ = _guess(tmp_path, pd.DataFrame({"text": texts, "topics": topics}), "m.csv",
                       label_separator=";")  # fmt: skip
    assert config.data.label_separator == ";"  # what the user says stays
    # a place with a comma is one label: its parts never stand alone
    places = ["New York, NY", "Austin, TX", "Paris", "Boston, MA", "Lyon"] * 8
    config, _ = _guess(tmp_path, pd.DataFrame({"text": texts, "label": places}), "p.csv")
    assert config.data.label_separator is None


def test_two_tasks_that_fit_equally_stop_naming_both_and_the_flag(tmp_path):
    pairs = pd.DataFrame({"source": ["a"] * 4, "target": ["b"] * 4, "messages": [None] * 4})
    pairs["prompt"], pairs["completion"] = "p", "c"  # seq2seq's shape and causal-lm's at once
    with pytest.raises(UserError, match=r"fits the task seq2seq \('source'/'target' columns\) "
                       r"as well as causal-lm \('prompt'/'completion' columns\); name the task "
                       "with --task"):  # fmt: skip
        _guess(tmp_path, pairs, "both.csv")


def test_a_table_no_task_reads_keeps_the_defaults_for_the_usual_error(tmp_path):
    config, guesses = _guess(tmp_path, pd.DataFrame({"id": [1, 2, 3], "x": ["1", "2", "3"]}))
    assert (config.task, config.data.text_column, guesses.decided) == (
        "text-classification", "text", []
    )  # fmt: skip


def test_given_keys_survive_overrides_on_a_config_object(tmp_path):
    config = build_config({"data": {"train": "x.csv"}}, ["data.text_column=review"])
    assert given_keys(config) == {"data.train", "data.text_column"}
    assert given_keys(as_config(config, ["seed=3"])) == {"data.train", "data.text_column", "seed"}
    assert given_keys(as_config(RunConfig(), ["training.epochs=1"])) == {"training.epochs"}


def test_ambiguity_through_the_cli_is_one_line_exit_2_and_nothing_written(
    tmp_path, monkeypatch, capsys
):
    from tests.unit.data.test_bad_inputs import assert_one_line_error, run_cli

    path = tmp_path / "amb.csv"
    frame = _reviews_with_unusual_names(40)
    frame["Filiale"] = ["Nord", "Süd", "Ost", "West"] * 10
    frame.to_csv(path, index=False)
    out = tmp_path / "runs" / "x"
    code, err = run_cli(["train", "--data", str(path), "--output", str(out)], monkeypatch, capsys)
    assert code == 2
    assert_one_line_error(err, r"'Ergebnis' \(2 values\) and 'Filiale' .*--label-column")
    assert not (tmp_path / "runs").exists()
