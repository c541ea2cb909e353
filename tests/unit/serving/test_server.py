"""The REST server on tiny models: same records as tunelab predict, limits, keys, batching."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

import tunelab
from tests.conftest import make_reviews
from tunelab.errors import UserError

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from tunelab.serving.server import create_app

TEXTS = make_reviews(6, seed=3)["text"].tolist()


@pytest.fixture(scope="module")
def client(classifier_run):
    app = create_app(classifier_run, max_texts=8, max_chars=50, batch_wait_ms=1)
    with TestClient(app) as test_client:
        yield test_client


def test_single_text_and_batch_give_the_records_of_tunelab_predict(client, classifier_run):
    one = client.post("/predict", json={"text": TEXTS[0]})
    assert one.status_code == 200
    assert one.json() == tunelab.predict(classifier_run, texts=TEXTS[:1])
    batch = client.post("/predict", json={"texts": TEXTS})
    assert batch.json() == tunelab.predict(classifier_run, texts=TEXTS)
    assert {"text", "label", "score", "probabilities"} == set(batch.json()[0])


def test_health_metadata_and_openapi_docs(client):
    assert client.get("/health").json() == {"status": "ok"}
    meta = client.get("/metadata").json()
    assert meta["task"] == "text-classification"
    assert meta["labels"] == ["negative", "positive"]
    assert meta["max_length"] == 64 and meta["backend"] == "torch"
    assert meta["model_card"].startswith("# Tiny sentiment")
    schema = client.get("/openapi.json").json()
    request = schema["components"]["schemas"]["PredictRequest"]
    assert {"text", "texts", "text_pair", "text_pairs"} <= set(request["properties"])
    assert "label" in schema["components"]["schemas"]["Prediction"]["properties"]
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"texts": ["好"] * 9}, 413, "9 texts in one request; the server takes at most 8"),
        ({"texts": ["好", "长" * 51]}, 413, "text 1 has 51 characters"),
        ({"text": "长" * 51}, 413, "at most 50 per text"),
        ({"texts": "not a list"}, 422, "texts: Input should be a valid list"),
        ({"text": "好", "texts": ["好"]}, 422, "either text"),
        ({"texts": []}, 422, "texts is empty"),
        ({"txt": "好"}, 422, "txt: Extra inputs are not permitted"),
        ({"text": "好", "text_pair": "坏"}, 422, "reads single texts"),
        ({"text": 5}, 422, "text: Input should be a valid string"),
    ],
)
def test_limits_answer_413_and_malformed_bodies_422_with_one_sentence(client, body, status, words):
    answer = client.post("/predict", json=body)
    assert answer.status_code == status
    assert set(answer.json()) == {"error"} and words in answer.json()["error"]


def test_invalid_json_and_oversized_bodies(client):
    answer = client.post(
        "/predict", content=b'{"text": ', headers={"content-type": "application/json"}
    )
    assert (answer.status_code, answer.json()) == (
        422,
        {"error": "the request body is not valid JSON"},
    )
    huge = b'{"texts": ["' + b"x" * 2_000_000 + b'"]}'
    answer = client.post("/predict", content=huge, headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "over the limit" in answer.json()["error"]


def test_api_key_from_argument_or_environment(classifier_run, monkeypatch):
    with TestClient(create_app(classifier_run, api_key="s3cret")) as keyed:
        assert keyed.post("/predict", json={"text": "好"}).status_code == 401
        wrong = keyed.post("/predict", json={"text": "好"}, headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401 and "API key" in wrong.json()["error"]
        assert keyed.get("/metadata").status_code == 401
        assert keyed.get("/health").status_code == 200  # liveness stays open
        bearer = {"Authorization": "Bearer s3cret"}
        assert keyed.post("/predict", json={"text": "好"}, headers=bearer).status_code == 200
        header = {"X-API-Key": "s3cret"}
        assert keyed.get("/metadata", headers=header).status_code == 200
    monkeypatch.setenv("TUNELAB_API_KEY", "from-env")
    with TestClient(create_app(classifier_run)) as keyed:
        assert keyed.post("/predict", json={"text": "好"}).status_code == 401
        ok = keyed.post("/predict", json={"text": "好"}, headers={"X-API-Key": "from-env"})
        assert ok.status_code == 200


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(classifier_run):
    app = create_app(classifier_run, batch_wait_ms=300, max_batch=64)
    texts = make_reviews(12, seed=9)["text"].tolist()
    expected = tunelab.predict(classifier_run, texts=texts)
    with TestClient(app) as test_client, ThreadPoolExecutor(len(texts)) as pool:
        answers = list(
            pool.map(lambda t: test_client.post("/predict", json={"text": t}).json(), texts)
        )
    batcher = app.state.batcher
    assert batcher.items == len(texts)
    assert batcher.batches < len(texts)  # some requests shared a forward pass
    for answer, want in zip(answers, expected, strict=True):
        assert len(answer) == 1 and answer[0]["text"] == want["text"]
        assert answer[0]["label"] == want["label"]
        assert answer[0]["score"] == pytest.approx(want["score"], abs=1e-4)  # other padding


def test_a_failing_request_fails_alone_when_it_shared_a_batch():
    import asyncio

    from tunelab.serving.batching import MicroBatcher

    def infer(items):
        if any(text == "bad" for text, _ in items):
            raise ValueError("cannot read 'bad'")
        return [{"text": text} for text, _ in items]

    batcher = MicroBatcher(infer, max_batch=64, wait_ms=200)

    async def three_requests():
        texts = ["a", "bad", "c"]
        answers = await asyncio.gather(
            *(batcher.submit([(t, None)]) for t in texts), return_exceptions=True
        )
        await batcher.close()
        return answers

    first, bad, last = asyncio.run(three_requests())
    assert first == [{"text": "a"}] and last == [{"text": "c"}]
    assert isinstance(bad, ValueError)
    assert batcher.batches == 2  # the shared batch failed; each good request then ran alone


def test_token_classification_through_predict(tagger_run):
    texts = ["张三在北京买了书", "王芳去上海"]
    with TestClient(create_app(tagger_run)) as test_client:
        answer = test_client.post("/predict", json={"texts": texts}).json()
        meta = test_client.get("/metadata").json()
    assert answer == tunelab.predict(tagger_run, texts=texts)
    assert answer[0]["tokens"] == list("张三在北京买了书") and "entities" in answer[0]
    assert meta["task"] == "token-classification" and meta["labels"][0] == "O"


def test_pair_classifier_takes_text_pairs(tiny_bert, tmp_path):
    import pandas as pd
    from transformers import AutoModelForSequenceClassification

    from tests.unit.serving.conftest import save_model
    from tunelab.tasks.text_classification import TextClassification

    labels = ["different", "same"]
    task = TextClassification("premise", text_pair_column="hypothesis", labels=labels,
                              problem_type="single_label")  # fmt: skip
    run = save_model(tiny_bert, tmp_path, AutoModelForSequenceClassification, task, labels)
    pairs = pd.DataFrame({"premise": ["很好", "太差"], "hypothesis": ["不错", "很好"]})
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    expected = tunelab.predict(run, input=tmp_path / "pairs.csv")
    with TestClient(create_app(run)) as test_client:
        one = test_client.post("/predict", json={"text": "很好", "text_pair": "不错"})
        both = test_client.post("/predict", json={"texts": ["很好", "太差"],
                                                  "text_pairs": ["不错", "很好"]})  # fmt: skip
        missing = test_client.post("/predict", json={"text": "很好"})
    assert one.json() == expected[:1] and both.json() == expected
    assert missing.status_code == 422 and "text pairs" in missing.json()["error"]


def test_causal_generation_through_predict(tiny_llama, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.tasks.generation import CausalGeneration

    task = CausalGeneration(settings={"max_new_tokens": 4, "packing": False})
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    model.config.tunelab = {**task.metadata(), "max_length": 64}
    model.save_pretrained(tmp_path / "model")
    AutoTokenizer.from_pretrained(tiny_llama).save_pretrained(tmp_path / "model")
    with TestClient(create_app(tmp_path)) as test_client:
        answer = test_client.post("/predict", json={"texts": ["red cat", "dog"]}).json()
    assert answer == tunelab.predict(tmp_path, texts=["red cat", "dog"])
    assert [r["source"] for r in answer] == ["red cat", "dog"] and "output" in answer[0]


def test_model_files_that_lead_outside_the_folder_are_refused(classifier_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(classifier_run / "model", run / "model")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (run / "model" / "model.safetensors").rename(outside / "model.safetensors")
    (run / "model" / "model.safetensors").symlink_to(outside / "model.safetensors")
    with pytest.raises(UserError, match="outside the model folder"):
        create_app(run)
    linked = tmp_path / "linked-run"
    linked.mkdir()
    (linked / "model").symlink_to(classifier_run / "model")  # the whole model/ elsewhere
    with pytest.raises(UserError, match="outside the model folder"):
        create_app(linked)


def test_missing_serve_extra_names_the_pip_command(classifier_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import fails as if not installed
    with pytest.raises(UserError, match=r"pip install 'tunelab\[serve\]'"):
        create_app(classifier_run)


def test_cli_serves_on_loopback_with_a_key_from_the_environment(classifier_run, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from tunelab.cli import app

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda served, **options: started.update(
        app=served, **options))  # fmt: skip
    done = CliRunner().invoke(
        app, ["serve", str(classifier_run), "--port", "8123", "--max-texts", "2"],
        env={"TUNELAB_API_KEY": "k"},
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert (started["host"], started["port"]) == ("127.0.0.1", 8123)
    with TestClient(started["app"]) as served:
        assert served.post("/predict", json={"text": "好"}).status_code == 401
        answer = served.post("/predict", json={"text": "好"}, headers={"X-API-Key": "k"})
        assert answer.status_code == 200 and answer.json()[0]["text"] == "好"
        too_many = served.post("/predict", json={"texts": ["a"] * 3}, headers={"X-API-Key": "k"})
        assert too_many.status_code == 413


def test_cli_refuses_a_folder_that_is_not_a_model(tmp_path):
    from typer.testing import CliRunner

    from tunelab.cli import app

    done = CliRunner().invoke(app, ["serve", str(tmp_path)])
    assert isinstance(done.exception, UserError)  # main() prints it in one line, exit code 2
    assert "not a tunelab model folder" in str(done.exception)


def test_unknown_backend_is_a_user_error(classifier_run):
    with pytest.raises(UserError, match="--backend tf is not one of torch, onnx"):
        create_app(classifier_run, backend="tf")


def test_onnx_backend_without_an_export_says_how_to_make_one(tagger_run, tmp_path):
    import shutil

    shutil.copytree(tagger_run / "model", tmp_path / "model")
    with pytest.raises(UserError, match=r"no ONNX export.*tunelab export"):
        create_app(tmp_path, backend="onnx")


def test_bf16_serving_gives_the_records_of_tunelab_predict_in_bf16(classifier_run):
    with TestClient(create_app(classifier_run, precision="bf16", batch_wait_ms=1)) as bf16:
        assert bf16.get("/metadata").json()["precision"] == "bf16"
        answer = bf16.post("/predict", json={"texts": TEXTS}).json()
    assert answer == tunelab.predict(classifier_run, texts=TEXTS, precision="bf16")
    exact = tunelab.predict(classifier_run, texts=TEXTS)
    assert answer != exact  # bf16's scores, not fp32's
    assert [r["score"] for r in answer] == pytest.approx([r["score"] for r in exact], abs=0.02)


def test_precision_is_for_the_torch_backend_and_a_known_value(classifier_run):
    with pytest.raises(UserError, match="--precision bf16 is for the torch backend"):
        create_app(classifier_run, backend="onnx", precision="bf16")
    with pytest.raises(UserError, match="precision 'fp64' is not one of"):
        create_app(classifier_run, precision="fp64")
