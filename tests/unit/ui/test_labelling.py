"""The Label page's answers: label, skip and undo through the CLI's journal and queue, the
labelled file to download, the session rebuilt from the journal after a restart, and the
CLI's line for a bad file or label set."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_reviews
from tests.unit.ui.conftest import cli_line, workbench
from tunelab.labelling.queue import LabelQueue

# the sessions here retrain before a label returns: scripted answers come faster than a fit
pytestmark = pytest.mark.usefixtures("sync_retrains")

LABELS = "positive,negative"
THREADED_START_FIT = LabelQueue._start_fit  # the queue's own, before sync_retrains replaces it


def texts_file(workspace: Path, rows: int = 40) -> tuple[str, dict[str, str]]:
    """A CSV of texts (no labels) in uploads/, and the label each row's text calls for."""
    frame = make_reviews(rows)
    frame.insert(0, "id", [f"r{i}" for i in range(rows)])
    (workspace / "uploads").mkdir(parents=True, exist_ok=True)
    frame.drop(columns="label").to_csv(workspace / "uploads" / "texts.csv", index=False)
    return "uploads/texts.csv", dict(zip(frame["id"], frame["label"], strict=True))


def post(client: Any, route: str, path: str, **extra: Any) -> dict[str, Any]:
    answer = client.post(f"/api/label/{route}", json={"path": path, "labels": LABELS, **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()


def downloaded(client: Any, found: dict[str, Any]) -> dict[str, str]:
    answer = client.get(f"/files/{found['output']}?download=true")
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith("attachment")
    return {row["id"]: row["label"] for row in csv.DictReader(io.StringIO(answer.text))}


def test_label_skip_undo_and_the_labelled_file(client, workspace):
    path, truth = texts_file(workspace)
    found = post(client, "state", path)
    assert (found["labelled"], found["total"], found["labels"]) == (0, 40, ["positive", "negative"])
    assert found["journal"] == "uploads/texts.journal.jsonl"
    assert found["command"] == ("tunelab label run uploads/texts.csv --labels positive,negative "
                                "--journal uploads/texts.journal.jsonl --out "
                                "uploads/texts.labelled.csv")  # fmt: skip
    assert found["current"]["reason"].startswith("cold start")
    again = post(client, "state", path)["current"]  # asking again (a reload) keeps the text
    assert again["item"] == found["current"]["item"]
    assert again["reason"] == "still yours: " + found["current"]["reason"]
    assert post(client, "state", path)["current"] == again

    given: dict[str, str] = {}
    for _ in range(12):
        item = found["current"]["item"]
        found = post(client, "label", path, item=item, label=truth[item])
        given[item] = truth[item]
        assert found["current"]["item"] not in given
    assert found["labelled"] == 12 and downloaded(client, found) == given
    assert found["current"]["guess"] in ("positive", "negative")  # a model after 10 labels

    skipped = found["current"]["item"]
    found = post(client, "skip", path, item=skipped)
    assert found["labelled"] == 12 and found["current"]["item"] != skipped

    last = list(given)[-1]
    found = post(client, "undo", path)
    assert found["done"] == f"undid the label of {last}" and found["labelled"] == 11
    del given[last]
    assert downloaded(client, found) == given

    # the CLI's session reads the same journal: the same labels, the skip remembered
    from tunelab.labelling.session import open_session

    _, journal, queue = open_session(workspace / path, workspace / found["journal"],
                                     LABELS.split(","))  # fmt: skip
    assert journal.labels() == given
    assert skipped not in {s.item for s in queue.next("me", count=40)}

    # a restarted server rebuilds the queue from the journal
    with workbench(workspace) as again:
        found = post(again, "state", path)
        assert found["labelled"] == 11 and found["current"]["item"] not in (*given, skipped)


def test_each_annotator_has_their_own_texts_and_undo(client, workspace):
    path, truth = texts_file(workspace)
    mine = post(client, "state", path)["current"]["item"]
    found = post(client, "state", path, annotator="ann")
    assert found["current"]["item"] != mine  # leased to me: never shown to two at once
    assert found["command"].endswith(" --annotator ann")
    item = found["current"]["item"]
    post(client, "label", path, annotator="ann", item=item, label=truth[item])
    records = (workspace / found["journal"]).read_text()
    assert '"annotator": "ann"' in records
    assert client.post("/api/label/undo", json={"path": path, "labels": LABELS}).status_code == 400
    assert post(client, "undo", path, annotator="ann")["labelled"] == 0


def test_labels_the_cli_journals_meanwhile_are_seen(client, workspace):
    from tunelab.labelling.journal import LabelJournal

    path, truth = texts_file(workspace)
    first = post(client, "state", path)
    other = LabelJournal(workspace / first["journal"])  # another process, as tunelab label run
    other.label("r3", truth["r3"], annotator="ann")
    found = post(client, "state", path)
    assert found["labelled"] == 1 and downloaded(client, found) == {"r3": truth["r3"]}


def test_bad_input_gives_the_clis_line_next_to_its_field(client, workspace, monkeypatch, capsys):
    path, _ = texts_file(workspace)
    (workspace / "uploads" / "empty.txt").write_text("\n", encoding="utf-8")
    monkeypatch.chdir(workspace)  # the page's commands run from the workspace

    def refused(route: str, **body: Any) -> dict[str, Any]:
        answer = client.post(f"/api/label/{route}", json=body)
        assert answer.status_code == 400
        return answer.json()

    empty = refused("state", path="uploads/empty.txt", labels=LABELS)
    line = cli_line(["label", "run", "uploads/empty.txt", "--labels", LABELS], monkeypatch, capsys)
    assert empty == {"error": line, "field": "path"}
    assert line == "error: data file uploads/empty.txt is empty; give one text per line"

    one = refused("state", path=path, labels="positive, ")
    line = cli_line(["label", "run", path, "--labels", "positive, "], monkeypatch, capsys)
    assert one == {"error": line, "field": "labels"}
    assert "names fewer than two labels" in line

    item = post(client, "state", path)["current"]["item"]
    wrong = refused("label", path=path, labels=LABELS, item=item, label="neutral")
    assert wrong == {"field": "label", "error": "error: label 'neutral' is not one of: "
                     "positive, negative; use one of them or add it to --labels"}  # fmt: skip
    assert not (workspace / "uploads" / "texts.journal.jsonl").read_text()  # nothing journalled
    nothing = refused("undo", path=path, labels=LABELS)
    assert nothing["field"] == "label" and "me has no label to undo" in nothing["error"]
    outside = refused("state", path="../texts.csv", labels=LABELS)
    assert outside["field"] == "path" and "not a path inside the workspace" in outside["error"]


def test_labelling_a_labelled_file_never_overwrites_it(client, workspace):
    path, _ = texts_file(workspace)
    found = post(client, "state", path)
    post(client, "label", path, item=found["current"]["item"], label="positive")
    again = post(client, "state", found["output"])  # the labelled file, as texts to label
    assert again["output"] == "uploads/texts.labelled.labelled.csv"
    assert again["journal"] == "uploads/texts.labelled.journal.jsonl"
    assert again["total"] == 1 and again["labelled"] == 0


def test_only_the_most_recently_used_sessions_stay_in_memory(workspace):
    from tunelab.ui.labelling import KEPT_SESSIONS, Labelling
    from tunelab.ui.workspace import Workspace

    path, truth = texts_file(workspace)
    labelling = Labelling(Workspace(workspace))
    first = labelling.state(path, LABELS, "me")["current"]["item"]
    labelling.label(path, LABELS, "me", first, truth[first])
    kept = labelling.session(path, LABELS)
    others = []
    for n in range(KEPT_SESSIONS):
        other = workspace / "uploads" / f"more{n}.csv"
        other.write_bytes((workspace / path).read_bytes())
        others.append(f"uploads/more{n}.csv")
        labelling.state(others[-1], LABELS, "me")
    assert len(labelling.sessions) == KEPT_SESSIONS
    oldest = ("uploads/texts.csv", ("positive", "negative"), False, 0, 0.0)
    assert oldest not in labelling.sessions  # oldest out
    labelling.state(others[0], LABELS, "me")  # used again: not the next to go
    back = labelling.state(path, LABELS, "me")  # rebuilt from its journal, the label kept
    assert labelling.session(path, LABELS) is not kept
    assert back["labelled"] == 1 and back["current"]["item"] != first
    assert ("uploads/more0.csv", ("positive", "negative"), False, 0, 0.0) in labelling.sessions
    assert ("uploads/more1.csv", ("positive", "negative"), False, 0, 0.0) not in labelling.sessions


def test_the_data_list_offers_the_labelled_file_not_the_journal(client, workspace):
    path, _ = texts_file(workspace)
    found = post(client, "state", path)
    post(client, "label", path, item=found["current"]["item"], label="positive")
    assert (workspace / found["journal"]).is_file()
    listed = {entry["path"] for entry in client.get("/api/files").json()}
    assert listed == {path, found["output"]}


def test_entity_spans_through_the_page(client, workspace):
    import json

    (workspace / "uploads").mkdir(parents=True, exist_ok=True)
    lines = ["张伟昨天到北京开会。", "王芳说上海的天气很好。", "天气很好，我们去公园。"] * 4
    (workspace / "uploads" / "news.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = "uploads/news.txt"

    def send(route: str, **extra: Any) -> dict[str, Any]:
        answer = client.post(f"/api/label/{route}", json={"path": path, "labels": "PER,LOC",
                                                          "entities": True, **extra})  # fmt: skip
        assert answer.status_code == 200, answer.text
        return answer.json()

    found = send("state")
    assert found["entities"] is True and found["labels"] == ["PER", "LOC"]
    assert found["journal"] == "uploads/news.entities.journal.jsonl"
    assert found["command"].startswith("tunelab label run uploads/news.txt --entities PER,LOC")
    item, text = found["current"]["item"], found["current"]["text"]
    spans = [[0, 2, "PER"], [5, 7, "LOC"]] if text.startswith("张伟") else []
    found = send("label", item=item, spans=spans)
    assert found["labelled"] == 1 and found["done"].startswith(f"labelled {item}")
    bad = client.post("/api/label/label", json={"path": path, "labels": "PER,LOC",
                                                "entities": True, "item": found["current"]["item"],
                                                "spans": [[0, 99, "PER"]]})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["field"] == "label"
    assert "outside its" in bad.json()["error"]
    rows = [json.loads(line) for line in client.get(f"/files/{found['output']}").text.splitlines()]
    assert [(r["id"], r["spans"]) for r in rows] == [(item, spans)]
    assert rows[0]["tags"][:2] == (["B-PER", "I-PER"] if spans else ["O", "O"])
    odd = client.post("/api/label/state", json={"path": path, "labels": "B-PER", "entities": True})
    assert odd.status_code == 400 and odd.json()["field"] == "labels"
    assert "needs one or more entity type names without spaces, '-' or '='" in odd.json()["error"]
    classes = post(client, "state", path)  # the same file labelled with classes: its own journal
    assert classes["journal"] == "uploads/news.journal.jsonl" and classes["labelled"] == 0


def test_a_held_out_sample_shows_the_models_score_and_the_estimate(client, workspace):
    path, truth = texts_file(workspace, rows=80)
    found = post(client, "state", path, holdout=10, target=0.95)
    assert found["command"].endswith("--holdout 10 --target 0.95")
    assert found["current"]["reason"].startswith("held-out sample, 1 of 10")
    assert found["current"]["guess"] is None and found["measured"] is None
    for _ in range(50):
        item = found["current"]["item"]
        found = post(client, "label", path, item=item, label=truth[item], holdout=10, target=0.95)
    assert found["measured"].startswith("accuracy ")
    assert " on 10 held-out texts after " in found["measured"]
    assert "0.95" in found["measured"].split("; ", 1)[1]
    progress = post(client, "progress", path, holdout=10, target=0.95)  # what the page polls
    assert progress == {"retraining": False, "measured": found["measured"],
                        "history": found["history"]}  # fmt: skip


def test_a_note_goes_into_the_journal_with_its_label_or_skip(client, workspace):
    from tunelab.labelling.journal import LabelJournal

    path, truth = texts_file(workspace)
    found = post(client, "state", path)
    first = found["current"]["item"]
    found = post(client, "label", path, item=first, label=truth[first], note="sarcasm?")
    second = found["current"]["item"]
    found = post(client, "skip", path, item=second, note="not a review")
    records = LabelJournal(workspace / found["journal"]).records()
    assert [(r["item"], r["action"], r.get("note")) for r in records] == [
        (first, "label", "sarcasm?"), (second, "skip", "not a review")]  # fmt: skip


def test_the_held_out_history_grows_with_each_retrain_and_survives_a_restart(workspace):
    import numpy as np

    from tunelab.labelling.queue import text_classifier
    from tunelab.ui.labelling import Labelling
    from tunelab.ui.workspace import Workspace

    path, truth = texts_file(workspace, rows=120)
    labelling = Labelling(Workspace(workspace))
    found = labelling.state(path, LABELS, "me", holdout=10, target=0.95)
    assert found["history"] == {"metric": "accuracy", "target": 0.95, "points": []}
    queue = labelling.session(path, LABELS, holdout=10).queue
    points: list[dict[str, Any]] = []
    for _ in range(90):  # retrains at 10 labels, then every 20: the last label retrains
        trained, before = queue.labels_at_training, len(points)
        item = found["current"]["item"]
        found = labelling.label(path, LABELS, "me", item, truth[item], holdout=10, target=0.95)
        points = found["history"]["points"]
        assert points == queue.progress  # what the queue measured, nothing else
        grew, retrained = len(points) - before, queue.labels_at_training != trained
        assert grew in (0, 1) and (grew == 0 or retrained)  # a point a retrain, none between
    assert queue.labels_at_training == len(queue.labels) == 90
    assert [p["labels"] for p in points] == [40, 60, 80]  # training labels: held-out ones not
    assert [p["held_out"] for p in points] == [10, 10, 10]

    # the last point is the accuracy on the held-out texts of a model trained on the rest
    training = queue.training_items()
    held = [item for item in queue.labels if queue.held_out[queue.row_of[item]]]
    model = text_classifier(queue.seed).fit(queue.vectors[[queue.row_of[i] for i in training]],
                                            [queue.labels[i] for i in training])  # fmt: skip
    predicted = model.predict(queue.vectors[[queue.row_of[i] for i in held]])
    accuracy = float(np.mean(predicted == np.array([queue.labels[i] for i in held])))
    assert (points[-1]["labels"], points[-1]["score"]) == (len(training), round(accuracy, 4))

    # a restarted server replays the journal through the same retrains: the same history
    again = Labelling(Workspace(workspace)).state(path, LABELS, "me", holdout=10, target=0.95)
    assert again["history"]["points"] == points
    assert labelling.state(path, LABELS, "me")["history"] is None  # no held-out sample


def test_double_labelled_entities_show_span_f1_and_no_review(client, workspace):
    (workspace / "uploads").mkdir(parents=True, exist_ok=True)
    lines = [f"张伟{i}日到北京开会。" for i in range(6)]
    (workspace / "uploads" / "news.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = "uploads/news.txt"

    def send(route: str, **extra: Any) -> dict[str, Any]:
        return post(client, route, path, labels="PER,LOC", entities=True, double_rate=1.0,
                    **extra)  # fmt: skip

    ann = send("state", annotator="ann")
    first = ann["current"]["item"]
    send("label", annotator="ann", item=first, spans=[[0, 2, "PER"], [5, 7, "LOC"]])
    bob = send("state", annotator="bob")
    assert bob["current"]["item"] == first  # the second opinion, blind
    bob = send("label", annotator="bob", item=first, spans=[[0, 2, "PER"]])
    shown = bob["agreement"]
    assert shown["pairs"][0]["span_f1"] == round(2 * 1 / 3, 4) and shown["to_review"] == 0
    assert shown["line"] == ("1 texts labelled twice; span F1 0.67 (ann / bob, 1 texts); 1 "
                             "texts marked differently")  # fmt: skip
    refused = client.post("/api/label/review", json={"path": path, "labels": "PER,LOC",
                                                     "entities": True})  # fmt: skip
    assert refused.status_code == 400 and "entity spans have no review yet" in refused.text


def test_double_labelling_agreement_and_the_review_of_disagreements(client, workspace):
    from tunelab.labelling.journal import LabelJournal
    from tunelab.labelling.session import journal_agreement, review_queue

    path, truth = texts_file(workspace)
    other = {"positive": "negative", "negative": "positive"}
    ann: list[str] = []
    found = post(client, "state", path, annotator="ann", double_rate=1.0)
    assert found["command"].endswith("--annotator ann --double-rate 1")
    for _ in range(3):
        ann.append(found["current"]["item"])
        found = post(client, "label", path, annotator="ann", item=ann[-1], label=truth[ann[-1]],
                     double_rate=1.0)  # fmt: skip
    assert found["agreement"] is None  # nothing labelled twice yet

    # bob is asked ann's texts again, blind, and disagrees on the first and the third
    bob = post(client, "state", path, annotator="bob", double_rate=1.0)
    for n, item in enumerate(ann):
        assert bob["current"]["item"] == item and bob["current"]["guess"] is None
        assert bob["current"]["reason"].startswith("second opinion: another annotator")
        label = truth[item] if n == 1 else other[truth[item]]
        bob = post(client, "label", path, annotator="bob", item=item, label=label, double_rate=1.0)
    shown = bob["agreement"]
    expected = journal_agreement(workspace / bob["journal"])  # what tunelab label agreement says
    assert shown["pairs"] == expected["pairs"] and shown["double_labelled"] == 3
    assert (shown["disagreements"], shown["to_review"]) == (2, 2)
    kappa = expected["pairs"][0]["kappa"]
    assert shown["line"] == (f"3 texts labelled twice; Cohen's kappa {kappa:.2f} (ann / bob, "
                             "3 texts); 2 disagreements to review")  # fmt: skip

    # the reviewer walks the disagreements in item order; s puts one off for this pass
    first, third = sorted([ann[0], ann[2]])
    review = post(client, "review", path, annotator="lead", double_rate=1.0)
    assert review["pending"] == 2 and review["current"]["item"] == first
    assert review["current"]["given"] == {"ann": truth[first], "bob": other[truth[first]]}
    assert review["command"] == ("tunelab label review uploads/texts.csv --labels "
                                 "positive,negative --journal uploads/texts.journal.jsonl --out "
                                 "uploads/texts.labelled.csv --reviewer lead")  # fmt: skip
    assert post(client, "review", path, annotator="lead", later=[first])["current"]["item"] == third
    body = {"path": path, "labels": LABELS, "item": first, "annotator": "lead"}
    wrong = client.post("/api/label/settle", json={**body, "label": "neutral"})
    assert wrong.status_code == 400 and wrong.json() == {"field": "label", "error": "error: label "
                                                         "'neutral' is not one of: positive, "
                                                         "negative; use one of them"}  # fmt: skip
    decided = truth[first]  # ann's, not the latest label: the decision wins over it
    done = post(client, "settle", path, annotator="lead", item=first, label=decided,
                double_rate=1.0)  # fmt: skip
    assert done["done"] == f"settled {first}: {decided}"
    assert done["pending"] == 1 and done["current"]["item"] == third
    assert done["agreement"]["to_review"] == 1 and done["agreement"]["double_labelled"] == 3
    assert downloaded(client, done)[first] == decided
    journal = LabelJournal(workspace / done["journal"])
    assert journal.records()[-1] == {**journal.records()[-1], "item": first, "label": decided,
                                     "annotator": "lead", "role": "review"}  # fmt: skip
    assert [entry["item"] for entry in review_queue(journal)] == [third]  # as the CLI sees it
    again = client.post("/api/label/settle", json={**body, "label": decided})
    assert (
        again.status_code == 400 and "has no disagreement left to settle" in again.json()["error"]
    )
    assert (
        post(client, "state", path, annotator="ann", double_rate=1.0)["agreement"]["to_review"] == 1
    )

    refused = client.post("/api/label/review", json={"path": path, "labels": "PER,LOC",
                                                     "entities": True})  # fmt: skip
    assert refused.status_code == 400 and refused.json()["field"] == "label"
    assert "entity spans have no review yet" in refused.json()["error"]


def test_a_fit_that_ends_while_an_answer_is_built_keeps_the_page_asking(workspace, monkeypatch):
    # a fit that finished while a label's answer was put together was installed by the
    # answer's own "retraining?" question, asked after the measurements had been read: the
    # page got the old chart with "not retraining", and never asked for the new point
    import threading

    from tunelab.ui import labelling as labelling_module
    from tunelab.ui.labelling import Labelling
    from tunelab.ui.workspace import Workspace

    path, truth = texts_file(workspace, rows=120)
    labelling = Labelling(Workspace(workspace))
    found = labelling.state(path, LABELS, "me", holdout=10, target=0.95)
    queue = labelling.session(path, LABELS, holdout=10).queue
    while len(queue.progress) < 1:  # synchronous retrains up to the first measurement
        item = found["current"]["item"]
        found = labelling.label(path, LABELS, "me", item, truth[item], holdout=10)

    # from here the fit runs in its thread and ends just as the answer reads the measurements
    release, fit, read = threading.Event(), LabelQueue._fit, labelling_module.progress_line

    def fit_when_released(self: LabelQueue, labels: dict) -> Any:
        release.wait(30)
        return fit(self, labels)

    def progress_line_as_the_fit_ends(queue: LabelQueue, target: float) -> Any:
        if queue._fitting is not None:
            release.set()
            queue._fitting.join()
        return read(queue, target)

    monkeypatch.setattr(LabelQueue, "_start_fit", THREADED_START_FIT)
    monkeypatch.setattr(LabelQueue, "_fit", fit_when_released)
    monkeypatch.setattr(labelling_module, "progress_line", progress_line_as_the_fit_ends)
    for _ in range(queue.retrain_every):
        item = found["current"]["item"]
        found = labelling.label(path, LABELS, "me", item, truth[item], holdout=10)
    assert len(found["history"]["points"]) == 1  # read before the fit was done
    assert found["retraining"] is True  # so the page asks again
    polled = labelling.progress(path, LABELS, holdout=10, target=0.95)  # the page asks again
    assert polled["retraining"] is False
    assert len(polled["history"]["points"]) == 2 and polled["history"]["points"] == queue.progress
