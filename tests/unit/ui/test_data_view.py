"""The Data page's answers: the file as the loader reads it, the column mapping checked by the
task, the doctor and its fix; every error is the CLI's line for the same input."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import make_reviews
from tests.unit.ui.conftest import cli_line


def test_preview_shows_the_file_as_the_loader_reads_it(client, workspace):
    frame = make_reviews(30).rename(columns={"text": "review", "label": "sentiment"})
    frame.insert(0, "id", range(30))
    (workspace / "uploads" / "gbk.csv").write_bytes(frame.to_csv(index=False, sep=";")
                                                   .encode("gbk"))  # fmt: skip
    found = client.post("/api/data/preview", json={"path": "uploads/gbk.csv"}).json()
    assert (found["format"], found["encoding"], found["delimiter"]) == ("csv", "gb18030", ";")
    assert found["rows"] == 30 and found["columns"] == ["id", "review", "sentiment"]
    assert found["head"][0] == ["0", frame["review"][0], frame["sentiment"][0]]
    assert len(found["head"]) == 20 and found["row_numbers"][:2] == [1, 2]
    # the guesses: the longest texts for the text, the fewest values for the label
    assert {m["key"]: m["column"] for m in found["mapping"]} == {
        "data.text_column": "review", "data.label_column": "sentiment"}  # fmt: skip
    assert found["guessed"] and found["check"]["ok"]
    assert 'data.text_column="review"' in found["check"]["overrides"]


def test_preview_of_a_folder_of_split_files_shows_its_training_file(client, workspace):
    folder = workspace / "uploads" / "reviews"
    folder.mkdir(parents=True)
    make_reviews(30).to_csv(folder / "train.csv", index=False)
    make_reviews(8).to_csv(folder / "test.csv", index=False)
    found = client.post("/api/data/preview", json={"path": "uploads/reviews"}).json()
    assert found["rows"] == 30 and found["columns"] == ["text", "label"]
    assert found["check"]["ok"] and 'data.train="uploads/reviews"' in found["check"]["overrides"]


def test_a_mapping_to_a_missing_column_gives_the_clis_line(
    client, uploaded, workspace, monkeypatch, capsys
):
    mapping = {"data.text_column": "body", "data.label_column": "label"}
    found = client.post("/api/data/preview", json={"path": uploaded, "mapping": mapping}).json()
    assert found["check"]["ok"] is False and found["check"]["field"] == "data.text_column"
    monkeypatch.chdir(workspace)  # the page's commands run from the workspace
    line = cli_line(["train", "--data", uploaded, "--text-column", "body"], monkeypatch, capsys)
    assert found["check"]["error"] == line
    assert line.startswith("error: uploads/reviews.csv has no column 'body' (set by "
                           "data.text_column); its columns are: text, label")  # fmt: skip


def test_a_binary_upload_gives_the_clis_line_next_to_the_file(
    client, workspace, monkeypatch, capsys
):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    assert client.put("/api/files/photo.csv", content=png).status_code == 200
    answer = client.post("/api/data/preview", json={"path": "uploads/photo.csv"})
    assert answer.status_code == 400
    assert answer.json()["field"] == "data.train"
    monkeypatch.chdir(workspace)
    line = cli_line(["train", "--data", "uploads/photo.csv"], monkeypatch, capsys)
    assert answer.json()["error"] == line
    assert "is not a text file (it is a PNG image)" in line


def test_the_task_decides_the_columns_to_map(client, workspace):
    rows = [{"prompt": "a", "completion": "b"}] * 5
    pd.DataFrame(rows).to_json(workspace / "uploads" / "pairs.jsonl", orient="records",
                               lines=True)  # fmt: skip
    found = client.post(
        "/api/data/preview", json={"path": "uploads/pairs.jsonl", "task": "causal-lm"}
    ).json()
    assert [m["key"] for m in found["mapping"]] == [
        "generation.source_column", "generation.target_column"]  # fmt: skip
    assert found["check"]["ok"]  # the task reads prompt/completion as they are
    unknown = client.post("/api/data/preview", json={"path": "uploads/pairs.jsonl",
                                                     "task": "poetry"})  # fmt: skip
    assert unknown.status_code == 400 and "is not a task tunelab knows" in unknown.json()["error"]


def test_the_doctor_and_its_fix_match_the_cli(client, workspace, monkeypatch, capsys):
    frame = make_reviews(120)
    frame = pd.concat([frame, frame.iloc[:4], pd.DataFrame([{"text": frame.text[0],
                                                            "label": "negative"}])])  # fmt: skip
    (workspace / "uploads" / "raw.csv").write_text(frame.to_csv(index=False), encoding="utf-8")
    found = client.post("/api/data/doctor", json={"path": "uploads/raw.csv", "fix": True}).json()
    assert found["command"] == (
        "tunelab doctor uploads/raw.csv --text-column text --label-column label --report "
        ".tunelab-ui/doctor/raw.json --fix --out cleaned/raw.clean.csv"
    )
    duplicates = found["report"]["splits"]["train"]["duplicates"]
    assert duplicates["exact_duplicates"] == 5 and duplicates["examples"][0]["rows"][0] == 1
    assert found["report"]["splits"]["train"]["conflicts"]["conflicting_texts"] == 1
    assert found["fixed"] == "cleaned/raw.clean.csv"
    cleaned = pd.read_csv(workspace / found["fixed"])
    assert len(cleaned) == found["report"]["fix"]["rows_after"] < len(frame)
    monkeypatch.chdir(workspace)
    (workspace / found["fixed"]).unlink()
    monkeypatch.setattr("sys.argv", ["tunelab", *found["command"].split()[1:]])
    from tunelab import cli

    with pytest.raises(SystemExit) as stop:
        cli.main()  # the shown command does what the page did
    assert stop.value.code in (0, None)
    assert pd.read_csv(workspace / found["fixed"]).equals(cleaned)
    printed = capsys.readouterr().out.strip()
    assert printed.split("(doctor took")[0] == found["text"].split("(doctor took")[0]
    download = client.get(f"/files/{found['fixed']}?download=true")
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]


def test_the_doctor_checks_other_tasks_as_training_does(client, workspace):
    pairs = pd.DataFrame({"source": ["open the file", "close it", "open the file"] * 4,
                          "target": ["打开文件", "关闭它", "打开文件"] * 4})  # fmt: skip
    pairs.to_json(workspace / "uploads" / "pairs.jsonl", orient="records", lines=True,
                  force_ascii=False)  # fmt: skip
    found = client.post("/api/data/doctor",
                        json={"path": "uploads/pairs.jsonl", "task": "seq2seq"}).json()  # fmt: skip
    assert found["text"].startswith("seq2seq checks, as tunelab train makes them (train 12 rows)")
    assert found["report"]["task"] == "seq2seq" and found["report"]["rows"] == {"train": 12}
    assert found["command"].startswith("tunelab doctor uploads/pairs.jsonl --task seq2seq")
    info = client.get("/api/info").json()  # the page offers the fix where there is one
    assert "seq2seq" in info["doctor_tasks"]
    assert info["doctor_fixes"] == ["text-classification", "token-classification"]
    asked = {"path": "uploads/pairs.jsonl", "task": "seq2seq", "fix": True}
    fixing = client.post("/api/data/doctor", json=asked)
    assert (
        fixing.status_code == 400
        and "--fix is offered for texts and tags" in (fixing.json()["error"])
    )


def test_the_doctor_refuses_tasks_it_does_not_know(client, uploaded):
    answer = client.post("/api/data/doctor", json={"path": uploaded, "task": "sentiment"})
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(
        "error: the doctor does not know task 'sentiment'; use text-classification or "
    )


def test_model_suggestions_follow_the_data(client, uploaded):
    found = client.post("/api/recommend", json={"path": uploaded}).json()
    assert (found["language"], found["examples"], found["classes"]) == ("zh", 120, 2)
    assert found["command"] == (
        "tunelab recommend --task text-classification --language zh --examples 120 --classes 2"
    )
    models = [o["model"] for o in found["options"]]
    assert "zh-bert-mini" in models
    assert {"full", "lora"} <= set(found["options"][0]["memory_bytes"])
