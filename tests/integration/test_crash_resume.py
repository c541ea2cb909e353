"""A run killed at any point (SIGKILL, Ctrl-C) and resumed ends with the uninterrupted metrics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_run_config

STEPS = {"eval_strategy": "steps", "eval_steps": 5, "epochs": 2, "save_total_limit": 3}


def _train(config: Path, *flags: str, kill: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("TUNELAB_TEST_KILL", None)
    if kill:
        env["TUNELAB_TEST_KILL"] = kill
    command = [sys.executable, "-m", "tunelab.cli", "train", str(config), *flags]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def _scores(run: Path) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    return {split: metrics[split] for split in ("validation", "test")}


@pytest.fixture(scope="module")
def runs(tiny_bert, tmp_path_factory):
    """A config writer and the metrics of the same run never interrupted."""
    from tests.conftest import make_reviews

    folder = tmp_path_factory.mktemp("crash")
    make_reviews(300).to_csv(folder / "reviews.csv", index=False)

    def config_for(name: str) -> Path:
        config = tiny_run_config(
            tiny_bert, folder / "reviews.csv", folder / name, training=dict(STEPS)
        )
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    done = _train(config_for("whole"))
    assert done.returncode == 0, done.stderr[-2000:]
    return config_for, _scores(folder / "whole")


@pytest.mark.parametrize(
    "kill", ["step:7", "save:10", "step:26"], ids=["mid-interval", "after-save", "late"]
)
def test_sigkill_then_resume_ends_with_the_uninterrupted_metrics(runs, kill):
    config_for, expected = runs
    config = config_for(f"killed-{kill.replace(':', '-')}")
    run = Path(yaml.safe_load(config.read_text())["output"])
    killed = _train(config, kill=kill)
    assert killed.returncode == -9
    assert not (run / "metrics.json").exists()  # nothing that looks finished
    assert not (run / "model").exists()
    resumed = _train(config, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "training.embedding_rows used" in resumed.stderr  # the checkpoint's rows again
    assert _scores(run) == expected


def test_checkpoints_that_trained_every_embedding_row_resume_that_way(runs):
    config_for, expected = runs
    config = config_for("every-row")
    settings = yaml.safe_load(config.read_text())
    run = Path(settings["output"])
    settings["training"]["embedding_rows"] = "all"  # as tunelab trained before the option
    every_row = config.with_name("every-row-all.yaml")
    every_row.write_text(yaml.safe_dump(settings))
    assert _train(every_row, kill="save:10").returncode == -9
    assert not (run / "checkpoints" / "used_embedding_rows.json").exists()
    # resumed with the default (used rows), it must load the full-size optimizer state
    resumed = _train(config, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "training.embedding_rows used" not in resumed.stderr
    scores = _scores(run)  # the same training, to float rounding
    assert scores["test"]["accuracy"] == pytest.approx(expected["test"]["accuracy"], abs=0.02)


def test_a_half_written_checkpoint_is_skipped_on_resume(runs):
    config_for, expected = runs
    config = config_for("partial")
    run = Path(yaml.safe_load(config.read_text())["output"])
    assert _train(config, kill="save:15").returncode == -9
    # as if killed while the Trainer was still writing checkpoint-15: no trainer state yet
    (run / "checkpoints" / "checkpoint-15" / "trainer_state.json").unlink()
    resumed = _train(config, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "skipping" in resumed.stderr and "checkpoint-15" in resumed.stderr
    assert _scores(run) == expected


def test_ctrl_c_saves_a_checkpoint_and_exits_130(runs):
    config_for, expected = runs
    config = config_for("ctrl-c")
    run = Path(yaml.safe_load(config.read_text())["output"])
    stopped = _train(config, kill="int:12")
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: checkpoint saved at") and "--resume" in last
    assert (run / "checkpoints" / "checkpoint-13" / "trainer_state.json").is_file()
    assert not (run / "metrics.json").exists()
    resumed = _train(config, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _scores(run) == expected
    shutil.rmtree(run)
