"""The command line's collector: rare collections while it starts, the usual ones after."""

from __future__ import annotations

import gc

import pytest

from tunelab import collector


@pytest.fixture
def usual_collector():
    # a command run earlier in this process may have started and not loaded a model
    before = collector._usual or gc.get_threshold()
    collector._usual = None
    gc.set_threshold(*before)
    yield before
    gc.set_threshold(*before)
    gc.unfreeze()
    collector._usual = None


def test_the_start_collects_rarely_and_the_loaded_model_is_frozen(usual_collector):
    collector.collect_rarely()
    assert gc.get_threshold() == (collector.STARTING_THRESHOLD, *usual_collector[1:])
    collector.collect_rarely()  # a second call keeps the usual thresholds to return to
    gc.unfreeze()
    collector.loaded()
    assert gc.get_threshold() == usual_collector
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    collector.loaded()  # only the first time
    assert gc.get_freeze_count() == 0


def test_a_library_callers_collector_is_left_alone(usual_collector):
    gc.unfreeze()
    collector.loaded()
    assert gc.get_threshold() == usual_collector
    assert gc.get_freeze_count() == 0
