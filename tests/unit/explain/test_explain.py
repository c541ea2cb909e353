"""Explanations on tiny trained models: integrated gradients, attention maps, HTML, CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

import tunelab
from tests.conftest import NEGATIVE, POSITIVE, make_entities, make_reviews, tiny_run_config
from tunelab.errors import UserError
from tunelab.explain import explain, explain_loaded, render_fragment, render_page


@pytest.fixture(scope="module")
def sentiment_run(tiny_bert, tmp_path_factory) -> Path:
    """A run of the tiny BERT fine-tuned on generated reviews.

    The random body, not ``tiny_sentiment_body``: that body's saturated features make the
    probability jump from one class to the other within a tenth of the path from the baseline,
    which integrated gradients needs hundreds of steps to follow.
    """
    root = tmp_path_factory.mktemp("explain-run")
    make_reviews(300).to_csv(root / "reviews.csv", index=False)
    result = tunelab.train(tiny_run_config(tiny_bert, root / "reviews.csv", root / "run"))
    assert result["metrics"]["test"]["accuracy"] >= 0.9
    return root / "run"


@pytest.fixture(scope="module")
def loaded(sentiment_run):
    return tunelab.load_trained(sentiment_run)


def _probability(model, ids: torch.Tensor, label: int) -> float:
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    return float(torch.softmax(logits, dim=-1)[0, label])


def test_attributions_add_up_to_the_probability_change_from_the_baseline(loaded):
    model, tokenizer, task, _ = loaded
    (item,) = explain_loaded(model, tokenizer, task, ["这个东西很好用起来"], steps=256)
    ids = torch.tensor([tokenizer("这个东西很好用起来")["input_ids"]])
    special = torch.tensor([item["special"]])
    baseline = torch.where(special, ids, torch.full_like(ids, tokenizer.pad_token_id))
    label = model.config.label2id[item["target"]]
    at_text, at_baseline = _probability(model, ids, label), _probability(model, baseline, label)
    assert item["probability"] == pytest.approx(at_text, abs=1e-5)
    total = sum(item["attributions"])
    # completeness: the attributions share out the whole change, up to the reported delta
    assert total - (at_text - at_baseline) == pytest.approx(item["delta"], abs=1e-4)
    assert abs(item["delta"]) < 0.02 * max(abs(at_text - at_baseline), 0.05)
    assert [item["attributions"][i] for i, s in enumerate(item["special"]) if s] == [0.0, 0.0]
    assert len(item["attributions"]) == len(item["tokens"]) == len(item["offsets"])


def test_the_sentiment_word_gets_the_top_attribution(loaded):
    model, tokenizer, task, _ = loaded
    reviews = make_reviews(24, seed=11)
    explanations = explain_loaded(model, tokenizer, task, reviews["text"].tolist(), steps=24)
    hits = checked = 0
    for item, gold in zip(explanations, reviews["label"], strict=True):
        if item["predicted"] != gold:
            continue
        checked += 1
        word = next(w for w in POSITIVE + NEGATIVE if w in item["text"])
        start = item["text"].index(word)
        top = max(range(len(item["tokens"])), key=lambda i: item["attributions"][i])
        hits += item["offsets"][top] is not None and start <= item["offsets"][top][0] < start + 2
    # the word is 2 of 4-20 characters: random attributions would hit about one time in six
    assert checked >= 20 and hits / checked >= 0.8


def test_attention_rows_sum_to_one_for_the_chosen_layer_and_head(loaded):
    model, tokenizer, task, _ = loaded
    before = model.config._attn_implementation
    (last,) = explain_loaded(model, tokenizer, task, ["买了很好"], steps=4)
    (first,) = explain_loaded(model, tokenizer, task, ["买了很好"], steps=4, layer=0, head=1)
    assert model.config._attn_implementation == before  # switched back after eager
    for item, layer, head in ((last, 1, None), (first, 0, 1)):
        matrix = torch.tensor(item["attention"]["matrix"])
        assert matrix.shape == (len(item["tokens"]),) * 2
        assert torch.allclose(matrix.sum(dim=-1), torch.ones(len(matrix)), atol=1e-3)
        assert (item["attention"]["layer"], item["attention"]["head"]) == (layer, head)
    assert last["attention"]["matrix"] != first["attention"]["matrix"]


@pytest.mark.parametrize(
    ("options", "message"),
    [({"layer": 2}, "--layer 2 is out of range.*0 to 1"), ({"head": 5}, "--head 5.*0 to 1"),
     ({"target": "neutral"}, "'neutral' is not a label.*negative, positive")],
)  # fmt: skip
def test_bad_layer_head_or_target_name_the_option_and_range(loaded, options, message):
    model, tokenizer, task, _ = loaded
    with pytest.raises(UserError, match=message):
        explain_loaded(model, tokenizer, task, ["很好"], steps=4, **options)


def test_generation_models_and_missing_captum_get_clear_errors(loaded, monkeypatch):
    from tunelab.tasks.generation import Seq2SeqGeneration

    with pytest.raises(UserError, match=r"not for seq2seq models.*tunelab predict"):
        explain_loaded(None, None, Seq2SeqGeneration(), ["text"])
    model, tokenizer, task, _ = loaded
    monkeypatch.setitem(sys.modules, "captum.attr", None)  # import now fails
    with pytest.raises(UserError, match=r"pip install 'tunelab\[explain\]'"):
        explain_loaded(model, tokenizer, task, ["很好"], steps=4)


def test_target_label_is_explained_instead_of_the_prediction(loaded):
    model, tokenizer, task, _ = loaded
    (own,) = explain_loaded(model, tokenizer, task, ["东西很好"], steps=16)
    other = "negative" if own["predicted"] == "positive" else "positive"
    (forced,) = explain_loaded(model, tokenizer, task, ["东西很好"], steps=16, target=other)
    assert forced["target"] == other and forced["predicted"] == own["predicted"]
    assert forced["probability"] == pytest.approx(1 - own["probability"], abs=1e-5)
    # two classes: what raises one probability lowers the other by as much
    assert forced["attributions"] == pytest.approx([-v for v in own["attributions"]], abs=1e-3)


def test_page_escapes_text_and_fragment_is_embeddable(loaded):
    model, tokenizer, task, _ = loaded
    explanations = explain_loaded(
        model, tokenizer, task, ["<script>alert(1)</script>很好"], steps=4
    )
    page = render_page(explanations, "a <b>title</b>")
    assert "<script" not in page and "<b>" not in page and "&lt;b&gt;title" in page
    assert ">&lt;</span>" in page  # the text's own "<", shown as a token
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "http" not in page.split(
        "<svg")[0]  # fmt: skip
    fragment = render_fragment(explanations)
    assert "<html" not in fragment and "<head" not in fragment and "<svg" in fragment
    assert 'title="很: ' in fragment  # each token carries its value in a tooltip


def test_tagger_explains_each_predicted_entity_token(tiny_bert, tmp_path):
    rows = make_entities(240)
    (tmp_path / "ner.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    config = tiny_run_config(tiny_bert, tmp_path / "ner.jsonl", tmp_path / "run")
    config["task"] = "token-classification"
    config["training"]["epochs"] = 4
    model, tokenizer, task, _ = tunelab.load_trained(tunelab.train(config)["model_dir"])
    text = "我们买了北京价格王芳"
    (item,) = explain_loaded(model, tokenizer, task, [text], steps=16)
    tagged = {t["token_index"]: t["target"] for t in item["targets"]}
    assert {item["tokens"][i] for i in tagged} >= {"北", "王"}
    assert all(label != "O" for label in tagged.values())
    for target in item["targets"]:
        assert len(target["attributions"]) == len(item["tokens"])
        assert abs(target["delta"]) < 0.05
    assert item["offsets"][1] == [0, 1] and item["text"][slice(*item["offsets"][5])] == "北"

    (chosen,) = explain_loaded(model, tokenizer, task, [text], steps=8, target="3")
    assert [t["token_index"] for t in chosen["targets"]] == [3]
    assert "“北” → " in render_page([item], "tags")


def test_lora_run_is_explained_through_the_peft_embeddings(
    tiny_sentiment_body, reviews_csv, tmp_path
):
    # the body that has a pooler: tiny_bert's is new at every load, so its runs differ; its
    # saturated features make the probability jump midway, so many steps are needed
    config = tiny_run_config(
        tiny_sentiment_body, reviews_csv, tmp_path / "lora", peft={"method": "lora"},
        training={"learning_rate": 1e-2, "epochs": 1},
    )  # fmt: skip
    run = Path(tunelab.train(config)["output"])
    text = ["这个东西很好用起来"]
    (item,) = explain(run, text, steps=1024)
    (same,) = explain(run / "model", text, steps=1024)
    assert item["attributions"] == same["attributions"]
    # the adapter folded into plain weights is the same function: the same attributions
    (merged,) = explain(tunelab.merge(run), text, steps=1024)
    assert item["attributions"] == pytest.approx(merged["attributions"], rel=1e-4, abs=1e-5)
    # gradients reach the adapter model's embeddings: the sentiment word leads
    top = max(range(len(item["tokens"])), key=lambda i: item["attributions"][i])
    assert item["tokens"][top] in "很好" and item["attributions"][top] > 0.05
    assert item["delta"] == pytest.approx(merged["delta"], abs=1e-4)


def test_cli_writes_the_page_and_json_and_prints_top_tokens(sentiment_run, tmp_path):
    from typer.testing import CliRunner

    from tunelab.cli import app

    texts = tmp_path / "texts.csv"
    make_reviews(3, seed=4).rename(columns={"text": "review"}).to_csv(texts, index=False)
    runner = CliRunner()
    done = runner.invoke(app, ["explain", str(sentiment_run), "--text", "东西很好", "--text",
                               "质量糟糕", "--output", str(tmp_path / "x.html"), "--json",
                               str(tmp_path / "x.json"), "--steps", "8"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "text 1 -> positive:" in done.output and "text 2 -> negative:" in done.output
    records = json.loads((tmp_path / "x.json").read_text("utf-8"))
    assert [r["text"] for r in records] == ["东西很好", "质量糟糕"]
    assert (tmp_path / "x.html").read_text("utf-8").count("<section>") == 2

    done = runner.invoke(app, ["explain", str(sentiment_run), "--data", str(texts),
                               "--text-column", "review", "--limit", "2", "--steps", "4",
                               "--output", str(tmp_path / "f.html")])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert (tmp_path / "f.html").read_text("utf-8").count("<section>") == 2

    done = runner.invoke(app, ["explain", str(sentiment_run), "--text", "好", "--layer", "7",
                               "--output", str(tmp_path / "y.html")])  # fmt: skip
    assert isinstance(done.exception, UserError) and "--layer 7" in str(done.exception)
    assert not (tmp_path / "y.html").exists()


def test_the_cli_says_when_no_token_moved_the_score(monkeypatch, tmp_path):
    # a model that learned nothing: attributions of 1e-5 printed as "p +0.000, w +0.000"
    from types import SimpleNamespace

    from typer.testing import CliRunner

    import tunelab.explain
    import tunelab.models.trained
    from tunelab.cli import app

    flat = {"text": "ok", "target": "positive", "tokens": ["[CLS]", "o", "k", "[SEP]"],
            "special": [True, False, False, True],
            "attributions": [0.0, 1e-5, 2e-4, 0.0]}  # fmt: skip
    task = SimpleNamespace(explains="text", name="text-classification")
    loads = []
    monkeypatch.setattr(tunelab.models.trained, "trained_task", lambda *args: task)
    monkeypatch.setattr(tunelab.models.trained, "load_trained",
                        lambda *args: loads.append(args) or (None, None, task, 512))  # fmt: skip
    monkeypatch.setattr(tunelab.explain, "explain_loaded", lambda *args: [flat])
    monkeypatch.setattr(tunelab.explain, "render_page", lambda *args: "<html></html>")
    done = CliRunner().invoke(app, ["explain", str(tmp_path), "--text", "ok",
                                    "--output", str(tmp_path / "x.html")])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "text 1 -> positive: (no token raised the score by 0.001 or more)" in done.output
    refused = CliRunner().invoke(app, ["explain", str(tmp_path), "--text", "ok", "--parts", "4",
                                       "--output", str(tmp_path / "y.html")])  # fmt: skip
    assert "--parts applies to image and audio models" in str(refused.exception)
    assert len(loads) == 1  # the refusal came before the weights were loaded
