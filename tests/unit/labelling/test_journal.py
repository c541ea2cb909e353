"""The label journal: replay, undo, crash safety (a real kill -9), the labelled file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tunelab.errors import UserError
from tunelab.labelling.journal import LabelJournal, write_labelled


def test_replay_gives_the_latest_labels_and_undo_takes_one_back(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = LabelJournal(path)
    journal.label("1", "pos", annotator="ann", note="clear")
    journal.label("2", "neg", annotator="ann")
    journal.label("2", "pos", annotator="ann")  # a correction
    journal.label("3", "neg", annotator="bob")
    journal.undo("ann")  # takes back 2 -> pos, leaving 2 -> neg
    journal.undo("bob", item="3")
    assert journal.labels() == {"1": "pos", "2": "neg"}
    replayed = LabelJournal(path)
    assert replayed.labels() == {"1": "pos", "2": "neg"}
    assert [r["action"] for r in replayed.records()].count("undo") == 2
    assert replayed.records()[0]["note"] == "clear" and "time" in replayed.records()[0]
    with pytest.raises(UserError, match="bob has no label to undo"):
        replayed.undo("bob")


def test_entity_spans_are_journalled_too(tmp_path: Path) -> None:
    journal = LabelJournal(tmp_path / "j.jsonl")
    journal.label("7", spans=[(0, 2, "PER")], annotator="ann")
    assert LabelJournal(tmp_path / "j.jsonl").labels() == {"7": [(0, 2, "PER")]}


def test_a_torn_last_line_is_dropped_and_a_bad_middle_line_named(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    LabelJournal(path).label("1", "pos")
    with open(path, "ab") as out:
        out.write(b'{"action": "label", "item": "2", "lab')  # the crash hit mid-write
    journal = LabelJournal(path)
    assert journal.skipped_torn_line and journal.labels() == {"1": "pos"}
    journal.label("3", "neg")
    assert LabelJournal(path).labels() == {"1": "pos", "3": "neg"}
    path.write_text('{"item": "1", "label": "a", "annotator": "x"}\nnot json\n{"item": "2"}\n')
    with pytest.raises(UserError, match=r"j.jsonl line 2 is not a label record"):
        LabelJournal(path)


def test_two_journals_on_one_file_see_each_other(tmp_path: Path) -> None:
    first, second = LabelJournal(tmp_path / "j.jsonl"), LabelJournal(tmp_path / "j.jsonl")
    first.label("1", "pos", annotator="a")
    second.label("2", "neg", annotator="b")
    assert second.labels() == {"1": "pos", "2": "neg"}


def test_every_acknowledged_label_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    script = textwrap.dedent(f"""
        from tunelab.labelling.journal import LabelJournal
        journal = LabelJournal({str(path)!r})
        n = 0
        while True:
            journal.label(str(n), "pos" if n % 2 else "neg", annotator="loop")
            print(n, flush=True)  # acknowledged: on disk
            n += 1
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3] / "src")}
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    assert process.stdout is not None
    acknowledged = []
    for line in process.stdout:
        acknowledged.append(line.decode().strip())
        if len(acknowledged) >= 200:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    acknowledged += [line.decode().strip() for line in process.stdout.read().splitlines()]
    labels = LabelJournal(path).labels()
    assert len(acknowledged) >= 200
    for n in acknowledged:
        assert labels[n] == ("pos" if int(n) % 2 else "neg")


def test_the_labelled_file_is_rewritten_whole(tmp_path: Path) -> None:
    texts = {"1": "好", "2": "差", "3": "一般"}
    assert write_labelled(tmp_path / "out.csv", texts, {"1": "pos", "2": "neg"}) == 2
    assert (tmp_path / "out.csv").read_text().splitlines() == ["id,text,label", "1,好,pos",
                                                               "2,差,neg"]  # fmt: skip
    write_labelled(tmp_path / "out.jsonl", texts, {"3": "pos"})
    assert '"text": "一般"' in (tmp_path / "out.jsonl").read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_reviewers_decision_wins_and_stays_out_of_agreement(tmp_path: Path) -> None:
    journal = LabelJournal(tmp_path / "j.jsonl")
    journal.label("1", "pos", annotator="ann")
    journal.label("1", "neg", annotator="bob")
    assert journal.labels() == {"1": "neg"}  # the latest label, without a review
    journal.label("1", "pos", annotator="lead", role="review")
    journal.label("1", "neg", annotator="bob")  # a later annotator label does not overrule it
    replayed = LabelJournal(tmp_path / "j.jsonl")
    assert replayed.labels() == {"1": "pos"}
    assert replayed.state.by_annotator() == {"1": {"ann": "pos", "bob": "neg"}}
