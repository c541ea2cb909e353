"""Agreement, Label Studio / doccano round trips, and `tunelab label` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tunelab.cli import app
from tunelab.errors import UserError
from tunelab.labelling.agreement import agreement, fleiss_kappa
from tunelab.labelling.formats import (
    export_doccano,
    export_label_studio,
    import_doccano,
    import_label_studio,
)

# the sessions here retrain before a label returns: scripted answers come faster than a fit
pytestmark = pytest.mark.usefixtures("sync_retrains")


def test_kappa_on_double_labelled_items_and_the_disagreements() -> None:
    labels = {"1": {"a": "pos", "b": "pos"}, "2": {"a": "neg", "b": "neg"},
              "3": {"a": "pos", "b": "neg"}, "4": {"a": "neg", "b": "neg"},
              "5": {"a": "pos"}}  # fmt: skip
    result = agreement(labels)
    assert result["double_labelled"] == 4
    [pair] = result["pairs"]
    assert pair["annotators"] == ["a", "b"] and pair["items"] == 4 and pair["agreement"] == 0.75
    assert pair["kappa"] == pytest.approx(0.5)  # po 0.75, pe 0.5
    assert result["disagreements"] == [{"item": "3", "labels": {"a": "pos", "b": "neg"}}]
    # two annotators: Fleiss' kappa is Scott's pi, chance from the pooled shares 3/8 and 5/8
    assert result["annotators"] == 2
    assert result["fleiss_kappa"] == pytest.approx((0.75 - 34 / 64) / (1 - 34 / 64), abs=1e-4)


def test_entity_spans_agree_by_span_f1_in_any_order() -> None:
    labels = {
        "1": {"a": [(0, 2, "PER"), (5, 7, "LOC")], "b": [(5, 7, "LOC"), (0, 2, "PER")]},
        "2": {"a": [(0, 2, "PER")], "b": [(0, 3, "PER")]},  # one span each, not the same
        "3": {"a": [], "b": []},
        "4": {"a": [(1, 2, "LOC")]},
    }
    result = agreement(labels)
    [pair] = result["pairs"]
    assert pair["items"] == 3 and pair["agreement"] == round(2 / 3, 4)
    assert pair["span_f1"] == round(2 * 2 / (3 + 3), 4) and pair["kappa"] is None
    assert result["fleiss_kappa"] is None
    assert [d["item"] for d in result["disagreements"]] == ["2"]


def test_fleiss_kappa_of_fleiss_1971_and_with_uneven_annotators() -> None:
    # the worked example of Fleiss (1971): 10 items, 14 raters each, 5 categories -> 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
             [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
             [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]  # fmt: skip
    items = [[c for c, n in zip("abcde", row, strict=True) for _ in range(n)] for row in table]
    assert fleiss_kappa(items) == pytest.approx(0.210, abs=1e-3)
    # three annotators on some texts, two on others; texts one annotator labelled are left out
    labels = {"1": {"a": "pos", "b": "pos", "c": "pos"}, "2": {"a": "neg", "b": "neg"},
              "3": {"a": "pos", "b": "neg", "c": "neg"}, "4": {"c": "pos"}}  # fmt: skip
    result = agreement(labels)
    # agreement per text 1, 1, 1/3; pooled shares pos 4/8, neg 4/8 -> chance 0.5
    assert result["annotators"] == 3 and result["double_labelled"] == 3
    assert result["fleiss_kappa"] == pytest.approx(((1 + 1 + 1 / 3) / 3 - 0.5) / 0.5, abs=1e-4)
    assert fleiss_kappa([["x", "x"], ["x", "x", "x"]]) == 1.0 and fleiss_kappa([["x"]]) is None


def test_label_studio_round_trip(tmp_path: Path) -> None:
    texts = {"r1": "质量很好", "r2": "太差了", "r3": "还行"}
    labels = {"r1": {"ann": "pos", "bob": "pos"}, "r2": {"ann": "neg"}}
    path = tmp_path / "ls.json"
    assert export_label_studio(path, texts, labels, predictions={"r3": ("pos", 0.61)}) == 3
    tasks = json.loads(path.read_text())
    assert tasks[2]["predictions"][0]["result"][0]["value"] == {"choices": ["pos"]}
    rows = import_label_studio(path)
    assert [(r["id"], r["text"], r["label"], r["annotator"]) for r in rows] == [
        ("r1", "质量很好", "pos", "ann"), ("r1", "质量很好", "pos", "bob"),
        ("r2", "太差了", "neg", "ann"), ("r3", "还行", None, None)]  # fmt: skip


def test_doccano_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    assert export_doccano(path, {"1": "好", "2": "差"}, {"1": "pos", "2": "neg"}) == 2
    rows = import_doccano(path)
    assert [(r["id"], r["text"], r["label"]) for r in rows] == [("1", "好", "pos"),
                                                                ("2", "差", "neg")]  # fmt: skip


def test_another_task_type_is_one_clear_error(tmp_path: Path) -> None:
    ner = [{"id": 9, "data": {"text": "张三在北京"}, "annotations": [{"result": [
        {"type": "labels", "value": {"start": 0, "end": 2, "labels": ["PER"]}}]}]}]  # fmt: skip
    (tmp_path / "ner.json").write_text(json.dumps(ner))
    with pytest.raises(UserError, match=r"ner.json task 9 has Label Studio annotations of type "
                                        r"'labels'.*export a classification project"):  # fmt: skip
        import_label_studio(tmp_path / "ner.json")
    (tmp_path / "spans.jsonl").write_text('{"text": "张三", "label": [[0, 2, "PER"]]}\n')
    with pytest.raises(UserError, match=r"spans.jsonl line 1 has span labels"):
        import_doccano(tmp_path / "spans.jsonl")
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(UserError, match=r"empty\.json is empty"):
        import_label_studio(tmp_path / "empty.json")


def _data(tmp_path: Path) -> Path:
    rows = ["id,text,label"]
    for i in range(60):
        good = i % 2 == 0
        rows.append(
            f"{i},{'质量很好 物流快' if good else '质量太差 退货'}{i}号,{'pos' if good else 'neg'}"
        )
    (tmp_path / "pool.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return tmp_path / "pool.csv"


def test_cli_simulate_export_import_agreement(tmp_path: Path) -> None:
    data, journal = _data(tmp_path), tmp_path / "j.jsonl"
    runner = CliRunner()
    common = ["--labels", "pos,neg", "--journal", str(journal)]
    result = runner.invoke(app, ["label", "run", str(data), *common, "--simulate", "--budget",
                                 "30", "--clusters", "4", "--retrain-every", "5",
                                 "--output", str(tmp_path / "out.csv")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        result.output.count("labelled ") == 30 and "(cold start: cluster 1 of 4)" in result.output
    )
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 31
    ls = tmp_path / "ls.json"
    result = runner.invoke(app, ["label", "export", str(data), "--journal", str(journal),
                                 "--out", str(ls)])  # fmt: skip
    assert result.exit_code == 0 and "wrote 60 tasks" in result.output
    tasks = json.loads(ls.read_text())
    for task in tasks:  # a second annotator disagrees on every 'pos'
        for annotation in task["annotations"]:
            annotation["completed_by"] = "bob"
            annotation["result"][0]["value"]["choices"] = ["neg"]
    ls.write_text(json.dumps(tasks))
    result = runner.invoke(app, ["label", "import", str(ls), *common])
    assert result.exit_code == 0 and "added 30 labels" in result.output
    result = runner.invoke(app, ["label", "agreement", "--journal", str(journal)])
    report = json.loads(result.output)
    assert report["double_labelled"] == 30 and report["pairs"][0]["agreement"] < 1
    assert len(report["disagreements"]) == sum(
        1 for t in tasks if t["annotations"] and int(t["data"]["tunelab_id"]) % 2 == 0
    )


def test_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    from tunelab.cli import main

    (tmp_path / "empty.csv").write_text("")
    data = _data(tmp_path)
    cases = [
        (["label", "run", str(tmp_path / "empty.csv"), "--labels", "pos,neg", "--simulate"],
         "empty.csv is empty"),
        (["label", "run", str(data), "--labels", "pos,meh", "--simulate",
          "--journal", str(tmp_path / "j.jsonl")], "label 'neg', which is not one of --labels"),
        (["label", "run", str(data), "--labels", "pos"], "fewer than two labels"),
    ]  # fmt: skip
    for argv, expected in cases:
        sys.argv = ["tunelab", *argv]
        with pytest.raises(SystemExit) as stop:
            main()
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0]


def test_cli_bad_input_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    from tunelab.cli import main

    data = _data(tmp_path)
    sys.argv = ["tunelab", "label", "run", str(data), "--labels", "pos,meh", "--simulate",
                "--journal", str(tmp_path / "j.jsonl")]  # fmt: skip
    with pytest.raises(SystemExit):
        main()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has label 'neg', which is not one of --labels pos,meh" in err[0]


def test_cli_review_settles_disagreements_and_the_decision_wins(tmp_path: Path) -> None:
    from tunelab.labelling.journal import LabelJournal

    data, journal_path, out = _data(tmp_path), tmp_path / "j.jsonl", tmp_path / "out.csv"
    journal = LabelJournal(journal_path)
    for item, (a, b) in {"1": ("pos", "neg"), "2": ("neg", "pos"), "3": ("pos", "pos")}.items():
        journal.label(item, a, annotator="ann")
        journal.label(item, b, annotator="bob")
    review = ["label", "review", str(data), "--labels", "pos,neg", "--journal",
              str(journal_path), "--out", str(out), "--reviewer", "lead"]  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(app, review, input="9\nmeh\n1\nq\n")  # two bad answers, then pos
    assert result.exit_code == 0, result.output
    assert "ann: pos, bob: neg" in result.output and "no label number 9" in result.output
    assert "label 'meh' is not one of: pos, neg" in result.output
    assert "1 disagreements settled" in result.output
    assert "[2]" in result.output and "[3]" not in result.output  # agreed items are not asked
    again = LabelJournal(journal_path)
    assert again.labels() == {"1": "pos", "2": "pos", "3": "pos"}  # 2: bob's, the latest
    assert again.records()[-1] == {**again.records()[-1], "item": "1", "role": "review",
                                   "annotator": "lead"}  # fmt: skip
    result = runner.invoke(app, review, input="neg\n")  # only item 2 is left
    assert "[1]" not in result.output and "1 disagreements settled" in result.output
    assert LabelJournal(journal_path).labels()["2"] == "neg"
    assert "2,质量很好 物流快2号,neg" in out.read_text(encoding="utf-8")
    assert "no disagreements to review" in runner.invoke(app, review).output
    # agreement still compares the annotators, never the reviewer
    report = json.loads(runner.invoke(app, ["label", "agreement", "--journal",
                                            str(journal_path)]).output)  # fmt: skip
    assert report["double_labelled"] == 3 and len(report["disagreements"]) == 2


def test_cli_holdout_reports_the_model_and_the_estimate(tmp_path: Path) -> None:
    data = _data(tmp_path)
    result = CliRunner().invoke(app, ["label", "run", str(data), "--labels", "pos,neg",
                                      "--journal", str(tmp_path / "j.jsonl"), "--simulate",
                                      "--budget", "50", "--clusters", "4", "--retrain-every",
                                      "5", "--holdout", "10", "--target", "0.95",
                                      "--out", str(tmp_path / "out.csv")])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert result.output.count("(held-out sample, ") == 10
    assert summary["held_out"][-1]["held_out"] == 10 and summary["held_out"][-1]["labels"] <= 40
    assert summary["estimate"]["target"] == 0.95 and summary["estimate"]["message"]
