"""Several training files (--data FILE --data FILE, data.extra_train) train as one table."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tunelab.config import RunConfig, build_config
from tunelab.errors import UserError
from tunelab.tasks.generation import CausalGeneration
from tunelab.tasks.text_classification import TextClassification
from tunelab.training.prepare import load_splits


def write_alpaca(path: Path) -> Path:
    rows = [{"instruction": f"Say {word}.", "input": "", "output": word}
            for word in ("red", "blue", "green", "gold")]  # fmt: skip
    path.write_text(json.dumps(rows), "utf-8")
    return path


def write_sharegpt(path: Path) -> Path:
    chats = [{"conversations": [{"from": "human", "value": f"Count to {n}."},
                                {"from": "gpt", "value": " ".join(map(str, range(1, n + 1)))}]}
             for n in (2, 3, 4)]  # fmt: skip
    chats.append(
        {"conversations": [{"from": "human", "value": "Say red."}, {"from": "gpt", "value": "red"}]}
    )  # as in the Alpaca file
    path.write_text("".join(json.dumps(c) + "\n" for c in chats), "utf-8")
    return path


def config(train: Path, *extra: Path) -> RunConfig:
    data = {"train": str(train), "extra_train": [str(p) for p in extra],
            "split": {"validation": 0.0, "test": 0.0}}  # fmt: skip
    return build_config({"task": "causal-lm", "data": data})


def test_alpaca_and_sharegpt_files_mix_into_one_training_table(tmp_path):
    alpaca = write_alpaca(tmp_path / "alpaca.json")
    sharegpt = write_sharegpt(tmp_path / "chats.jsonl")
    run = config(alpaca, sharegpt)
    splits, report = load_splits(run, CausalGeneration.from_run_config(run))
    train = splits["train"]
    assert report["rows_before"]["train"] == 8
    assert train.index.is_unique and list(train.index[:4]) == [1, 2, 3, 4]  # the first's own
    # the chat that repeats an Alpaca row is one row twice: cleaning drops it across files
    assert len(train) == 7 and report["cleaning"]["train"]["duplicates"] == 1
    chats = [m for m in train["messages"] if isinstance(m, list)]
    assert len(chats) == 3 and chats[0][0]["content"] == "Count to 2."
    assert train.attrs["source"].endswith("alpaca.json + " + str(sharegpt))


def test_a_classification_file_without_the_label_column_is_named(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    pd.DataFrame({"text": ["good", "bad"] * 10, "label": ["pos", "neg"] * 10}).to_csv(
        first, index=False
    )
    pd.DataFrame({"text": ["fine"], "stars": [4]}).to_csv(second, index=False)
    run = build_config({"task": "text-classification",
                        "data": {"train": str(first), "extra_train": [str(second)]}})  # fmt: skip
    with pytest.raises(UserError, match=r"b\.csv.*label"):
        load_splits(run, TextClassification.from_run_config(run))


def test_data_given_twice_on_the_command_line_is_mixed(tmp_path, monkeypatch):
    from tunelab import api
    from tunelab.cli import app

    seen = {}

    def train(run_config, **kwargs):
        seen["data"] = run_config.data
        raise UserError("stopped here")

    monkeypatch.setattr(api, "train", train)
    a, b, c = (tmp_path / name for name in ("a.json", "b.jsonl", "c.csv"))
    done = CliRunner().invoke(app, ["train", "--data", str(a), "--data", str(b), "--data", str(c)])
    assert str(done.exception) == "stopped here"
    assert seen["data"].train == a and seen["data"].extra_train == [b, c]
    CliRunner().invoke(app, ["train", "--data", str(a)])
    assert seen["data"].extra_train == []


def test_the_doctor_checks_several_training_files_as_train_mixes_them(tmp_path):
    from tunelab.cli import app

    alpaca = write_alpaca(tmp_path / "alpaca.json")
    sharegpt = write_sharegpt(tmp_path / "chats.jsonl")
    report = tmp_path / "report.json"
    done = CliRunner().invoke(app, ["doctor", str(alpaca), str(sharegpt), "--report", str(report)])
    assert done.exit_code == 0, done.output
    assert "causal-lm checks, as tunelab train makes them (train 8 rows)" in done.output
    found = json.loads(report.read_text())
    assert found["rows"] == {"train": 8}
    assert found["doctor"]["targets"]["train"]["duplicate_pairs"] == 1  # across the files


def test_the_doctor_checks_classification_files_one_at_a_time(tmp_path):
    from tunelab.cli import app

    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    for path in (first, second):
        pd.DataFrame({"text": ["good", "bad"] * 10, "label": ["pos", "neg"] * 10}).to_csv(
            path, index=False
        )
    done = CliRunner().invoke(app, ["doctor", str(first), str(second)])
    assert "check text-classification files one at a time" in str(done.exception)
