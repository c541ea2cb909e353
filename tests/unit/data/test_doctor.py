"""The doctor finds problems planted in generated data."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_reviews
from tunelab.data.doctor import diagnose, format_report
from tunelab.data.fix import doctor_files
from tunelab.data.load import read_table

FULL_WIDTH = str.maketrans(
    "0123456789abcdefghijklmnopqrstuvwxyz,!",
    "０１２３４５６７８９ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ，！",
)


def planted(tmp_path):
    """Train/test files with known duplicates, flips, leaks, damage; returns what was planted."""
    rng = np.random.default_rng(0)
    train = make_reviews(1000, seed=1)
    train["text"] = [f"{t}{i}号" for i, t in enumerate(train["text"])]  # all distinct
    train.index = range(1, len(train) + 1)
    flipped = sorted(rng.choice(train.index, size=50, replace=False).tolist())
    train.loc[flipped, "label"] = train.loc[flipped, "label"].map(
        {"positive": "negative", "negative": "positive"}
    )
    twins = [t.translate(FULL_WIDTH) + "ＯＫ！" for t in train["text"][:20]]
    width_twins = pd.DataFrame({"text": twins, "label": train["label"][:20]})
    originals = pd.DataFrame({"text": [t + "OK!" for t in train["text"][:20]],
                              "label": train["label"][:20]})  # fmt: skip
    damaged = pd.DataFrame({
        "text": ["质量很好".encode().decode("latin-1"), "看 <b>这里</b>&amp;", "联系13812345678",
                 "访问 https://example.com 吧", "坏\ufffd字", "控制\x07符"],
        "label": ["positive"] * 6,
    })  # fmt: skip
    full = pd.concat([train, originals, width_twins, damaged], ignore_index=True)
    full.to_csv(tmp_path / "train.csv", index=False)
    test = make_reviews(100, seed=2)
    test["text"] = [f"{t}测{i}" for i, t in enumerate(test["text"])]
    test = pd.concat([test, full.iloc[100:110]], ignore_index=True)  # 10 leaked texts
    test.to_csv(tmp_path / "test.csv", index=False)
    return {"flipped": flipped}


def test_planted_problems_are_found(tmp_path):
    truth = planted(tmp_path)
    frames = {
        "train": read_table(tmp_path / "train.csv"),
        "test": read_table(tmp_path / "test.csv"),
    }
    report = diagnose(frames, "text", "label")
    train = report["splits"]["train"]
    assert train["duplicates"]["near_duplicates"] == 20  # the full-width twins
    assert train["duplicates"]["exact_duplicates"] == 0
    problems = train["text_problems"]
    assert problems["mojibake"]["rows"] == 1
    assert problems["html_markup"]["rows"] == 1
    assert problems["phone_numbers"]["rows"] == 1
    assert problems["urls"]["rows"] == 1
    assert problems["replacement_characters"]["rows"] == 1
    assert (
        problems["control_characters"]["rows"] == 2
    )  # the planted one and the mojibake's C1 bytes
    assert report["leakage"]["test_in_train"]["exact"] == 10
    found = set(report["label_errors"]["rows"])
    hits = found & set(truth["flipped"])
    precision, recall = len(hits) / max(len(found), 1), len(hits) / len(truth["flipped"])
    assert precision >= 0.7 and recall >= 0.5, (precision, recall)
    assert "suspected label errors in train" in format_report(report)


def test_leaked_texts_labelled_otherwise_are_counted_and_shown(tmp_path):
    """A test text also in train under another label means the splits disagree on what the
    label is; the doctor counts those rows apart from plain leakage."""
    train = pd.DataFrame({"text": ["好极了", "太差了", "一般般", "还不错"],
                          "label": ["pos", "neg", "neg", "pos"]})  # fmt: skip
    test = pd.DataFrame({"text": ["好极了", "太差了！", "一般般", "新的话"],
                         "label": ["pos", "pos", "pos", "neg"]})  # fmt: skip
    report = diagnose({"train": train, "test": test}, "text", "label")
    leak = report["leakage"]["test_in_train"]
    assert leak["near"] == 3  # the exclamation mark does not hide a leak
    assert leak["other_label"] == 2
    assert [e["row"] for e in leak["other_label_examples"]] == [1, 2]
    assert leak["other_label_examples"][0]["labels_there"] == ["neg"]
    text = format_report(report)
    assert "2 of them labelled otherwise in train" in text
    assert "'pos' here, 'neg' in train" in text
    from tunelab.data.doctor import leakage_lines

    assert "2 of them with another label there" in leakage_lines(report)[0]


def test_set_membership_matches_pandas_isin():
    from tunelab.data.duplicates import in_set

    values = pd.Series(["a", "b", "", "c", "a"], index=[3, 5, 7, 9, 11])
    known = {"a", "", "z"}
    found = in_set(values, known)
    assert found.equals(values.isin(known))
    assert list(found.index) == [3, 5, 7, 9, 11] and found.dtype == bool


def test_conflicting_labels_are_counted(tmp_path):
    frame = pd.DataFrame(
        {"text": ["好的！", "好的", "一般", "很差"], "label": ["pos", "neg", "pos", "neg"]}
    )
    frame.index = range(1, 5)
    frame.attrs["source"] = "x.csv"
    report = diagnose({"train": frame}, "text", "label", find_label_errors=False)
    conflicts = report["splits"]["train"]["conflicts"]
    assert conflicts["conflicting_texts"] == 1 and conflicts["rows"] == [1, 2]


def test_gbk_file_and_unparsable_lines_are_reported(tmp_path):
    rows = "".join(f"这个东西很好用{i},positive\n这个东西太差了{i},negative\n" for i in range(10))
    (tmp_path / "gbk.csv").write_bytes(("text,label\n" + rows + "坏,行,多,列\n").encode("gbk"))
    report = diagnose(
        {"train": read_table(tmp_path / "gbk.csv", skip_bad_lines=True)}, "text", "label"
    )
    assert report["splits"]["train"]["rows"] == 20
    assert report["splits"]["train"]["unparsable_lines"] == [22]


def test_fix_writes_clean_data_and_a_review_file(tmp_path):
    planted(tmp_path)
    files = {"train": tmp_path / "train.csv"}
    text = doctor_files(
        files, "text", "label", report_path=tmp_path / "r.json", fixed_path=tmp_path / "clean.csv"
    )
    clean = pd.read_csv(tmp_path / "clean.csv")
    assert len(clean) < 1046 and "cleaned data" in text
    review = pd.read_csv(tmp_path / "clean.label_errors.csv")
    assert {"row", "given", "suggested", "text"} <= set(review.columns)
    assert json.loads((tmp_path / "r.json").read_text())["fix"]["rows_after"] == len(clean)


@pytest.mark.parametrize("drop", [False, True])
def test_train_cleans_before_splitting(tmp_path, tiny_bert, drop):
    import tunelab
    from tests.conftest import tiny_run_config

    planted(tmp_path)
    config = tiny_run_config(tiny_bert, tmp_path / "train.csv", tmp_path / "run",
                             training={"max_steps": 2})  # fmt: skip
    config["data"]["clean"] = {"drop_label_errors": drop}
    tunelab.train(config)
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    train_steps = report["cleaning"]["train"]
    assert train_steps["texts_changed"] >= 20  # NFKC folded the full-width twins
    assert train_steps["exact_duplicates"]["count"] == 20  # ... which then were duplicates
    assert ("label_errors" in train_steps) is drop


def test_label_errors_start_no_process_pool_beside_other_threads(monkeypatch):
    """cleanlab forks a pool by default; forked from a threaded server (the workbench's), the
    children could hang on a copied lock and the doctor never answer."""
    import multiprocessing
    import threading

    from tunelab.data.label_noise import suspected_label_errors

    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool forked beside other threads")

    monkeypatch.setattr(multiprocessing, "Pool", no_pool)
    frame = make_reviews(200)
    frame.loc[:9, "label"] = frame.loc[:9, "label"].map({"positive": "negative",
                                                         "negative": "positive"})  # fmt: skip
    found: dict = {}
    worker = threading.Thread(
        target=lambda: found.update(errors=suspected_label_errors(frame["text"], frame["label"]))
    )
    worker.start()
    worker.join()
    assert len(found["errors"]) > 0


def test_the_summary_line_counts_in_readable_numbers():
    from tunelab.data.doctor import doctor_summary

    split = {"rows": 35_123, "duplicates": {"exact_duplicates": 17_539, "near_duplicates": 17_602},
             "conflicts": {"conflicting_texts": 1_052}}  # fmt: skip
    assert doctor_summary({"splits": {"train": split}}) == [
        "data doctor: train: 35,123 rows, 17,539 exact / 17,602 near duplicates, "
        "1,052 texts with conflicting labels"
    ]


def _frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    frame.index = range(1, len(frame) + 1)
    return frame


def test_pairs_are_judged_on_both_texts():
    columns = ["premise", "hypothesis", "label"]
    train = _frame([
        ("a man plays guitar", "a man makes music", "entailment"),
        ("a man plays guitar", "a man sleeps", "contradiction"),  # same premise: no duplicate
        ("a man plays guitar", "a man is outdoors", "neutral"),
        ("two dogs run", "animals move", "entailment"),
        ("two dogs run", "animals move", "neutral"),  # the same pair, another label: a conflict
    ], columns)  # fmt: skip
    test = _frame([("a man plays guitar", "a woman sings", "neutral"),
                   ("Two dogs run!", "animals move", "entailment")], columns)  # fmt: skip
    report = diagnose({"train": train, "test": test}, "premise", "label",
                      text_pair_column="hypothesis")  # fmt: skip
    section = report["splits"]["train"]
    assert section["duplicates"]["exact_duplicates"] == 1  # rows 4 and 5 only
    assert section["conflicts"]["rows"] == [4, 5]
    assert section["lengths"]["pair_characters"]["max"] == len("a man is outdoors")
    # the test pair that shares only its premise with train is no leak; the other is
    assert report["leakage"]["test_in_train"]["near"] == 1
    assert report["leakage"]["test_in_train"]["examples"][0]["row"] == 2
    assert "a TF-IDF model of the texts cannot judge" in report["label_errors"]["skipped"]
    # read as single texts, the shared premise would be duplicates and conflicts
    alone = diagnose({"train": train}, "premise", "label", find_label_errors=False)
    assert alone["splits"]["train"]["duplicates"]["exact_duplicates"] == 3
    assert "second text" in format_report(report) and "second text" not in format_report(alone)


def test_several_labels_a_row_are_counted_per_label_and_compared_as_sets():
    train = _frame([
        ("cheap and fast", "price|delivery"),
        ("cheap and fast", "delivery|price"),  # the same set: no conflict
        ("slow delivery", "delivery"),
        ("broke at once", "quality"),
        ("broke at once", "quality|price"),  # another set: a conflict
    ], ["text", "topics"])  # fmt: skip
    report = diagnose({"train": train}, "text", "topics", label_separator="|")
    section = report["splits"]["train"]
    assert section["class_balance"]["counts"] == {"delivery": 3, "price": 3, "quality": 2}
    assert section["conflicts"]["rows"] == [4, 5]
    assert report["label_errors"] == {"skipped": "needs at least two labels and twenty rows"}


def test_numeric_scores_are_summarised_not_counted_as_classes():
    train = _frame([(f"review {i}", f"{i / 10:.2f}") for i in range(30)], ["text", "score"])
    report = diagnose({"train": train}, "text", "score")
    section = report["splits"]["train"]
    assert "class_balance" not in section
    assert section["target_values"]["min"] == 0.0 and section["target_values"]["max"] == 2.9
    assert "scores: min 0, median 1.45, max 2.9" in format_report(report)
    assert "numeric scores" in report["label_errors"]["skipped"]


def _keyword_label_sets(rows: int, seed: int) -> tuple[list[str], list[list[str]]]:
    """Texts whose words say their labels (one or two of four), and those labels."""
    rng = np.random.default_rng(seed)
    words = {
        "price": ["cheap", "expensive", "costly"],
        "delivery": ["late", "courier", "fast"],
        "quality": ["broke", "sturdy", "flimsy"],
        "service": ["rude", "helpful", "staff"],
    }
    texts, sets = [], []
    for i in range(rows):
        labels = sorted(rng.choice(list(words), rng.choice([1, 1, 2]), replace=False).tolist())
        said = " ".join(str(rng.choice(words[label])) for label in labels)
        texts.append(f"{said} order {i} {rng.choice(['ok', 'fine', 'hmm'])}")
        sets.append(labels)
    return texts, sets


def test_label_sets_that_contradict_their_texts_are_suspected():
    texts, sets = _keyword_label_sets(1500, seed=0)
    rng = np.random.default_rng(1)
    planted = sorted(rng.choice(len(sets), 45, replace=False).tolist())  # 3% of the rows
    for i in planted:  # one label swapped for one the text does not mention
        other = next(name for name in ("price", "delivery", "quality", "service")
                     if name not in sets[i])  # fmt: skip
        sets[i] = sorted([*sets[i][1:], other])
    train = _frame([(t, "|".join(s)) for t, s in zip(texts, sets, strict=True)], ["text", "topics"])
    errors = diagnose({"train": train}, "text", "topics", label_separator="|")["label_errors"]
    found = set(errors["rows"]) & {i + 1 for i in planted}
    assert len(found) >= 0.8 * len(planted)  # most planted errors are found ...
    assert errors["suspected"] <= 2 * len(planted)  # ... among few suspects
    assert "cleanlab (multi-label)" in errors["method"]


def test_label_sets_the_quick_model_cannot_tell_apart_are_not_blamed_on_rows():
    texts, sets = _keyword_label_sets(600, seed=2)
    rng = np.random.default_rng(3)
    shuffled = [sets[i] for i in rng.permutation(len(sets))]  # labels unrelated to the texts
    train = _frame([(t, "|".join(s)) for t, s in zip(texts, shuffled, strict=True)],
                   ["text", "topics"])  # fmt: skip
    errors = diagnose({"train": train}, "text", "topics", label_separator="|")["label_errors"]
    assert "too many to be label errors" in errors["skipped"]
    assert errors["disagreeing_share"] > 0.25 and "rows" not in errors
    assert len(errors["examples"]) == 10  # its top disagreements, to read


def _reviews_with_labels(labels: list[str]) -> pd.DataFrame:
    frame = make_reviews(len(labels), seed=4)
    frame["text"] = [f"{t}{i}号" for i, t in enumerate(frame["text"])]  # all distinct
    frame["label"] = labels
    frame.index = range(1, len(frame) + 1)
    return frame


def test_single_labels_unrelated_to_the_texts_single_out_no_row():
    # imbalanced like spam: the quick model disputes only ~15% of shuffled labels, which
    # alone would pass for label errors; its balanced accuracy shows it learned nothing
    rng = np.random.default_rng(5)
    labels = rng.permutation(["spam"] * 120 + ["ham"] * 680).tolist()
    errors = diagnose({"train": _reviews_with_labels(labels)}, "text", "label")["label_errors"]
    assert "no better than chance" in errors["skipped"], errors
    assert errors["balanced_accuracy"] <= errors["chance_level"] < 0.6
    assert "rows" not in errors


def test_labels_the_model_disputes_by_the_third_are_not_dropped(tmp_path):
    frame = make_reviews(800, seed=6)
    noisy = np.random.default_rng(7).random(len(frame)) < 0.35  # a third of the labels flipped
    flipped = frame["label"].map({"positive": "negative", "negative": "positive"})
    labels = frame["label"].where(~noisy, flipped).tolist()
    report = diagnose({"train": _reviews_with_labels(labels)}, "text", "label")
    errors = report["label_errors"]
    assert "too many to be label errors" in errors["skipped"], errors
    shown = format_report(report)  # the disagreements to read, though none is dropped
    assert f"row {errors['examples'][0]['row']}: given" in shown
    assert errors["disagreeing_share"] > 0.25 and errors["examples"] and "rows" not in errors
    assert errors["balanced_accuracy"] > errors["chance_level"]  # it did learn something
    _reviews_with_labels(labels).to_csv(tmp_path / "noisy.csv", index=False)
    doctor_files({"train": tmp_path / "noisy.csv"}, "text", "label",
                 report_path=tmp_path / "r.json", fixed_path=tmp_path / "clean.csv",
                 drop_label_errors=True)  # fmt: skip
    assert len(pd.read_csv(tmp_path / "clean.csv")) == 800  # nothing dropped
    assert not (tmp_path / "clean.label_errors.csv").exists()


def test_a_skilled_model_still_reports_its_suspects_with_its_skill(tmp_path):
    planted(tmp_path)
    errors = diagnose({"train": read_table(tmp_path / "train.csv")}, "text", "label")
    errors = errors["label_errors"]
    assert errors["balanced_accuracy"] > 0.8 > errors["chance_level"]
    assert 0 < errors["share"] <= 0.25 and errors["rows"]


def test_training_that_asks_to_drop_label_errors_says_why_it_dropped_none(
    tmp_path, tiny_bert, caplog
):
    import tunelab
    from tests.conftest import tiny_run_config

    rng = np.random.default_rng(8)
    labels = rng.permutation(["positive", "negative"] * 150).tolist()
    _reviews_with_labels(labels).to_csv(tmp_path / "shuffled.csv", index=False)
    config = tiny_run_config(tiny_bert, tmp_path / "shuffled.csv", tmp_path / "run",
                             training={"max_steps": 2})  # fmt: skip
    config["data"]["clean"] = {"drop_label_errors": True}
    with caplog.at_level("WARNING"):
        tunelab.train(config)
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert "label_errors" not in report["cleaning"]["train"]
    assert "drop_label_errors dropped no rows" in caplog.text
    assert "no better than chance" in caplog.text


def _model_probabilities(sets: list[list[str]], names: list[str], seed: int) -> pd.DataFrame:
    """What a good model of the label sets says: high for the labels a text says, low else."""
    rng = np.random.default_rng(seed)
    said = np.array([[name in labels for name in names] for labels in sets])
    scores = np.where(said, rng.uniform(0.8, 0.99, said.shape), rng.uniform(0.01, 0.2, said.shape))
    return pd.DataFrame(scores, columns=names, index=range(1, len(sets) + 1))


def test_a_given_models_per_label_probabilities_judge_label_sets():
    texts, sets = _keyword_label_sets(600, seed=4)
    names = ["delivery", "price", "quality", "service"]
    probabilities = _model_probabilities(sets, names, seed=5)[["service", *names[:3]]]  # any order
    planted = list(range(0, 600, 40))  # 15 rows lose their first label for one not said
    for i in planted:
        other = next(name for name in names if name not in sets[i])
        sets[i] = sorted([*sets[i][1:], other])
    train = _frame([(t, "|".join(s)) for t, s in zip(texts, sets, strict=True)], ["text", "topics"])
    errors = diagnose({"train": train}, "text", "topics", label_separator="|",
                      probabilities=probabilities)["label_errors"]  # fmt: skip
    assert errors["method"].startswith("the given model's per-label probabilities")
    assert {i + 1 for i in planted} <= set(errors["rows"]) and errors["suspected"] <= 30

    without_price = probabilities.drop(columns="price")
    unknown = diagnose({"train": train}, "text", "topics", label_separator="|",
                       probabilities=without_price)["label_errors"]  # fmt: skip
    assert "not trained on the label(s) price" in unknown["skipped"]


def test_a_given_model_may_know_classes_the_rows_do_not_carry():
    frame = _reviews_with_labels(["positive", "negative"] * 200)
    truth = (frame["label"] == "positive").to_numpy()
    rng = np.random.default_rng(9)
    positive = np.where(truth, rng.uniform(0.6, 0.9, 400), rng.uniform(0.05, 0.3, 400))
    probabilities = pd.DataFrame(
        {"negative": 0.9 - positive, "neutral": 0.1, "positive": positive}, index=frame.index
    )
    flipped = list(range(5, 400, 39))  # eleven rows, odd and even: both ways
    frame.loc[flipped, "label"] = frame.loc[flipped, "label"].map(
        {"positive": "negative", "negative": "positive"}
    )
    errors = diagnose({"train": frame}, "text", "label", probabilities=probabilities)
    errors = errors["label_errors"]
    assert errors["method"] == "the given model's probabilities + cleanlab"
    assert set(errors["rows"]) <= set(flipped) and len(errors["rows"]) >= len(flipped) - 2


def test_the_quick_model_reads_words_where_spaces_mark_them():
    from tunelab.data.label_noise import _quick_features, spaced_words

    english = ["the room was not bad at all", "not good , the staff were rude"] * 5
    chinese = ["房间不错，服务也很好", "质量太差了，不推荐"] * 5
    assert spaced_words(english) and not spaced_words(chinese) and not spaced_words([""])
    assert _quick_features(english).shape[1] == 2 * _quick_features(chinese).shape[1]
    assert _quick_features(english, words=False).shape == _quick_features(chinese).shape


def test_each_splits_texts_are_normalised_once(tmp_path, monkeypatch):
    """Duplicates, conflicts and leakage compare the same near-duplicate keys: made once a
    split (on a million rows each pass took about 10 s)."""
    from tunelab.data import doctor, duplicates

    planted(tmp_path)
    frames = {"train": read_table(tmp_path / "train.csv"),
              "test": read_table(tmp_path / "test.csv")}  # fmt: skip
    made = []
    keys = doctor.near_duplicate_keys
    monkeypatch.setattr(doctor, "near_duplicate_keys", lambda t: made.append(len(t)) or keys(t))
    monkeypatch.setattr(duplicates, "near_duplicate_keys",
                        lambda t: pytest.fail("keys made again"))  # fmt: skip
    report = diagnose(frames, "text", "label", find_label_errors=False)
    assert made == [len(frames["train"]), len(frames["test"])]
    assert report["splits"]["train"]["duplicates"]["near_duplicates"] == 20
    assert report["leakage"]["test_in_train"]["exact"] == 10


def test_control_characters_are_unicodes_less_tab_and_newlines():
    import unicodedata

    from tunelab.data.text_quality import has_control_characters

    for point in range(0x3000):
        character = chr(point)
        expected = unicodedata.category(character) == "Cc" and character not in "\t\n\r"
        assert has_control_characters(f"a{character}b") == expected, hex(point)


def test_texts_hashed_in_pieces_on_every_core_give_the_same_features(monkeypatch):
    from tunelab.data import label_noise

    texts = make_reviews(300, seed=4)["text"].tolist()
    monkeypatch.setattr(label_noise, "PARALLEL_FROM", 10**9)
    alone = label_noise._quick_features(texts)
    monkeypatch.setattr(label_noise, "PARALLEL_FROM", 0)
    monkeypatch.setattr(label_noise, "HASHING_CHUNKS", 7)  # pieces of uneven size
    pieces = label_noise._quick_features(texts)
    assert pieces.shape == alone.shape and (pieces != alone).nnz == 0


def test_missing_texts_are_reported_not_normalised():
    """A missing cell (NaN) is an empty text in the report; the near-duplicate keys, made
    once a split, skip it rather than fail on it."""
    train = pd.DataFrame({"text": ["好评", None, "好评！", "差评"], "label": ["p", "p", "p", "n"]})
    test = pd.DataFrame({"text": [None, "差评。"], "label": ["n", "n"]})
    report = diagnose({"train": train, "test": test}, "text", "label", find_label_errors=False)
    assert report["splits"]["train"]["empty_texts"] == [1]
    assert report["splits"]["test"]["empty_texts"] == [0]
    assert report["splits"]["train"]["duplicates"]["near_duplicates"] == 1
    assert report["leakage"]["test_in_train"]["near"] == 1


def test_tables_of_other_tasks_get_the_checks_training_makes(tmp_path, caplog):
    """A folder of source/target files is read as train reads it (seq2seq), its leakage and
    repeated inputs named; a table of texts and labels keeps the text doctor, and so does any
    table given column options."""
    import logging

    from tunelab import api

    folder = tmp_path / "pairs"
    folder.mkdir()
    train = pd.DataFrame({"source": [f"sentence {i}" for i in range(20)],
                          "target": [f"句子 {i}" for i in range(20)]})  # fmt: skip
    test = pd.DataFrame({"source": ["sentence 3", "sentence 99"], "target": ["句子 3", "新"]})
    train.to_json(folder / "train.jsonl", orient="records", lines=True, force_ascii=False)
    test.to_json(folder / "test.jsonl", orient="records", lines=True, force_ascii=False)
    caplog.set_level(logging.INFO, logger="tunelab")
    assert api.doctor_task(folder) == "seq2seq"
    report = tmp_path / "report.json"
    text = api.doctor_as_training(folder, report=report)
    assert "task 'seq2seq' ('source'/'target' columns; --task overrides)" in caplog.text
    assert text.splitlines()[0] == (
        "seq2seq checks, as tunelab train makes them (train 20 rows, test 2 rows):"
    )
    assert "1 test text also occurs in train (leakage)" in text
    found = json.loads(report.read_text(encoding="utf-8"))
    assert found["task"] == "seq2seq" and found["rows"] == {"train": 20, "test": 2}
    assert found["doctor"]["leakage"]["test_in_train"]["exact"] == 1

    reviews = tmp_path / "reviews.csv"
    make_reviews(40).to_csv(reviews, index=False)
    assert api.doctor_task(reviews) == "text-classification"
    assert api.doctor_task(folder, columns_given=True) == "text-classification"
    # a CoNLL file named .txt, as MSRA NER ships, gets the tagging checks
    msra = tmp_path / "dh_msra.txt"
    msra.write_text("当\tO\n希\tO\n\n中\tB-LOC\n国\tI-LOC\n人\tO\n", encoding="utf-8")
    assert api.doctor_task(msra) == "token-classification"
    assert "as " + str(msra) + " is a CoNLL file of tokens and their tags" in caplog.text
    ud = tmp_path / "zh_gsdsimp-ud-dev.conllu"
    ud.write_text("# sent_id = 1\n1\t同样\t同样\tADV\tRB\t_\t0\troot\t_\t_\n", encoding="utf-8")
    assert api.doctor_task(ud) == "token-classification"
