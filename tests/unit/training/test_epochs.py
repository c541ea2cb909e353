"""Epochs raised on small training sets when the config leaves them at the default."""

import logging

import pytest

from tunelab.config import build_config
from tunelab.training.epochs import MAX_RAISED_EPOCHS, epochs_for_min_steps, raise_epochs


def test_a_small_tagging_set_trains_until_it_made_the_minimum_steps(caplog):
    config = build_config({"task": "token-classification"})
    with caplog.at_level(logging.INFO, logger="tunelab"):
        raised = raise_epochs(config, "token-classification", 3303)  # WNUT-17's training rows
    assert config.training.epochs == 5.0  # 104 steps an epoch: 5 make 520, 4 only 416
    assert raised == {
        "value": 5.0, "before": 3.0, "steps": 520,
        "reason": "3 epochs of 3,303 training examples at batch 32 make 312 optimizer steps, "
        "fewer than training.min_steps 500",
    }  # fmt: skip
    assert "training.epochs raised to 5 (520 steps)" in caplog.text
    assert "--set training.epochs=3 keeps 3" in caplog.text


@pytest.mark.parametrize(
    ("settings", "task", "examples"),
    [
        ({"training": {"epochs": 3}}, "token-classification", 3303),  # the user's choice
        ({"training": {"min_steps": None}}, "text-classification", 3303),
        ({"training": {"max_steps": 100}}, "text-classification", 3303),
        ({"training": {"method": "few-shot"}}, "text-classification", 64),
        ({}, "causal-lm", 160),  # LLM tuning keeps its epochs: not measured, and costly
        ({}, "token-classification", 6338),  # the Broad Twitter Corpus: 3 epochs make 597
    ],
)
def test_epochs_stay_where_the_user_or_the_data_leaves_them(settings, task, examples):
    config = build_config(settings)
    before = config.training.epochs
    assert raise_epochs(config, task, examples) is None
    assert config.training.epochs == before


def test_large_sets_keep_three_epochs_and_tiny_ones_stop_at_the_cap():
    training = build_config({}).training
    assert epochs_for_min_steps(20_000, training, 500) is None  # 625 steps an epoch
    assert epochs_for_min_steps(4100, training, 500) == (4.0, 516)  # 129 steps: 3 make 387
    assert epochs_for_min_steps(100, training, 500, MAX_RAISED_EPOCHS) == (10.0, 40)
    accumulated = build_config({"training": {"gradient_accumulation_steps": 4}}).training
    assert epochs_for_min_steps(3303, accumulated, 500, 10) == (10.0, 260)  # 26 an epoch


@pytest.mark.parametrize(
    ("task", "model", "raised"),
    [
        ("image-classification", "scratch-vit", True),  # random weights: 3 epochs learn little
        ("audio-classification", "scratch-audio", True),
        ("image-classification", "google/vit-base-patch16-224", False),  # pretrained: unmeasured
        ("audio-classification", "scratch-vit", False),  # not what that task builds
    ],
)
def test_images_and_audio_from_scratch_train_the_minimum_steps(task, model, raised):
    config = build_config({"task": task, "model": {"name": model}})
    found = raise_epochs(config, task, 1437)  # the digits' training images: 45 steps an epoch
    assert (found is not None) == raised
    assert config.training.epochs == (10.0 if raised else 3.0)
