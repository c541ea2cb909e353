import pytest

from tunelab.data.tag_schemes import (
    broken_positions,
    convert_tags,
    detect_scheme,
    scheme_tags,
    spans_from_tags,
    tags_from_spans,
)
from tunelab.evaluation.tagging import (
    entity_metrics,
    segmentation_metrics,
    span_confusion,
    tag_metrics,
)

BIO = ["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG", "I-ORG"]
BIOES = ["B-PER", "E-PER", "O", "S-LOC", "O", "B-ORG", "I-ORG", "E-ORG"]
IO = ["I-PER", "I-PER", "O", "I-LOC", "O", "I-ORG", "I-ORG", "I-ORG"]
BMESO = ["B-PER", "E-PER", "O", "S-LOC", "O", "B-ORG", "M-ORG", "E-ORG"]  # ResumeNER's form


def test_schemes_are_detected_from_their_tags():
    assert detect_scheme(set(BIO)) == "bio"
    assert detect_scheme(set(BIOES)) == "bioes"
    assert detect_scheme(set(IO)) == "io"
    assert detect_scheme(set(BMESO)) == "bmeso"  # was "plain": scored by tag accuracy
    assert detect_scheme({"B", "M", "E", "S"}) == "bmes"
    assert detect_scheme({"n", "v", "w"}) == "plain"


@pytest.mark.parametrize("source", [BIO, BIOES, IO, BMESO])
def test_every_scheme_decodes_to_the_same_entities(source):
    scheme = detect_scheme(set(source))
    assert spans_from_tags(source, scheme) == [(0, 2, "PER"), (3, 4, "LOC"), (5, 8, "ORG")]


def test_conversion_round_trips_between_bio_and_bioes():
    assert convert_tags(BIO, "bio", "bioes") == BIOES
    assert convert_tags(BIOES, "bioes", "bio") == BIO
    assert convert_tags(BIO, "bio", "io") == IO
    assert convert_tags(BIO, "bio", "bmeso") == BMESO
    assert convert_tags(BMESO, "bmeso", "bio") == BIO
    assert broken_positions(BMESO, "bmeso") == []
    assert broken_positions(["B-ORG", "M-ORG"], "bmeso") == [1]  # no E-ORG
    assert scheme_tags(["ORG"], "bmeso") == ["O", "B-ORG", "M-ORG", "E-ORG", "S-ORG"]
    assert entity_metrics([BMESO], [BMESO], "bmeso")["f1"] == 1.0


def test_io_cannot_separate_adjacent_entities_of_one_type():
    two_people = ["B-PER", "B-PER", "I-PER"]
    assert spans_from_tags(convert_tags(two_people, "bio", "io"), "io") == [(0, 3, "PER")]


def test_broken_sequences_are_found_and_repaired_leniently():
    broken = ["O", "I-PER", "I-PER", "O", "B-LOC", "I-ORG"]
    assert broken_positions(broken, "bio") == [1, 5]
    assert convert_tags(broken, "bio", "bio") == ["O", "B-PER", "I-PER", "O", "B-LOC", "B-ORG"]
    assert broken_positions(BIO, "bio") == []
    assert broken_positions(["B-PER", "I-PER"], "bioes") == [1]  # no E-PER


def test_segmentation_tags_decode_to_words():
    tags = ["B", "E", "S", "B", "M", "E"]
    assert spans_from_tags(tags, "bmes") == [(0, 2, ""), (2, 3, ""), (3, 6, "")]
    assert tags_from_spans([(0, 2, ""), (2, 3, ""), (3, 6, "")], 6, "bmes") == tags


def test_scheme_tags_put_outside_first():
    assert scheme_tags(["LOC", "PER"], "bio") == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert len(scheme_tags(["PER"], "bioes")) == 5


def test_entity_metrics_are_strict_per_type():
    gold = [BIO]
    pred = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG", "O"]]  # ORG cut short
    scores = entity_metrics(gold, pred, "bio")
    assert scores["per_type"]["ORG"]["f1"] == 0.0
    assert scores["per_type"]["PER"]["f1"] == 1.0
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["accuracy"] == pytest.approx(7 / 8)


def test_span_confusion_pairs_same_boundaries():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-LOC", "I-LOC", "O", "O"]]
    assert span_confusion(gold, pred, "bio") == {"LOC": {"(missed)": 1}, "PER": {"LOC": 1}}
    assert span_confusion([["O"]], [["B-PER"]], "bio") == {"(none)": {"PER": 1}}


def test_segmentation_f1_counts_whole_words():
    gold = [["B", "E", "S", "B", "E"]]
    pred = [["B", "E", "B", "E", "S"]]  # first word right, the rest wrong
    scores = segmentation_metrics(gold, pred)
    assert scores["word_precision"] == pytest.approx(1 / 3)
    assert scores["word_recall"] == pytest.approx(1 / 3)


def test_plain_tags_score_accuracy_and_per_tag():
    scores = tag_metrics([["n", "v", "n"]], [["n", "n", "n"]])
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["per_tag"]["v"]["recall"] == 0.0
