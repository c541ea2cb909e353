"""`tunelab train` under torchrun: 2 CPU processes (gloo) reach the metrics of one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import make_reviews, tiny_run_config


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _history(run: Path) -> list[float]:
    entries = json.loads((run / "history.json").read_text())
    return [e["eval_loss"] for e in entries if "eval_loss" in e]


def test_two_process_ddp_matches_one_process(tiny_bert, tmp_path):
    make_reviews(300).to_csv(tmp_path / "reviews.csv", index=False)
    # the same global batch: 16 rows in one process, 8 per process in two
    training = {"epochs": 4, "learning_rate": 1e-2, "eval_strategy": "epoch"}
    one = tiny_run_config(tiny_bert, tmp_path / "reviews.csv", tmp_path / "one", training=training)
    two = tiny_run_config(tiny_bert, tmp_path / "reviews.csv", tmp_path / "two", training=training)
    two["training"]["batch_size"] = 8
    for name, config in (("one", one), ("two", two)):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train = [sys.executable, "-m", "tunelab.cli", "train"]
    single = subprocess.run(
        [*train, str(tmp_path / "one.yaml")], env=env, capture_output=True, text=True, timeout=300
    )
    assert single.returncode == 0, single.stderr[-2000:]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
              "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), "-m",
              "tunelab.cli", "train", str(tmp_path / "two.yaml")]  # fmt: skip
    ddp = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]

    alone = json.loads((tmp_path / "one" / "metrics.json").read_text())
    shared = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert shared["train"]["steps"] == alone["train"]["steps"]  # one update per global batch
    # tolerance: the processes see the rows in another order, so the weights differ a
    # little; both learn the task by the end
    assert shared["test"]["accuracy"] == alone["test"]["accuracy"]
    assert abs(_history(tmp_path / "two")[-1] - _history(tmp_path / "one")[-1]) < 0.05
    # the first process alone wrote the run: no second process's temporary folders
    assert not [p.name for p in (tmp_path / "two").iterdir() if p.name.startswith(".")]
    assert len((tmp_path / "two" / "predictions.jsonl").read_text().splitlines()) == len(
        (tmp_path / "one" / "predictions.jsonl").read_text().splitlines()
    )
