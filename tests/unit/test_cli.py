"""Flags read the same across the ``tunelab`` commands, and their help fits a terminal."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tunelab.cli import app
from tunelab.config import ModelConfig, field_description
from tunelab.errors import UserError
from tunelab.tasks import TASKS


def all_commands(group: Any, prefix: str = "") -> dict[str, Any]:
    commands = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group: `tunelab data ...`, `tunelab runs ...`
            commands.update(all_commands(command, f"{prefix}{name} "))
        else:
            commands[f"{prefix}{name}"] = command
    return commands


def test_every_output_option_is_spelled_output_and_accepts_out():
    commands = all_commands(typer.main.get_command(app))
    with_output = {
        name: param.opts
        for name, command in commands.items()
        for param in command.params
        if {"--out", "--output"} & set(param.opts)
    }
    assert {"train", "merge", "doctor", "curve", "data example"} <= set(with_output)
    for name, opts in with_output.items():
        assert opts[:2] == ["--output", "--out"], name


def test_init_writes_where_either_spelling_says(tmp_path):
    runner = CliRunner()
    for flag in ("--output", "--out"):
        target = tmp_path / f"{flag.strip('-')}.yaml"
        done = runner.invoke(app, ["init", flag, str(target)])
        assert done.exit_code == 0, done.output
        assert "task:" in target.read_text(encoding="utf-8")


def help_columns(text: str) -> list[int]:
    """Where the descriptions start in each option, argument or command list of a help page."""
    columns = []
    for line in text.splitlines():
        line = line.strip("│")  # rich's panels, should they come back
        if line.startswith("    ") and line.strip():  # a description's next line
            columns.append(len(line) - len(line.lstrip()))
        elif line.startswith("  ") and (gap := re.search(r"\S( {2,})\S", line)):
            columns.append(gap.end() - 1)  # an option and its description on one line
    return columns


@pytest.mark.parametrize("command", [*sorted(all_commands(typer.main.get_command(app))), ""])
def test_help_reads_in_an_80_column_terminal(command):
    done = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": "80"})
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert max(len(line) for line in lines) <= 80, done.output
    # every description keeps at least 40 columns, however long the option names
    assert max(help_columns(done.output)) <= 80 - 40, done.output


def test_option_help_is_the_config_keys_description():
    train = all_commands(typer.main.get_command(app))["train"]
    helps = {param.name: param.help for param in train.params}
    assert helps["label_separator"] == field_description("data.label_separator")
    assert helps["model"] == field_description("model.name")
    assert helps["trust_remote_code"] == ModelConfig.model_fields["trust_remote_code"].description
    with pytest.raises(KeyError):  # an option naming a key that is gone fails at import
        field_description("data.no_such_key")


def test_task_names_in_help_and_init_come_from_the_registry(monkeypatch, tmp_path):
    monkeypatch.setitem(TASKS, "toy-polarity", TASKS["text-classification"])
    runner = CliRunner()
    wide = {"terminal_width": 400, "max_content_width": 400}  # one line per option
    for command in ("train", "recommend"):
        done = runner.invoke(app, [command, "--help"], **wide)
        assert ", ".join(TASKS) in done.output and "toy-polarity" in done.output, done.output
    done = runner.invoke(app, ["doctor", "--help"], **wide)
    assert " or ".join(TASKS) in done.output and "toy-polarity" in done.output  # every task
    runner.invoke(app, ["init", "--output", str(tmp_path / "c.yaml")])
    task_line = (tmp_path / "c.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert task_line.startswith("task: text-classification  # what to train")
    assert task_line.endswith(", ".join(TASKS) + ")")


def test_an_unknown_task_names_the_option_and_the_choices(tmp_path):
    runner = CliRunner()
    done = runner.invoke(app, ["train", "--task", "sentiment", "--data", str(tmp_path / "a.csv")])
    assert isinstance(done.exception, UserError)
    assert str(done.exception) == (
        "--task 'sentiment' is not a task tunelab knows; choose one of " + ", ".join(TASKS)
    )
    done = runner.invoke(app, ["doctor", str(tmp_path / "a.csv"), "--task", "sentiment"])
    assert str(done.exception) == (
        "the doctor does not know task 'sentiment'; use " + " or ".join(TASKS)
    )


def test_tunelab_alone_prints_getting_started_then_the_commands():
    done = CliRunner().invoke(app, [], env={"COLUMNS": "80"})
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0] == "Getting started:" and lines[5] == ""
    started = "\n".join(lines[1:5])
    for step in ("tunelab data example zh-sentiment", "tunelab train --data", "runs/run/",
                 "report.html"):  # fmt: skip
        assert step in started, step
    assert "Commands:" in done.output and "  push " in done.output
    assert max(len(line) for line in lines) <= 80


@pytest.mark.parametrize("through_main", [True, False])
def test_the_command_freezes_the_collector_at_exit_but_not_before(through_main):
    """The interpreter's last collection skips frozen objects (a second saved at every exit);
    a caller that goes on after main() returns keeps its collector as it was."""
    import subprocess
    import sys

    script = (
        "import atexit, gc, sys\n"
        # registered first, so it runs last: it sees what the command's handler did
        "atexit.register(lambda: print('frozen at exit', gc.get_freeze_count() > 0))\n"
        "from tunelab.cli import main\n"
        "sys.argv = ['tunelab', '--help']\n"
        f"if {through_main}:\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    print('frozen after main', gc.get_freeze_count() > 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)  # fmt: skip
    lines = done.stdout.splitlines()
    assert f"frozen at exit {through_main}" in lines
    assert ("frozen after main False" in lines) is through_main


def test_the_doctor_reads_a_file_with_a_broken_line_once_and_counts_the_line(tmp_path, monkeypatch):
    import json

    import tunelab.data.load
    from tests.conftest import make_reviews

    data = tmp_path / "reviews.csv"
    rows = make_reviews(60).rename(columns={"text": "review", "label": "stars"})
    lines = rows.to_csv(index=False).splitlines()
    lines.insert(20, '"a line with one field too many",positive,extra')
    data.write_text("\n".join(lines) + "\n")
    reads = []
    read_table = tunelab.data.load.read_table

    def counted(path, *args, **kwargs):
        reads.append((str(path), kwargs.get("max_rows")))
        return read_table(path, *args, **kwargs)

    for module in ("tunelab.api", "tunelab.data.fix", "tunelab.training.guesses"):
        monkeypatch.setattr(f"{module}.read_table", counted)
    report = tmp_path / "report.json"
    done = CliRunner().invoke(app, ["doctor", str(data), "--report", str(report)])
    # the task is read from the first rows, the columns from the same table the doctor
    # checks: one whole read, and the broken line is counted (guessing used to read strictly
    # and stop at it)
    assert done.exit_code == 0, done.output
    assert reads == [(str(data), 10_000), (str(data), None)]
    train = json.loads(report.read_text())["splits"]["train"]
    assert train["rows"] == 60 and train["unparsable_lines"] == [21]
    # unlabelled: the text column is found by its name; --strict still stops at the line
    done = CliRunner().invoke(app, ["doctor", str(data), "--report", str(report),
                                    "--label-column", "none"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert json.loads(report.read_text())["splits"]["train"]["rows"] == 60
    done = CliRunner().invoke(app, ["doctor", str(data), "--report", str(report), "--strict"])
    assert "reviews.csv line 21 has 3 fields" in str(done.exception)
    # --fix writes the rows that parse and says what it left out
    clean = tmp_path / "clean.csv"
    done = CliRunner().invoke(app, ["doctor", str(data), "--report", str(report), "--fix",
                                    "--out", str(clean), "--no-label-errors"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "(1 unparsable line left out)" in done.output
    assert "a line with one field too many" not in clean.read_text()


def test_the_doctor_reads_the_columns_from_the_data_as_train_does(tmp_path):
    import json

    from tests.conftest import make_reviews

    data = tmp_path / "reviews.csv"
    make_reviews(80).rename(columns={"text": "Kommentar", "label": "Urteil"}).to_csv(
        data, index=False
    )
    report = tmp_path / "report.json"
    done = CliRunner().invoke(app, ["doctor", str(data), "--report", str(report)])
    assert done.exit_code == 0, done.output
    # read from 'Kommentar' and 'Urteil' (with the old defaults, 'text' was missing: an error)
    train = json.loads(report.read_text())["splits"]["train"]
    assert train["rows"] == 80 and set(train["class_balance"]["counts"]) == {"positive", "negative"}
    # an unlabelled file says so; its text column is then named
    unlabelled = ["--text-column", "Kommentar", "--label-column", "none"]
    done = CliRunner().invoke(app, ["doctor", str(data), "--report", str(report), *unlabelled])
    assert done.exit_code == 0, done.output
    assert "class_balance" not in json.loads(report.read_text())["splits"]["train"]
    # --data, as tunelab train takes the file, is the same as the argument; none is an error
    done = CliRunner().invoke(app, ["doctor", "--data", str(data), "--report", str(report)])
    assert done.exit_code == 0, done.output
    assert json.loads(report.read_text())["splits"]["train"]["rows"] == 80
    done = CliRunner().invoke(app, ["doctor", "--report", str(report)])
    assert str(done.exception) == (
        "tunelab doctor needs a data file: tunelab doctor reviews.csv (or --data)"
    )
    texts_only = tmp_path / "texts.csv"
    make_reviews(20)[["text"]].to_csv(texts_only, index=False)
    done = CliRunner().invoke(app, ["doctor", str(texts_only), "--report", str(report)])
    assert str(done.exception) == (
        f"{texts_only} has no column that reads as labels (its columns are: text); name it "
        "with --label-column, or pass --label-column none to check unlabelled texts"
    )


def test_the_doctor_reads_a_text_pair_file_as_pairs(tmp_path):
    import json

    import pandas as pd

    data = tmp_path / "pairs.csv"
    rows = [
        (f"premise {i // 3}", f"hypothesis {i}", ["yes", "no", "maybe"][i % 3]) for i in range(30)
    ]
    pd.DataFrame(rows, columns=["premise", "hypothesis", "label"]).to_csv(data, index=False)
    report = tmp_path / "report.json"
    done = CliRunner().invoke(app, ["doctor", str(data), "--report", str(report)])
    assert done.exit_code == 0, done.output
    found = json.loads(report.read_text())
    assert found["columns"] == {"text": "premise", "text_pair": "hypothesis", "label": "label"}
    # every premise is shared by three rows, but no pair is: no duplicates, no conflicts
    train = found["splits"]["train"]
    assert train["duplicates"]["near_duplicates"] == 0 and train["conflicts"]["rows"] == []


def test_the_doctor_takes_the_format_of_a_file_it_cannot_tell_by_name(tmp_path):
    data = tmp_path / "reviews.data"
    data.write_text("text\tlabel\n" + "".join(f"review {i} ok\t{i % 2}\n" for i in range(20)))
    report = tmp_path / "report.json"
    done = CliRunner().invoke(app, ["doctor", str(data), "--report", str(report)])
    assert "unknown file format '.data'" in str(done.exception)
    done = CliRunner().invoke(
        app, ["doctor", str(data), "--format", "tsv", "--report", str(report)]
    )
    assert done.exit_code == 0, done.output
    assert "20 rows" in done.output


def test_the_verdict_puts_the_untuned_scores_beside_the_tuned_ones(capsys):
    from tunelab.cli import _print_verdict

    _print_verdict({"before": {"test": {"examples": 630, "bleu": 7.94, "chrf": 37.6}},
                    "warnings": ["the model learned little"]})  # fmt: skip
    assert capsys.readouterr().out.splitlines() == [
        "test before training: bleu=7.9400  chrf=37.6000",
        "WARNING: the model learned little",
    ]
    _print_verdict({"warnings": []})
    assert capsys.readouterr().out == ""
