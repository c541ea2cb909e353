"""Learning curves: the power-law fit, the rows-for-a-target answer, plots, and whole curves
on a tiny random BERT."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import make_reviews, tiny_run_config
from tunelab.config import build_config
from tunelab.errors import UserError
from tunelab.evaluation.learning_curve import (
    answer_target,
    dips,
    fit_power_law,
    predict,
    size_for,
    summarize,
)
from tunelab.evaluation.plots import figure_bytes, learning_curve_figure, save_figure
from tunelab.studies.curve import (
    learning_curve,
    parse_sizes,
    plan_trials,
    score_of,
    trial_overrides,
)
from tunelab.training.epochs import epochs_for_min_steps, raise_epochs

SIZES = [50, 100, 200, 500, 1000, 2000, 5000]


def noisy_points(a: float, b: float, c: float, sign: float, noise: float, seeds: int = 3):
    """Per-seed scores on ``c + sign·a·n^-b`` with Gaussian noise."""
    rng = np.random.default_rng(0)
    return {
        n: list(c + sign * a * n**-b + rng.normal(0, noise, seeds if n < 1000 else 1))
        for n in SIZES
    }


def flat(points):
    return [n for n, s in points.items() for _ in s], [v for s in points.values() for v in s]


def test_sizes_are_parsed_sorted_and_checked():
    assert parse_sizes("500, 50,1_000,50") == [50, 500, 1000]
    for bad in ("50,x", "0,10", "-5", ""):
        with pytest.raises(UserError, match="--sizes must be positive integers"):
            parse_sizes(bad)


def test_several_seeds_only_below_the_threshold():
    assert plan_trials([50, 100, 1000], seeds=3, seeds_below=1000, first_seed=7) == [
        (50, 7), (50, 8), (50, 9), (100, 7), (100, 8), (100, 9), (1000, 7),
    ]  # fmt: skip
    with pytest.raises(UserError, match="--seeds"):
        plan_trials([50], seeds=0, seeds_below=10, first_seed=0)


def test_a_trial_keeps_the_curves_own_length_not_the_runs_min_steps(tmp_path):
    """The curve's --min-steps (100) alone sets each trial's epochs; the run's own rule (500
    steps, at most 10 epochs) would train its middle sizes longer than its ends."""
    config = build_config({"task": "text-classification"})
    overrides, note = trial_overrides(config, 2000, 0, tmp_path, 5000, 100)
    assert note is None  # 63 steps an epoch: 3 epochs already make 189
    trial = build_config({"task": "text-classification"}, overrides)
    assert raise_epochs(trial, "text-classification", 2000) is None
    assert trial.training.epochs == 3.0


def test_small_sizes_get_enough_optimizer_steps():
    training = build_config({"training": {"epochs": 1, "batch_size": 32}}).training
    assert epochs_for_min_steps(100, training, 100) == (25.0, 100)  # 4 steps an epoch
    assert epochs_for_min_steps(5000, training, 100) is None  # 157 steps already
    fixed = build_config({"training": {"max_steps": 50}}).training
    assert epochs_for_min_steps(100, fixed, 100) is None  # max_steps is the user's choice


def test_fit_recovers_a_known_power_law():
    points = noisy_points(a=2.0, b=0.5, c=0.9, sign=-1, noise=0.002)
    fit = fit_power_law(*flat(points), greater_is_better=True)
    assert fit["kind"] == "power_law"
    assert fit["c"] == pytest.approx(0.9, abs=0.01)
    assert fit["b"] == pytest.approx(0.5, abs=0.08)
    assert fit["a"] == pytest.approx(2.0, rel=0.3)


def test_fit_recovers_a_falling_loss_curve():
    points = noisy_points(a=5.0, b=0.7, c=0.3, sign=1, noise=0.002)
    fit = fit_power_law(*flat(points), greater_is_better=False)
    assert fit["kind"] == "power_law" and fit["sign"] == 1
    assert fit["c"] == pytest.approx(0.3, abs=0.01)
    assert fit["b"] == pytest.approx(0.7, abs=0.1)
    assert predict(fit, 1000) == pytest.approx(0.3 + 5.0 * 1000**-0.7, abs=0.005)


def test_few_sizes_fall_back_to_a_line_or_nothing():
    fit = fit_power_law([100, 100, 1000], [0.6, 0.62, 0.75], greater_is_better=True)
    assert fit["kind"] == "log_linear" and fit["slope"] > 0
    assert size_for(fit, 0.8, True) > 1000
    assert fit_power_law([100, 100], [0.6, 0.62], True)["kind"] == "none"


def test_target_answer_is_a_range_around_the_true_size():
    points = noisy_points(a=2.0, b=0.5, c=0.9, sign=-1, noise=0.005)
    fit = fit_power_law(*flat(points), greater_is_better=True)
    answer = answer_target(points, 0.85, True, fit, resamples=100)
    true_rows = (2.0 / 0.05) ** 2  # 1,600
    assert answer["low"] <= answer["rows"] <= answer["high"]
    # the seed noise moves the estimate; it stays near the truth and the range is useful
    assert true_rows / 1.5 < answer["low"] and answer["high"] < true_rows * 1.5
    assert answer["reachable_share"] == 1.0
    assert "about" in answer["message"] and "10–90% range" in answer["message"]


def test_a_target_above_the_level_off_is_reported_unreachable():
    points = noisy_points(a=2.0, b=0.5, c=0.9, sign=-1, noise=0.002)
    fit = fit_power_law(*flat(points), greater_is_better=True)
    answer = answer_target(points, 0.97, True, fit, resamples=50)
    assert answer["rows"] is None and answer["reachable_share"] < 0.1
    assert "not reachable within the fitted curve" in answer["message"]
    assert "0.9" in answer["message"]  # says where it levels off
    early = answer_target(points, 0.5, True, fit, resamples=20)
    assert "already reached" in early["message"]


def test_target_beyond_the_largest_size_says_it_is_extrapolated():
    points = noisy_points(a=2.0, b=0.5, c=0.9, sign=-1, noise=0.002)
    fit = fit_power_law(*flat(points), greater_is_better=True)
    answer = answer_target(points, 0.88, True, fit, resamples=50)  # true: 10,000 rows
    assert answer["extrapolated"] and "extrapolated" in answer["message"]


def test_a_larger_size_scoring_worse_than_the_seed_spread_is_flagged():
    trials = [
        {"size": 100, "score": 0.60, "steps": 100}, {"size": 100, "score": 0.64, "steps": 100},
        {"size": 1000, "score": 0.77, "steps": 128}, {"size": 5000, "score": 0.72, "steps": 157},
        {"size": 9000, "score": 0.79, "steps": 290},
    ]  # fmt: skip
    curve = summarize([{**t, "seed": 0, "split": "test"} for t in trials], "f1", True, None)
    (warning,) = curve["warnings"]
    assert warning.startswith("f1 is 0.720 at 5,000 rows, worse than 0.770 at 1,000")
    assert "optimizer steps: 128 at 1,000 rows, 157 at 5,000" in warning
    assert dips(curve["sizes"][:2], trials, "f1", True) == []  # rising: nothing to say


def test_score_comes_from_test_then_validation():
    assert score_of({"validation": {"f1": 0.5}, "test": {"f1": 0.6}}, "f1") == (0.6, "test")
    assert score_of({"validation": {"f1": 0.5}}, "f1") == (0.5, "validation")
    with pytest.raises(UserError, match=r"--metric 'f2'.*f1"):
        score_of({"validation": {"f1": 0.5}}, "f2")


def test_plot_writes_png_and_svg(tmp_path):
    points = noisy_points(a=2.0, b=0.5, c=0.9, sign=-1, noise=0.01)
    trials = [
        {"size": n, "seed": i, "split": "test", "score": s}
        for n, scores in points.items()
        for i, s in enumerate(scores)
    ]
    curve = summarize(trials, "accuracy", True, 0.85)
    figure = learning_curve_figure(curve)
    save_figure(figure, [tmp_path / "c.png", tmp_path / "c.svg"])
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")
    assert "<svg" in (tmp_path / "c.svg").read_text(encoding="utf-8")
    assert figure_bytes(figure, "svg") == figure_bytes(figure, "svg")  # reproducible


@pytest.fixture
def curve_config(tiny_bert, tmp_path):
    make_reviews(200).to_csv(tmp_path / "reviews.csv", index=False)
    return tiny_run_config(
        tiny_bert, tmp_path / "reviews.csv", tmp_path / "unused",
        training={"epochs": 1, "threads": 1},
    )  # fmt: skip


def test_curve_end_to_end_and_a_rerun_skips_finished_trials(curve_config, tmp_path):
    out = tmp_path / "curve"
    lines: list[str] = []
    curve = learning_curve(
        curve_config, [20, 80], out, seeds=2, seeds_below=50, min_steps=6, target=0.9,
        echo=lines.append,
    )  # fmt: skip
    assert [(s["size"], len(s["scores"])) for s in curve["sizes"]] == [(20, 2), (80, 1)]
    assert curve["metric"] == "f1_macro" and curve["split"] == "test"
    saved = json.loads((out / "curve.json").read_text(encoding="utf-8"))
    assert saved["fit"]["kind"] == "log_linear"  # two sizes: too few for a power law
    assert saved["target"]["target"] == 0.9
    assert (out / "curve.png").stat().st_size > 1000
    assert (out / "curve.svg").stat().st_size > 1000
    trial = out / "size-20-seed-43"
    assert (trial / "metrics.json").is_file() and not (trial / "model").exists()
    assert not (trial / "checkpoints").exists()
    assert any("training 3 epochs (6 steps)" in line for line in lines)  # 2 an epoch at 20
    config = (trial / "config.yaml").read_text(encoding="utf-8")
    assert "train_rows: 20" in config and "seed: 43" in config

    stamp = (trial / "metrics.json").stat().st_mtime_ns
    lines.clear()
    again = learning_curve(
        curve_config, [20, 80], out, seeds=2, seeds_below=50, min_steps=6, metric="accuracy",
        echo=lines.append,
    )  # fmt: skip
    assert sum("skipped" in line for line in lines) == 3
    assert (trial / "metrics.json").stat().st_mtime_ns == stamp
    assert again["metric"] == "accuracy" and again["target"] is None


def test_curve_rejects_train_per_class(curve_config, tmp_path):
    curve_config["data"]["train_per_class"] = 4
    with pytest.raises(UserError, match=r"data\.train_per_class"):
        learning_curve(curve_config, [20], tmp_path / "c")


def test_curve_rejects_sizes_below_the_number_of_classes(curve_config, tmp_path):
    with pytest.raises(UserError, match=r"--sizes: 1 rows cannot hold one of each of the 2"):
        learning_curve(curve_config, [1, 20], tmp_path / "c")
