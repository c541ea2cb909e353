"""Flags read the same across the ``tunelab`` commands."""

from __future__ import annotations

from typing import Any

import typer
from typer.testing import CliRunner

from tunelab.cli import app


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
