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
    assert float(np.ravel(head.C_)[0]) in HEAD_STRENGTHS
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
        training={"method": "few-shot", "learning_rate": 1e-3, "batch_size": 8},
        few_shot={"pair_rounds": 5},
    )  # fmt: skip
    result = tunelab.train(config)
    assert result["metrics"]["train"]["pairs"] == 5 * 2 * 16
    assert result["metrics"]["train"]["steps"] == 5 * 2 * 16 // 16  # few_shot's batch, not 8
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


@pytest.fixture(scope="module")
def tiny_sentence_encoder(tiny_bert, tmp_path_factory):
    """A tiny random BertModel saved as a sentence-transformers folder (modules.json: mean
    pooling, then normalisation), the shape of all-MiniLM-L6-v2."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    body = tmp_path_factory.mktemp("tiny-bert-body")
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    BertModel(config).save_pretrained(body)
    tokenizer.save_pretrained(body)
    transformer = Transformer(str(body))
    modules = [transformer, Pooling(32, pooling_mode="mean"), Normalize()]
    out = tmp_path_factory.mktemp("tiny-sentence-encoder")
    SentenceTransformer(modules=modules).save(str(out))
    return out


def test_classifier_of_a_sentence_encoder_reads_its_embedding_not_cls(tiny_sentence_encoder):
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tunelab.models.pooled_classifier import PooledClassifier

    texts = ["这个很好用", "质量太差了退货了不会再买", "好"]
    encoder = SentenceTransformer(str(tiny_sentence_encoder))
    expected = encoder.encode(texts, convert_to_tensor=True)
    cls_model = AutoModelForSequenceClassification.from_pretrained(tiny_sentence_encoder)
    model = PooledClassifier(SentenceTransformer(str(tiny_sentence_encoder)), cls_model.config)
    batch = AutoTokenizer.from_pretrained(tiny_sentence_encoder)(
        texts, padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        embedded = model.eval().embed(**batch)
        cls_state = cls_model.bert(**batch).last_hidden_state[:, 0]
    assert torch.allclose(embedded, expected, atol=1e-5)  # mean pooled and normalised
    assert not torch.allclose(torch.nn.functional.normalize(cls_state, dim=-1), expected)


def test_few_shot_on_a_sentence_encoder_saves_a_folder_sentence_transformers_loads(
    tiny_sentence_encoder, tmp_path
):
    import numpy as np
    from sentence_transformers import SentenceTransformer
    from transformers import AutoConfig

    train = tmp_path / "train.csv"
    make_reviews(300, seed=11).to_csv(train, index=False)
    config = tiny_run_config(
        tiny_sentence_encoder, train, tmp_path / "run",
        data={"train_per_class": 8},
        training={"method": "few-shot", "learning_rate": 1e-3},
        few_shot={"pair_rounds": 5},
    )  # fmt: skip
    result = tunelab.train(config)
    texts = ["这个很好用", "质量太差了退货"]
    ours = tunelab.predict(result["model_dir"], texts=texts)
    # no tunelab needed to use the folder: its last module gives the label scores
    scores = SentenceTransformer(result["model_dir"]).encode(texts)
    labels = AutoConfig.from_pretrained(result["model_dir"]).id2label
    assert [r["label"] for r in ours] == [labels[int(i)] for i in scores.argmax(1)]
    best = np.exp(scores[0]).max() / np.exp(scores[0]).sum()
    assert ours[0]["score"] == pytest.approx(float(best), abs=1e-5)
