import numpy as np
import pytest

import tunelab
from tests.conftest import make_reviews, tiny_run_config
from tunelab.errors import UserError
from tunelab.training.few_shot import HEAD_STRENGTHS, contrastive_pairs, fit_head, pair_count


def test_every_example_gets_a_same_and_an_other_label_partner_each_round():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    pairs = list(contrastive_pairs(labels, rounds=3, max_pairs=10_000, seed=0))
    assert len(pairs) == pair_count(labels, 3, 10_000) == 3 * 2 * len(labels)
    for i, j, similarity in pairs:
        assert i != j
        assert (labels[i] == labels[j]) == (similarity == 1.0)
    anchors = [i for i, _, s in pairs if s == 1.0]
    assert sorted(anchors) == sorted(list(range(len(labels))) * 3)


def test_pairs_stay_bounded_however_large_the_data():
    labels = np.arange(200_000) % 4
    pairs = contrastive_pairs(labels, rounds=20, max_pairs=500, seed=1)
    assert iter(pairs) is pairs  # drawn lazily, never a list of millions
    assert sum(1 for _ in pairs) == 500 == pair_count(labels, 20, 500)


def test_head_strength_is_chosen_by_cross_validation_even_with_two_examples_per_class():
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 1, 1, 2, 2])
    # one informative dimension among many noisy ones: every fold's held-out row is
    # classified by that dimension only when the head is regularised
    features = rng.normal(size=(6, 50))
    features[:, 0] = labels * 5.0
    head = fit_head(features, labels, fit_intercept=True)
    assert head.C_[0] in HEAD_STRENGTHS
    assert (head.predict(features) == labels).all()
    without_bias = fit_head(features, labels, fit_intercept=False)
    assert not without_bias.intercept_.any()


def test_few_shot_run_saves_a_plain_classifier_that_the_pipeline_agrees_with(
    tiny_sentiment_body, tmp_path
):
    from transformers import pipeline

    train = tmp_path / "train.csv"
    make_reviews(300, seed=11).to_csv(train, index=False)
    config = tiny_run_config(
        tiny_sentiment_body, train, tmp_path / "run",
        data={"train_per_class": 8},
        training={"method": "few-shot", "learning_rate": 1e-3},
        few_shot={"pair_rounds": 5},
    )  # fmt: skip
    result = tunelab.train(config)
    assert result["metrics"]["train"]["pairs"] == 5 * 2 * 16
    assert result["metrics"]["test"]["accuracy"] >= 0.8
    texts = ["这个很好用", "质量太差了退货"]
    ours = tunelab.predict(result["model_dir"], texts=texts)
    theirs = pipeline("text-classification", model=result["model_dir"])(texts)
    assert [r["label"] for r in ours] == [r["label"] for r in theirs]
    assert ours[0]["score"] == pytest.approx(theirs[0]["score"], abs=1e-5)


@pytest.mark.parametrize(
    ("sections", "error"),
    [
        ({"peft": {"method": "lora"}}, "set peft.method=none"),
        ({"data": {"label_separator": "|"}}, "needs single-label text classification"),
        ({"data": {"train_per_class": 1}}, "at least 2 training examples of every class"),
    ],
)
def test_few_shot_refuses_what_it_cannot_train(tiny_bert, reviews_csv, tmp_path, sections, error):
    config = tiny_run_config(
        tiny_bert, reviews_csv, tmp_path / "run", training={"method": "few-shot"}
    )
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    with pytest.raises(UserError, match=error):
        tunelab.train(config)
