"""The queue: cold start by clusters, uncertainty with diversity, near-duplicates, leases."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tunelab.data.normalize import normalized_text
from tunelab.errors import UserError
from tunelab.labelling import queue as queue_module
from tunelab.labelling.queue import LabelQueue, read_unlabelled

GOOD = [
    "质量很好",
    "物流很快",
    "非常满意",
    "值得购买",
    "服务周到",
    "包装精美",
    "性价比高",
    "推荐给朋友",
]
BAD = [
    "质量太差",
    "物流很慢",
    "非常失望",
    "不值这个价",
    "服务恶劣",
    "包装破损",
    "退货麻烦",
    "再也不买",
]


def pool(copies: int = 3) -> tuple[pd.DataFrame, dict[str, str]]:
    """Short reviews, each with near-duplicates (punctuation, case, full-width forms)."""
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for i in range(120):
        good = i % 2 == 0
        words = rng.choice(GOOD if good else BAD, size=3, replace=False)
        base = "，".join(words) + f"{i}"
        for variant in (base, base + "！！", base.replace("，", " ") + "。")[:copies]:
            texts.append(variant)
            labels.append("pos" if good else "neg")
    items = pd.DataFrame({"id": [str(n) for n in range(len(texts))], "text": texts})
    return items, dict(zip(items["id"], labels, strict=True))


def test_no_near_duplicate_is_ever_asked_twice() -> None:
    items, oracle = pool()
    queue = LabelQueue(items, ["pos", "neg"], retrain_every=5, clusters=5)
    asked = []
    while suggestions := queue.next("ann", count=3):
        for suggestion in suggestions:
            asked.append(suggestion)
            queue.add_label(suggestion.item, oracle[suggestion.item])
    keys = [normalized_text(s.text) for s in asked]
    assert len(keys) == len(set(keys)) == 120  # one of each near-duplicate group, all groups
    assert [s.reason for s in asked[:5]] == [f"cold start: cluster {k} of 5" for k in range(1, 6)]
    assert any(s.reason.startswith("model unsure: ") for s in asked)
    unsure = next(s for s in asked if s.reason.startswith("model unsure: "))
    high, low = (float(x) for x in unsure.reason.removeprefix("model unsure: ").split(" vs "))
    assert high >= low and abs(high + low - 1) < 0.02 and unsure.guess in ("pos", "neg")


def test_a_batch_holds_no_near_copies_in_vector_space() -> None:
    items, oracle = pool(copies=1)
    queue = LabelQueue(items, ["pos", "neg"], retrain_every=5, clusters=4, max_similarity=0.5)
    for suggestion in queue.next("ann", count=12):
        queue.add_label(suggestion.item, oracle[suggestion.item])
    batch = queue.next("ann", count=6)
    rows = [queue.row_of[s.item] for s in batch]
    similarity = (queue.vectors[rows] @ queue.vectors[rows].T).toarray()
    assert (similarity[~np.eye(len(rows), dtype=bool)] < 0.5).all()


def test_leases_keep_two_annotators_apart_until_they_expire() -> None:
    items, _ = pool()
    now = [1000.0]
    queue = LabelQueue(items, ["pos", "neg"], clusters=4, lease_seconds=60, clock=lambda: now[0])
    mine = queue.next("ann", count=4)
    theirs = queue.next("bob", count=4)
    assert not {s.item for s in mine} & {s.item for s in theirs}
    mine_keys = {normalized_text(s.text) for s in mine}
    assert not mine_keys & {normalized_text(s.text) for s in theirs}
    assert [s.item for s in queue.next("ann", count=4)] == [s.item for s in mine]  # still mine
    now[0] += 61
    later = queue.next("bob", count=8)
    assert {s.item for s in mine} <= {s.item for s in later} | {s.item for s in theirs}
    queue.release(later[0].item)
    assert later[0].item in {s.item for s in queue.next("carol", count=8)}


def test_a_label_outside_the_set_is_one_clear_error() -> None:
    items, _ = pool(copies=1)
    queue = LabelQueue(items, ["pos", "neg"], clusters=2)
    with pytest.raises(UserError, match=r"label 'meh' is not one of: pos, neg"):
        queue.add_label("0", "meh")
    with pytest.raises(UserError, match="at least two labels"):
        LabelQueue(items, ["pos"])


def test_reading_texts_from_csv_jsonl_and_lines(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("好评\n\n差评\n", encoding="utf-8")
    assert read_unlabelled(tmp_path / "a.txt")["text"].tolist() == ["好评", "差评"]
    (tmp_path / "a.jsonl").write_text('{"id": "x", "text": "好"}\n{"id": "y", "text": "差"}\n')
    assert read_unlabelled(tmp_path / "a.jsonl")["id"].tolist() == ["x", "y"]
    (tmp_path / "a.csv").write_text("review\n好\n")
    assert read_unlabelled(tmp_path / "a.csv", "review")["id"].tolist() == ["1"]
    with pytest.raises(UserError, match=r"a.csv has no column 'text' \(columns: review\)"):
        read_unlabelled(tmp_path / "a.csv")
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(UserError, match=r"empty\.txt is empty"):
        read_unlabelled(tmp_path / "empty.txt")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(UserError, match=r"empty\.csv is empty"):
        read_unlabelled(tmp_path / "empty.csv")


def test_a_skipped_text_goes_to_the_others_and_stays_skipped_after_a_restart(
    tmp_path: Path,
) -> None:
    from tunelab.labelling.session import open_session, run_interactive

    items, _ = pool(copies=1)
    data = tmp_path / "texts.csv"
    items.to_csv(data, index=False)
    asked: list[str] = []
    answers = iter(["s", "1", "q"])

    def ask(suggestion: Any, labels: list[str]) -> str:
        asked.append(suggestion.item)
        return next(answers)

    options = {"clusters": 4, "data": data, "journal_path": tmp_path / "j.jsonl",
               "output": tmp_path / "out.csv", "label_set": ["pos", "neg"]}  # fmt: skip
    assert run_interactive(annotator="ann", ask=ask, echo=lambda _: None, **options) == 1
    skipped = asked[0]
    assert asked[1] != skipped  # not offered straight back
    _, _, queue = open_session(data, tmp_path / "j.jsonl", ["pos", "neg"], clusters=4)
    assert skipped not in {s.item for s in queue.next("ann", count=len(items))}
    assert skipped in {s.item for s in queue.next("bob", count=len(items))}


def test_a_share_of_labelled_texts_goes_blind_to_a_second_annotator(tmp_path: Path) -> None:
    from tunelab.labelling.session import give_label, open_session, undo_label

    items, oracle = pool(copies=1)
    items.to_csv(tmp_path / "texts.csv", index=False)
    journal_path = tmp_path / "j.jsonl"
    _, journal, queue = open_session(tmp_path / "texts.csv", journal_path, ["pos", "neg"],
                                     retrain_every=5, clusters=5, double_rate=0.5)  # fmt: skip
    ann = []
    for _ in range(30):
        [suggestion] = queue.next("ann")
        assert not suggestion.reason.startswith("second opinion")  # never her own texts
        give_label(journal, queue, suggestion.item, oracle[suggestion.item], "ann")
        ann.append(suggestion.item)
    due = [item for item in ann if queue.labelled_twice(item)]
    assert 5 < len(due) < 25  # about half, by the hash of the id

    # a restarted session (another process) asks the same texts of bob, blind, before new ones
    _, journal, queue = open_session(tmp_path / "texts.csv", journal_path, ["pos", "neg"],
                                     retrain_every=5, clusters=5, double_rate=0.5)  # fmt: skip
    asked = queue.next("bob", count=len(due) + 1)
    assert [s.item for s in asked[:-1]] == due and asked[-1].item not in ann
    assert all(s.guess is None and s.reason.startswith("second opinion") for s in asked[:-1])
    for suggestion in asked[:-1]:
        give_label(journal, queue, suggestion.item, oracle[suggestion.item], "bob")
    queue.release(asked[-1].item)
    assert queue.next("cy")[0].item not in ann  # twice is enough: no third opinion
    assert journal.state.by_annotator()[due[0]] == {"ann": oracle[due[0]], "bob": oracle[due[0]]}
    assert undo_label(journal, queue, "bob") == due[-1]  # bob takes his back: ann's stays
    assert journal.labels()[due[-1]] == oracle[due[-1]] and queue.labelled_by[due[-1]] == {"ann"}
    assert queue.next("bob")[0].item == due[-1]

    plain = LabelQueue(items, ["pos", "neg"], clusters=5)
    plain.add_label(ann[0], oracle[ann[0]], "ann")
    assert plain.next("bob")[0].item != ann[0]  # double_rate 0: nothing is asked twice
    with pytest.raises(UserError, match=r"--double-rate 1.5 is not between 0 and 1"):
        LabelQueue(items, ["pos", "neg"], double_rate=1.5)


def test_a_held_out_sample_measures_the_model_and_the_curve_says_how_many_more() -> None:
    from tunelab.labelling.simulate import simulate

    items, oracle = pool(copies=1)
    queue = LabelQueue(items, ["pos", "neg"], retrain_every=10, clusters=5, holdout=20)
    reasons: list[tuple[str, str, str | None]] = []
    simulate(queue, oracle, 100,
             on_label=lambda item, label, why: reasons.append((item, why, None)))  # fmt: skip
    held = [item for item in queue.labels if queue.held_out[queue.row_of[item]]]
    assert len(held) == 20  # one question in five until the sample is labelled
    assert all(why.startswith("held-out sample") == (item in held) for item, why, _ in reasons)
    assert queue.training_items() == [item for item in queue.labels if item not in held]
    assert len(queue.progress) >= 3
    sizes = [point["labels"] for point in queue.progress]
    assert sizes == sorted(sizes) and sizes[-1] <= 80  # trained without the held-out texts
    last = queue.progress[-1]
    measured = held[: last["held_out"]]  # those labelled by the last retrain
    truth = np.array([oracle[item] for item in measured])
    rows = [queue.row_of[item] for item in measured]
    assert 10 <= last["held_out"] <= 20
    assert last["score"] == round(
        float(np.mean(queue.model.predict(queue.vectors[rows]) == truth)), 4
    )
    assert "already reaches 0.5" in queue.estimate(0.5)["message"]
    # the estimate is the learning-curve fit of tunelab curve on the measurements
    queue.progress = [{"labels": n, "score": 0.9 - 0.9 * n**-0.5, "held_out": 20}
                      for n in (10, 20, 40, 80)]  # fmt: skip
    ahead = queue.estimate(0.85)
    assert ahead["labels"] == 320  # 0.9 - 0.9/sqrt(n) = 0.85 at n = 324, rounded to tens
    assert ahead["message"] == ("the learning curve says about 320 labels reach accuracy 0.85 "
                                f"(about {320 - len(queue.training_items())} more)")  # fmt: skip
    never = queue.estimate(0.95)
    assert never["labels"] is None and "levels off at 0.900" in never["message"]
    queue.progress = queue.progress[:2]
    assert "needs 3 measurements on the held-out sample (now 2)" in queue.estimate(0.85)["message"]
    # a held-out text is asked blind: no model guess to lean on
    fresh = LabelQueue(items, ["pos", "neg"], retrain_every=5, clusters=2, holdout=10)
    for _ in range(12):
        [suggestion] = fresh.next("ann")
        held_out = suggestion.reason.startswith("held-out sample")
        assert not (held_out and suggestion.guess is not None)
        fresh.add_label(suggestion.item, oracle[suggestion.item])
    with pytest.raises(UserError, match="--holdout -1 must be 0"):
        LabelQueue(items, ["pos", "neg"], holdout=-1)


def label_until_a_fit_runs(queue: LabelQueue, oracle: dict[str, str]) -> int:
    """Label the queue's questions until a background fit is under way; the labels given."""
    for given in range(1, 60):
        suggestion = queue.next("ann")[0]
        queue.add_label(suggestion.item, oracle[suggestion.item])
        if queue._fitting is not None and queue._fitting.is_alive():
            return given
    raise AssertionError("no background fit started in 60 labels")


