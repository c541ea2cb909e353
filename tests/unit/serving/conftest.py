"""Tiny tunelab model folders for the serving tests, built in code (no training): a random
head on the tiny BERT is enough to compare the server's answers with tunelab predict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_reviews


def save_model(source: Path, out: Path, auto_class: type, task: object, labels: list[str]) -> Path:
    """Save ``source`` with a new head for ``labels`` and ``task``'s metadata as a run folder
    (``out/model``); returns the run folder."""
    import torch
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    model = auto_class.from_pretrained(
        source,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    model.config.tunelab = {**task.metadata(), "max_length": 64}
    model.save_pretrained(out / "model")
    AutoTokenizer.from_pretrained(source).save_pretrained(out / "model")
    return out


@pytest.fixture(scope="session")
def classifier_run(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentiment classifier run with a model card and the test predictions of a run."""
    from transformers import AutoModelForSequenceClassification

    from tunelab.tasks.text_classification import TextClassification

    labels = ["negative", "positive"]
    task = TextClassification(problem_type="single_label", labels=labels)
    run = save_model(
        tiny_bert, tmp_path_factory.mktemp("classifier"), AutoModelForSequenceClassification,
        task, labels,
    )  # fmt: skip
    (run / "model" / "README.md").write_text("# Tiny sentiment\n\nA test model.\n", "utf-8")
    rows = make_reviews(40, seed=7).to_dict("records")
    lines = [json.dumps({"text": r["text"], "gold": r["label"]}, ensure_ascii=False) for r in rows]
    (run / "predictions.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    return run


@pytest.fixture(scope="session")
def tagger_run(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BIO person/place tagger run."""
    from transformers import AutoModelForTokenClassification

    from tunelab.tasks.token_classification import TokenClassification

    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    return save_model(
        tiny_bert, tmp_path_factory.mktemp("tagger"), AutoModelForTokenClassification,
        TokenClassification(scheme="bio", labels=labels), labels,
    )  # fmt: skip


@pytest.fixture(scope="session")
def encoder_run(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentence-encoder run: the tiny BERT with mean pooling and normalisation, saved as the
    sentence-transformers folder tunelab train writes (no training: random weights embed)."""
    pytest.importorskip("sentence_transformers")
    import torch
    from sentence_transformers.base.modules import Normalize

    from tunelab.tasks.sentence_embedding import SentenceEmbedding, load_sentence_transformer

    torch.manual_seed(0)
    model = load_sentence_transformer(str(tiny_bert), "mean")
    model.append(Normalize())
    model.config.tunelab = {**SentenceEmbedding(shape="pairs").metadata(), "max_length": 64}
    run = tmp_path_factory.mktemp("encoder") / "man-search"
    model.save(str(run / "model"))
    return run


@pytest.fixture(scope="session")
def causal_run(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama saved as a causal-lm run, its stop tokens in generation_config; its
    weights drawn wider than at init, so that it writes varied text rather than one token."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.tasks.generation import CausalGeneration

    run = tmp_path_factory.mktemp("causal") / "chat-run"
    task = CausalGeneration(settings={"max_new_tokens": 12, "packing": False})
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    torch.manual_seed(1)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.normal_(0, 0.3)
    model.config.tunelab = {**task.metadata(), "max_length": 64}
    task.finish(model, tokenizer)
    model.save_pretrained(run / "model")
    tokenizer.save_pretrained(run / "model")
    return run
