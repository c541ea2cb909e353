"""Tokenising a data set may use every core; the process is on one core again after, and a
user's own TOKENIZERS_PARALLELISM is never touched."""

from __future__ import annotations

import os

import pytest

from tunelab import tokenizer_threads
from tunelab.tokenizer_threads import VARIABLE, one_core_by_default
from tunelab.tokenizer_threads import tokenizer_threads as threads


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setenv(VARIABLE, "recorded")  # so the variable's first state comes back after
    monkeypatch.delenv(VARIABLE)
    monkeypatch.setattr(tokenizer_threads, "_ours", False)


def test_tunelab_s_own_default_is_lifted_inside_and_restored_after(fresh):
    one_core_by_default()
    assert os.environ[VARIABLE] == "false"
    with threads():
        assert os.environ[VARIABLE] == "true"
    assert os.environ[VARIABLE] == "false"
    with pytest.raises(RuntimeError), threads():  # restored when tokenising fails too
        raise RuntimeError("a tokenizer error")
    assert os.environ[VARIABLE] == "false"


@pytest.mark.parametrize("users", ["false", "true", "0"])
def test_a_users_own_setting_is_left_as_it_is(fresh, monkeypatch, users):
    monkeypatch.setenv(VARIABLE, users)
    one_core_by_default()
    with threads():
        assert os.environ[VARIABLE] == users
    assert os.environ[VARIABLE] == users


def test_without_the_command_lines_default_nothing_is_set(fresh):
    with threads():  # the Python API: unset means the library's own default (every core)
        assert VARIABLE not in os.environ
    assert VARIABLE not in os.environ


def test_a_training_run_tokenises_on_every_core_and_ends_on_one(
    fresh, monkeypatch, tmp_path, tiny_bert
):
    from tests.conftest import make_reviews, tiny_run_config
    from tunelab.config import as_config
    from tunelab.training import finetune

    one_core_by_default()
    seen = []
    encode = finetune._max_length

    def watched(*args, **kwargs):
        seen.append(os.environ[VARIABLE])
        return encode(*args, **kwargs)

    monkeypatch.setattr(finetune, "_max_length", watched)
    data = tmp_path / "reviews.csv"
    make_reviews(40).to_csv(data, index=False)
    finetune.prepare_run(as_config(tiny_run_config(tiny_bert, data, tmp_path / "run")))
    assert seen == ["true"]
    assert os.environ[VARIABLE] == "false"