def test_a_background_retrain_holds_up_no_label(monkeypatch: pytest.MonkeyPatch) -> None:
    items, oracle = pool(copies=1)
    queue = LabelQueue(items, ["pos", "neg"], retrain_every=5, clusters=4, background=True)
    release, real = threading.Event(), queue_module.text_classifier

    class HeldFit:  # a fit that waits until the test lets it go
        def __init__(self, seed: int = 0) -> None:
            self.model = real(seed)

        def fit(self, x: Any, y: Any) -> Any:
            assert release.wait(30)
            return self.model.fit(x, y)

    monkeypatch.setattr(queue_module, "text_classifier", HeldFit)
    snapshot = label_until_a_fit_runs(queue, oracle)
    for _ in range(8):  # labels and questions go on with no model while the fit waits
        suggestion = queue.next("ann")[0]
        assert not suggestion.reason.startswith("model unsure")
        queue.add_label(suggestion.item, oracle[suggestion.item])
    assert queue.model is None and queue._fitting is not None and queue._fitting.is_alive()
    release.set()
    queue.wait_for_model(30)
    # the model learnt the labels of the moment its fit started, not the 8 given since
    assert queue.model is not None and queue.labels_at_training == snapshot
    assert queue.next("ann")[0].reason.startswith("model unsure: ")
    suggestion = queue.next("ann")[0]
    queue.add_label(suggestion.item, oracle[suggestion.item])  # 9 past the model: fit again
    queue.wait_for_model(30)
    assert queue.labels_at_training == snapshot + 9


def test_a_failed_background_retrain_keeps_the_model_and_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    items, oracle = pool(copies=1)
    queue = LabelQueue(items, ["pos", "neg"], retrain_every=5, clusters=4, background=True)
    release = threading.Event()

    class FailingFit:
        def __init__(self, seed: int = 0) -> None:
            pass

        def fit(self, x: Any, y: Any) -> Any:
            assert release.wait(30)
            raise MemoryError("no room for the model")

    monkeypatch.setattr(queue_module, "text_classifier", FailingFit)
    given = label_until_a_fit_runs(queue, oracle)
    with caplog.at_level(logging.ERROR, logger="tunelab.labelling.queue"):
        release.set()
        queue.wait_for_model(30)
    assert queue.model is None and queue._fitting is None
    assert f"retraining the labelling model on {given} labels failed" in caplog.text
    assert "MemoryError" in caplog.text
    suggestion = queue.next("ann")[0]  # the next label tries again
    queue.add_label(suggestion.item, oracle[suggestion.item])
    assert queue._fitting is not None
    queue.wait_for_model(30)
