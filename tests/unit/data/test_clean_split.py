import pandas as pd
import pytest

from tunelab.config import CleanConfig
from tunelab.data.clean import clean_rows, drop_invalid_rows
from tunelab.data.normalize import joined_cells
from tunelab.data.split import split_frame
from tunelab.errors import UserError


def _frame(rows):
    frame = pd.DataFrame(rows, index=range(1, len(rows) + 1))
    frame.attrs["source"] = "d.csv"
    return frame


def test_dropped_training_rows_are_named_with_the_option_that_keeps_them(caplog):
    rows = [("好", "pos"), ("好", "pos"), ("好", "pos"), ("坏", "neg"), ("坏", "pos")]
    frame = _frame([{"text": text, "label": label} for text, label in rows])
    with caplog.at_level("WARNING", logger="tunelab"):
        cleaned, steps = clean_rows(frame, ["text"], "label", CleanConfig(), True)
    assert list(cleaned.index) == [1]
    assert steps["conflicting_labels"]["rows"] == [4, 5]
    assert (
        "d.csv: dropped 2 row(s) whose text also occurs with another label (rows 4, 5); "
        "clean.drop_conflicts=false keeps them" in caplog.text
    )
    assert (
        "dropped 2 row(s) repeating an earlier row's text and label (rows 2, 3); "
        "clean.drop_duplicates=false keeps them" in caplog.text
    )


def test_invalid_rows_are_dropped_with_their_row_numbers(caplog):
    frame = _frame(
        [
            {"text": "a", "label": "x"},
            {"text": "  ", "label": "x"},
            {"text": "b", "label": float("nan")},
            {"text": "c", "label": "y"},
        ]
    )
    kept, report = drop_invalid_rows(frame, ["text", "label"], drop=True)
    assert kept["text"].tolist() == ["a", "c"]
    assert report["dropped"]["text"]["rows"] == [2]
    assert report["dropped"]["label"]["rows"] == [3]
    assert "rows 2" in caplog.text


def test_invalid_rows_fail_when_asked():
    frame = _frame([{"text": "a", "label": "x"}, {"text": None, "label": "y"}])
    with pytest.raises(UserError, match=r"d.csv: column 'text' is empty in rows 2; .*drop_invalid"):
        drop_invalid_rows(frame, ["text", "label"], drop=False)


def test_split_is_seeded_disjoint_and_stratified():
    frame = _frame([{"text": f"t{i}", "label": "a" if i % 4 else "b"} for i in range(400)])
    shares = {"validation": 0.1, "test": 0.1}
    first = split_frame(frame, shares, 7, frame["label"])
    again = split_frame(frame, shares, 7, frame["label"])
    other = split_frame(frame, shares, 8, frame["label"])
    assert {k: list(v.index) for k, v in first.items()} == {
        k: list(v.index) for k, v in again.items()
    }
    assert list(first["test"].index) != list(other["test"].index)
    assert [len(first[k]) for k in ("train", "validation", "test")] == [320, 40, 40]
    indexes = [set(v.index) for v in first.values()]
    assert not (indexes[0] & indexes[1]) and not (indexes[0] & indexes[2])
    assert (first["test"]["label"] == "b").sum() == 10  # a quarter, as in the whole set


def test_class_too_small_to_stratify_names_the_class():
    rows = [{"text": f"t{i}", "label": "a"} for i in range(50)] + [{"text": "z", "label": "rare"}]
    frame = _frame(rows)
    with pytest.raises(UserError, match=r"class 'rare' has only 1 row"):
        split_frame(frame, {"validation": 0.1, "test": 0.1}, 0, frame["label"])


def test_too_few_rows_for_a_split():
    frame = _frame([{"text": "a", "label": "x"}, {"text": "b", "label": "y"}])
    with pytest.raises(UserError, match="too few for a validation split"):
        split_frame(frame, {"validation": 0.1}, 0, None)


def test_a_split_too_small_for_its_repeats_says_how_many_rows_are_distinct():
    # 200 rows that repeat 5 texts: the split sees 5 groups, and says so, not "5 rows"
    frame = _frame([{"text": f"question {i % 5}", "label": "x"} for i in range(200)])
    frame.attrs["rows_read"] = 230  # cleaning dropped 30 before the split
    with pytest.raises(
        UserError,
        match=r"d.csv has 5 distinct texts among its 200 rows \(repeats stay in one split\), "
        r"230 before cleaning .*too few for a validation split of 10%",
    ):
        split_frame(frame, {"validation": 0.1}, 0, None, groups=frame["text"])


def test_joined_cells_match_a_row_by_row_join():
    frame = pd.DataFrame({"a": ["x y", "z", "w"], "b": ["1", "2", "3"], "n": [1, 2, 3]})
    for columns, separator in ((["a"], " "), (["a", "b"], " "), (["a", "b", "n"], "\x1f")):
        expected = frame[columns].astype(str).agg(separator.join, axis=1)
        assert joined_cells(frame, columns, separator).tolist() == expected.tolist()
    assert joined_cells(frame, ["a", "n"], "|", cell=lambda v: f"<{v}>").tolist() == [
        "<x y>|<1>", "<z>|<2>", "<w>|<3>"
    ]  # fmt: skip


def test_pairs_are_duplicates_or_conflicts_only_when_both_texts_agree():
    frame = _frame(
        [
            {"premise": "a cat sits", "hypothesis": "an animal sits", "label": "yes"},
            {"premise": "a cat sits", "hypothesis": "an animal sits", "label": "yes"},  # copy
            {"premise": "a cat sits", "hypothesis": "a dog sits", "label": "no"},  # other pair
            {"premise": "It rains.", "hypothesis": "wet", "label": "yes"},
            {"premise": "it rains", "hypothesis": "WET!", "label": "no"},  # near copy, clash
        ]
    )
    cleaned, steps = clean_rows(frame, ["premise", "hypothesis"], "label", CleanConfig(), True)
    assert steps["conflicting_labels"]["rows"] == [4, 5]
    assert steps["exact_duplicates"]["rows"] == [2]
    assert cleaned.index.tolist() == [1, 3]


def test_label_sets_in_another_order_are_one_set_not_a_conflict():
    frame = pd.DataFrame({
        "text": ["cheap and fast", "cheap and fast", "broke at once", "broke at once", "late"],
        "topics": ["price|delivery", "delivery | price", "quality", "quality|price", "delivery"],
    })  # fmt: skip
    cleaned, steps = clean_rows(frame, ["text"], "topics", CleanConfig(), True, "|")
    # the first two are one row written twice; the last two really disagree
    assert steps["conflicting_labels"]["count"] == 2
    assert steps["exact_duplicates"]["count"] == 1
    assert cleaned["text"].tolist() == ["cheap and fast", "late"]
    # without the separator, the label strings differ: the first two read as a conflict
    _, unsplit = clean_rows(frame, ["text"], "topics", CleanConfig(), True)
    assert unsplit["conflicting_labels"]["count"] == 4
