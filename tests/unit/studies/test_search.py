import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_run_config
from tunelab.config import build_config
from tunelab.errors import UserError
from tunelab.studies.search import default_space, search

LEARNING_RATES = {"training.learning_rate": {"low": 1e-5, "high": 3e-2, "log": True}}


def search_config(tiny_bert: Path, data: Path, tmp_path: Path, **search_settings) -> dict:
    # the config's own rate is poor on purpose: the search must find a better one
    config = tiny_run_config(tiny_bert, data, tmp_path / "run", training={"learning_rate": 1e-5})
    config["search"] = {"space": LEARNING_RATES, **search_settings}
    return config


def test_search_beats_the_configs_own_values_and_writes_a_runnable_best_config(
    tiny_bert, reviews_csv, tmp_path
):
    config = build_config(search_config(tiny_bert, reviews_csv, tmp_path))
    summary = search(config, tmp_path / "search", trials=6)
    assert summary["trials"]["complete"] + summary["trials"]["pruned"] == 6
    assert summary["default_value"] is not None  # trial 0 ran the config's own values
    assert summary["best_value"] > summary["default_value"] + 0.1
    best = yaml.safe_load((tmp_path / "search" / "best.yaml").read_text("utf-8"))
    assert best["training"]["learning_rate"] == summary["best_params"]["training.learning_rate"]
    assert best["output"] == str(tmp_path / "run")  # tunelab train best.yaml: the real run
    assert not list((tmp_path / "search").glob("trial-*/model"))  # trial models not kept


def test_a_killed_search_resumes_without_losing_finished_trials(tiny_bert, reviews_csv, tmp_path):
    import optuna

    config_path = tmp_path / "search.yaml"
    config_path.write_text(yaml.safe_dump(search_config(tiny_bert, reviews_csv, tmp_path)))
    folder = tmp_path / "search"
    command = [sys.executable, "-m", "tunelab.cli", "search", str(config_path), "--trials", "5",
               "--out", str(folder)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    storage = f"sqlite:///{folder.resolve() / 'study.db'}"

    def finished() -> dict[int, float]:
        # Read-only SQL: opening the study through Optuna would create the database's tables
        # and race the search process doing the same.
        try:
            with sqlite3.connect(f"file:{folder / 'study.db'}?mode=ro", uri=True) as db:
                rows = db.execute(
                    "SELECT t.number, v.value FROM trials t JOIN trial_values v "
                    "ON v.trial_id = t.trial_id WHERE t.state = 'COMPLETE'"
                ).fetchall()
        except sqlite3.Error:
            return {}
        return dict(rows)

    deadline = time.time() + 300
    while len(finished()) < 2 and time.time() < deadline and process.poll() is None:
        time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = finished()
    assert 2 <= len(before) < 5, "the search should be killed midway"

    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    study = optuna.load_study(study_name="search", storage=storage)
    after = {t.number: t.value for t in study.trials if t.state.name == "COMPLETE"}
    assert all(after[number] == value for number, value in before.items())
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials) == 5
    assert "best f1_macro=" in done.stdout


def test_workers_that_start_together_retry_opening_the_new_study_database(monkeypatch, tmp_path):
    from sqlalchemy.exc import IntegrityError

    from tunelab.studies import search as search_module

    real, calls = search_module._new_storage, []

    def loses_the_race_twice(url):
        calls.append(url)
        if len(calls) <= 2:  # what the second of two starting workers meets
            raise IntegrityError("INSERT INTO alembic_version", {}, Exception("UNIQUE failed"))
        return real(url)

    monkeypatch.setattr(search_module, "_new_storage", loses_the_race_twice)
    monkeypatch.setattr(search_module.time, "sleep", lambda seconds: None)
    storage = search_module._storage(f"sqlite:///{tmp_path / 'study.db'}")
    assert len(calls) == 3
    assert storage.get_all_studies() == []

    def always_busy(url):
        raise IntegrityError("INSERT INTO alembic_version", {}, Exception("UNIQUE failed"))

    monkeypatch.setattr(search_module, "_new_storage", always_busy)
    with pytest.raises(UserError, match=r"search\.storage .* could not be opened: UNIQUE failed"):
        search_module._storage("sqlite:///busy.db")


def test_default_space_follows_the_task_and_method():
    lora = default_space(build_config({"peft": {"method": "lora"}}))
    assert lora["peft.r"].choices == [4, 8, 16, 32]
    assert default_space(build_config({"task": "causal-lm"}))["training.batch_size"].choices == [
        8, 16, 32,
    ]  # fmt: skip
    assert set(default_space(build_config({"training": {"method": "few-shot"}}))) == {
        "training.learning_rate",
        "few_shot.pair_rounds",
    }


@pytest.mark.parametrize(
    ("space", "error"),
    [
        (
            {"training.learnig_rate": {"low": 0.1, "high": 0.2}},
            "'training.learnig_rate' is not a config key",
        ),
        ({"training.epochs": {"choices": [-1, 2]}}, r"search.space 'training.epochs'.*invalid"),
    ],
)
def test_bad_search_spaces_fail_before_any_trial(tiny_bert, reviews_csv, tmp_path, space, error):
    config = build_config(search_config(tiny_bert, reviews_csv, tmp_path))
    config.search.space = build_config({"search": {"space": space}}).search.space
    with pytest.raises(UserError, match=error):
        search(config, tmp_path / "search", trials=2)
    assert not (tmp_path / "search").exists()
