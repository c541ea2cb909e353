"""The Train form comes from the config schema: every key, its default and description, in
`tunelab init`'s order; what it gives is exactly what the shown YAML and command give."""

from __future__ import annotations

import shlex

import pytest
import yaml
from typer.testing import CliRunner

from tests.unit.ui.conftest import cli_line
from tunelab.cli import app as cli
from tunelab.config import RunConfig, build_config, commented_yaml, field_description
from tunelab.runs import flatten
from tunelab.tasks import TASKS
from tunelab.ui.form import TRAIN_FLAGS, equivalent, field_of, fields, form_tree
from tunelab.ui.form import overrides_from_form as form_overrides


def test_the_form_has_every_config_key_with_its_default_and_description():
    specs = fields(form_tree(choices={"task": list(TASKS)}))
    defaults = flatten(RunConfig().model_dump(mode="json"))
    # flatten leaves empty mappings (search.space) as values, as the form does
    assert list(specs) == list(defaults)
    for key, spec in specs.items():
        assert spec["default"] == defaults[key], key
        assert spec["description"] == field_description(key), key
    assert specs["task"]["choices"] == list(TASKS)
    assert specs["training.lr_scheduler"]["input"] == "select"
    assert specs["data.clean.nfkc"]["input"] == "checkbox"
    assert specs["training.learning_rate"] | {} == specs["training.learning_rate"]
    assert specs["training.learning_rate"]["suggest"] == ["auto"]
    assert specs["training.batch_size"]["integer"] is True
    assert specs["data.max_rows"]["nullable"] is True


def test_the_form_is_grouped_as_tunelab_init_writes_the_config():
    def keys(items, depth=0):
        for item in items:
            yield depth, item["key"].rsplit(".", 1)[-1]
            if item["kind"] == "section":
                yield from keys(item["items"], depth + 1)

    written = [
        ((len(line) - len(line.lstrip())) // 2, line.strip().split(":")[0])
        for line in commented_yaml(RunConfig()).splitlines()
    ]
    assert list(keys(form_tree())) == written


def test_unchanged_values_give_no_overrides_and_text_stays_text():
    specs = fields(form_tree())
    values = {key: spec["shown_default"] for key, spec in specs.items()}
    assert form_overrides(values, specs) == []
    values.update({"training.epochs": "3", "data.text_column": "123", "data.max_rows": "",
                   "data.clean.lowercase": True, "training.learning_rate": "3e-5"})  # fmt: skip
    overrides = form_overrides(values, specs)
    assert overrides == [
        'data.text_column="123"',
        "data.clean.lowercase=true",
        "training.learning_rate=3e-5",
    ]
    config = build_config({}, overrides)
    assert config.data.text_column == "123" and config.training.learning_rate == 3e-5


CHANGES = {
    "task": "text-classification",
    "output": "runs/my run",
    "data.train": "uploads/reviews.csv",
    "data.text_column": "review",
    "data.label_separator": "|",
    "training.learning_rate": "3e-5",
    "training.early_stopping_patience": "",
    "data.clean.strip_html": True,
    "generation.prefix": "summarize: ",
    "peft.target_modules": "[query, value]",
    "seed": "7",
}


def test_the_yaml_and_the_command_give_the_forms_config(monkeypatch):
    specs = fields(form_tree())
    found = equivalent(form_overrides(CHANGES, specs))
    config = found["config"]
    assert build_config(yaml.safe_load(found["yaml"])) == config
    seen = {}

    def fake_train(config, **options):  # the CLI's own parsing, without training
        seen["config"] = config
        return {"metrics": {}, "model_dir": "x"}

    monkeypatch.setattr("tunelab.api.train", fake_train)
    args = shlex.split(found["command"])
    assert args[:2] == ["tunelab", "train"]
    done = CliRunner().invoke(cli, args[1:])
    assert done.exit_code == 0, done.output
    assert seen["config"] == config
    assert config.output.as_posix() == "runs/my run" and config.peft.target_modules == [
        "query", "value"]  # fmt: skip


def test_every_flag_the_command_uses_is_an_option_of_tunelab_train():
    asked = ["train", "--help"]  # the help only: nothing is trained
    help_text = CliRunner().invoke(cli, asked, env={"COLUMNS": "200"}).output
    for key, flag in TRAIN_FLAGS.items():
        assert f"{flag} " in help_text, (key, flag)


@pytest.mark.parametrize(
    ("value", "cli_value"), [("-0.001", "-0.001"), ("abc", "abc"), ("1.5", "1.5")]
)
def test_a_bad_value_gives_the_clis_line_next_to_its_field(
    client, value, cli_value, monkeypatch, capsys
):
    answer = client.post("/api/config", json={"values": {"training.learning_rate": value}})
    assert answer.status_code == 200  # a check that found a problem
    found = answer.json()
    assert found["ok"] is False and found["field"] == "training.learning_rate"
    line = cli_line(["train", "--set", f"training.learning_rate={cli_value}"], monkeypatch, capsys)
    assert found["error"] == line


def test_field_of_finds_the_key_a_sentence_is_about():
    keys = list(fields(form_tree()))
    assert field_of("config key 'training.epochs' has value 'x', which is invalid", keys) == (
        "training.epochs")  # fmt: skip
    assert field_of("r.csv has no column 'x' (set by data.text_column); its columns", keys) == (
        "data.text_column")  # fmt: skip
    assert field_of("error: data.train '../x.csv' is not a path inside", keys) == "data.train"
    assert field_of("run folder runs/a already holds a run; ... another --output", keys) == "output"
    assert field_of("something else entirely", keys) is None


def test_paths_of_the_form_must_stay_in_the_workspace(client):
    found = client.post("/api/config", json={"values": {"output": "/tmp/elsewhere"}}).json()
    assert found["field"] == "output" and "is not a path inside the workspace" in found["error"]
