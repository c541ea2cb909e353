"""Seconds per stage of a run: stages add up, repeat, and leave the rest to ``other``."""

from __future__ import annotations

import time

import pytest

from tunelab.training.stage_clock import StageClock


def test_stages_sum_their_blocks_in_order_and_the_remainder_is_other():
    clock = StageClock()
    with clock.stage("data"):
        time.sleep(0.05)
    time.sleep(0.03)  # between stages: nobody's
    with clock.stage("training"):
        time.sleep(0.02)
    with clock.stage("data"):  # entered again: adds up
        time.sleep(0.05)
    seconds = clock.seconds()
    assert list(seconds) == ["data", "training", "other", "total"]
    assert seconds["data"] == pytest.approx(0.10, abs=0.04)
    assert seconds["other"] >= 0.03
    assert seconds["data"] + seconds["training"] + seconds["other"] == pytest.approx(
        seconds["total"], abs=0.02
    )


def test_a_stage_that_raises_still_counts():
    clock = StageClock()
    with pytest.raises(ValueError), clock.stage("model"):
        time.sleep(0.02)
        raise ValueError("no such model")
    assert clock.seconds()["model"] >= 0.02


def test_the_log_line_leaves_out_stages_that_took_no_time():
    clock = StageClock()
    with clock.stage("before training"):
        pass
    with clock.stage("training"):
        time.sleep(0.06)
    line = clock.line()
    assert line.split(": ", 1)[1].startswith("training 0.1 s")
    assert "before training" not in line
