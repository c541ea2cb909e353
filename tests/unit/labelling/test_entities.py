"""Entity labelling: BIO <-> spans, the CRF queue's span suggestions and questions, checks on
the spans a person gives, and the journal replaying them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunelab.errors import UserError
from tunelab.labelling.entities import (
    EntityQueue,
    entity_f1,
    parse_spans,
    spans_to_tags,
    tags_to_spans,
)
from tunelab.labelling.simulate import simulate

# the sessions here retrain before a label returns: scripted answers come faster than a fit
pytestmark = pytest.mark.usefixtures("sync_retrains")

pytest.importorskip("pycrfsuite")

PEOPLE = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄敏"]
PLACES = ["北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉"]
FRAMES = ["{p}昨天到{l}开会。", "{p}说{l}的天气很好。", "今年{p}在{l}工作。", "{l}欢迎{p}回来。",
          "会议在{l}举行，{p}主持。", "天气很好，我们去公园。"]  # fmt: skip


def pool(count: int = 240, seed: int = 0) -> tuple[pd.DataFrame, dict[str, list]]:
    """Sentences with a person and a place (one frame has none), and their spans."""
    rng = np.random.default_rng(seed)
    texts, spans = [], []
    for _ in range(count):
        frame = FRAMES[rng.integers(len(FRAMES))]
        person, place = PEOPLE[rng.integers(8)], PLACES[rng.integers(8)]
        text = frame.format(p=person, l=place) + f"{rng.integers(1000)}"
        found = []
        if "{p}" in frame:
            start = text.index(person)
            found.append((start, start + 2, "PER"))
            start = text.index(place)
            found.append((start, start + 2, "LOC"))
        texts.append(text)
        spans.append(sorted(found))
    items = pd.DataFrame({"id": [str(i) for i in range(count)], "text": texts})
    return items, dict(zip(items["id"], spans, strict=True))


def test_bio_tags_and_spans_round_trip() -> None:
    spans = [(0, 2, "PER"), (4, 7, "LOC"), (7, 8, "ORG")]
    tags = spans_to_tags(9, spans)
    assert tags == ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "I-LOC", "B-ORG", "O"]
    assert tags_to_spans(tags) == spans
    assert tags_to_spans(["I-PER", "I-PER", "B-LOC", "I-PER"]) == [
        (0, 2, "PER"), (2, 3, "LOC"), (3, 4, "PER")]  # fmt: skip


def test_the_queue_suggests_spans_and_asks_where_the_tagger_is_unsure() -> None:
    items, oracle = pool()
    queue = EntityQueue(items, ["PER", "LOC"], retrain_every=10, clusters=6)
    result = simulate(queue, oracle, 40)
    assert result["labels"] == 40 and queue.model is not None
    [suggestion] = queue.next("ann")
    assert suggestion.reason.startswith("model unsure: ")
    assert suggestion.spans is not None and {kind for *_, kind in suggestion.spans} <= {
        "PER",
        "LOC",
    }
    weakest = suggestion.reason.split("at '")[1][0]
    assert weakest in suggestion.text  # the character the tagger is least sure of
    guessed = sum(queue.guessed_spans[queue.row_of[i]] == oracle[i] for i in oracle
                  if queue.row_of[i] in queue.guessed_spans)  # fmt: skip
    assert guessed >= 0.75 * len(queue.guessed_spans)  # an easy pool: most guesses are right
    assert queue.margins is not None
    trained_on = [queue.row_of[item] for item in list(queue.labels)[: queue.labels_at_training]]
    assert np.isinf(queue.margins[trained_on]).all()  # what the tagger learnt is not scored
    assert suggestion.item not in queue.labels
    test = pd.DataFrame({"text": items["text"], "spans": list(oracle.values())})
    assert entity_f1(queue, test) > 0.85


def test_spans_are_checked_before_they_count() -> None:
    items, _ = pool(20)
    queue = EntityQueue(items, ["PER", "LOC"], clusters=3)
    text = queue.texts[0]
    cases = [
        ("PER", "takes spans"),
        ([(0, 2, "ORG")], "type among: PER, LOC"),
        ([(0, len(text) + 1, "PER")], f"outside its {len(text)} characters"),
        ([(0, 3, "PER"), (2, 4, "LOC")], "overlaps another"),
        ([(0, 2)], r"span \(0, 2\) is not \(start, end, type\)"),
    ]
    for label, message in cases:
        with pytest.raises(UserError, match=message):
            queue.add_label("0", label)
    assert queue.labels == {}
    queue.add_label("0", [(3, 5, "LOC"), (0, 2, "PER")])
    assert queue.labels == {"0": [(0, 2, "PER"), (3, 5, "LOC")]}
    queue.add_label("1", [])  # a text without entities is a label too
    assert queue.labels["1"] == []
    with pytest.raises(UserError, match="--entities"):
        EntityQueue(items, ["B-PER"])


def test_simulated_labels_go_to_the_journal_as_spans(tmp_path: Path) -> None:
    from tunelab.labelling.journal import LabelJournal

    items, oracle = pool(60)
    journal = LabelJournal(tmp_path / "j.jsonl")
    queue = EntityQueue(items, ["PER", "LOC"], retrain_every=10, clusters=4)
    simulate(queue, oracle, 12, journal=journal)
    replayed = LabelJournal(tmp_path / "j.jsonl").labels()
    assert replayed == {item: oracle[item] for item in queue.labels}


def _jsonl(tmp_path: Path, count: int = 60) -> tuple[Path, dict[str, list]]:
    import json

    items, oracle = pool(count)
    path = tmp_path / "sentences.jsonl"
    rows = zip(items["id"], items["text"], strict=True)
    lines = [json.dumps({"id": i, "text": t, "label": [list(s) for s in oracle[i]]},
                        ensure_ascii=False) for i, t in rows]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, oracle


def test_cli_simulates_entity_labelling_into_trainable_jsonl(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from tunelab.cli import app

    data, oracle = _jsonl(tmp_path)
    out, journal = tmp_path / "labelled.jsonl", tmp_path / "j.jsonl"
    result = CliRunner().invoke(app, ["label", "run", str(data), "--entities", "PER,LOC",
                                      "--simulate", "--budget", "20", "--clusters", "4",
                                      "--journal", str(journal), "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.count("labelled ") == 20 and "=PER" in result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 20
    for row in rows:  # what token-classification trains on: characters and BIO tags
        assert row["tokens"] == list(row["text"])
        assert tags_to_spans(row["tags"]) == oracle[row["id"]] == [tuple(s) for s in row["spans"]]


def test_cli_entity_labelling_at_the_terminal(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tunelab.cli import app
    from tunelab.labelling.journal import LabelJournal

    data, _ = _jsonl(tmp_path, 30)
    out, journal = tmp_path / "labelled.jsonl", tmp_path / "j.jsonl"
    command = ["label", "run", str(data), "--entities", "PER,LOC", "--clusters", "3",
               "--retrain-every", "2", "--journal", str(journal), "--out", str(out)]  # fmt: skip
    # Enter with no guess yet, a type not in the set, a name not in the text, then real answers
    answers = ["", "x=ORG", "赵无极=PER", "-", "s", "u", "-", "-", "-", "", "q"]
    result = CliRunner().invoke(app, command, input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "no guess to accept yet" in result.output
    assert "entity type 'ORG' is not one of: PER, LOC" in result.output
    assert "'赵无极' is not in the text" in result.output
    assert "undid the label of" in result.output and "model guesses: " in result.output
    labels = LabelJournal(journal).labels()
    assert len(labels) == 4
    # Enter took the guess the terminal showed for the last text
    shown = result.output.split("\n[")[-2]  # the last block is the text answered with q
    item, text = shown.split("]", 1)[0], shown.split("] ", 1)[1].split("\n", 1)[0]
    guess = shown.split("model guesses: ", 1)[1].split("\n", 1)[0]
    assert labels[item] == parse_spans(guess, text, ["PER", "LOC"])
    wrong = CliRunner().invoke(app, ["label", "run", str(data), "--labels", "a,b", "--journal",
                                     str(journal)])  # fmt: skip
    assert "holds entity spans; to label classes, give another --journal" in str(wrong.exception)
    both = CliRunner().invoke(app, ["label", "run", str(data)])
    assert "give --labels positive,negative to label classes, or --entities" in str(both.exception)


def test_typed_spans() -> None:
    from tunelab.labelling.entities import show_spans

    text = "张伟在北京见到张伟。"
    assert parse_spans("张伟=PER 北京=LOC 张伟=PER", text, ["PER", "LOC"]) == [
        (0, 2, "PER"), (3, 5, "LOC"), (7, 9, "PER")]  # fmt: skip
    assert parse_spans("张伟#2=PER", text, ["PER"]) == [(7, 9, "PER")]
    assert parse_spans("-", text, ["PER"]) == []
    assert show_spans(text, [(0, 2, "PER"), (3, 5, "LOC")]) == "张伟=PER 北京=LOC"
    with pytest.raises(UserError, match="is not TEXT=TYPE"):
        parse_spans("张伟", text, ["PER"])


def test_a_reviewer_settles_entity_disagreements_at_the_terminal(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from tunelab.cli import app
    from tunelab.labelling.journal import LabelJournal
    from tunelab.labelling.session import journal_agreement

    data = tmp_path / "news.txt"
    data.write_text("张伟到北京开会。\n王芳去上海。\n天气很好。\n", encoding="utf-8")
    journal_file = tmp_path / "j.jsonl"
    journal = LabelJournal(journal_file)
    given = {"1": ([(0, 2, "PER"), (3, 5, "LOC")], [(0, 2, "PER")]),
             "2": ([(0, 2, "PER")], [(0, 2, "PER"), (3, 5, "LOC")]),
             "3": ([], [])}  # fmt: skip
    for item, (ann, bob) in given.items():
        journal.label(item, spans=ann, annotator="ann")
        journal.label(item, spans=bob, annotator="bob")
    before = journal_agreement(journal_file)
    assert [d["item"] for d in before["disagreements"]] == ["1", "2"]
    out = tmp_path / "reviewed.jsonl"
    command = ["label", "review", str(data), "--entities", "PER,LOC", "--journal",
               str(journal_file), "--out", str(out), "--reviewer", "lead"]  # fmt: skip
    # item 1: 3 is no annotator (asked again), then bob's spans (2); item 2: typed spans
    result = CliRunner().invoke(app, command, input="3\n2\n王芳=PER\n")
    assert result.exit_code == 0, result.output
    assert "1=ann: 张伟=PER 北京=LOC" in result.output and "2=bob: 张伟=PER" in result.output
    assert "no annotator number 3" in result.output
    assert "2 disagreements settled" in result.output
    labels = LabelJournal(journal_file).labels()
    assert labels["1"] == [(0, 2, "PER")] and labels["2"] == [(0, 2, "PER")]
    rows = {r["id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert rows["1"]["spans"] == [[0, 2, "PER"]]
    assert journal_agreement(journal_file) == before  # reviews stay out of the agreement
    neither = CliRunner().invoke(app, ["label", "review", str(data), "--journal",
                                       str(journal_file)])  # fmt: skip
    assert "give either --labels (classes) or --entities" in str(neither.exception)
