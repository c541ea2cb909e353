"""Sentence encoders behind the server and in ONNX: OpenAI's /v1/embeddings with the vectors
of tunelab predict, and an exported graph whose vectors match PyTorch's."""

from __future__ import annotations

import base64
import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import tunelab

pytest.importorskip("sentence_transformers")
pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from tunelab.serving.server import create_app

# short, long, longer than the 64-token limit, and empty: padding and truncation both matter
TEXTS = ["好", "这个东西很好 物流也快", "质量 " * 60, "abc def", ""]


def vectors(records):
    return np.array([r["embedding"] for r in records], dtype=np.float32)


@pytest.fixture(scope="module")
def client(encoder_run):
    with TestClient(create_app(encoder_run, max_texts=8, max_chars=400)) as test_client:
        yield test_client


def test_v1_embeddings_answers_as_openai_with_the_vectors_of_tunelab_predict(client, encoder_run):
    answer = client.post("/v1/embeddings", json={"input": TEXTS, "model": "anything"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["object"] == "list" and body["model"] == "man-search"
    assert [d["index"] for d in body["data"]] == list(range(len(TEXTS)))
    assert {d["object"] for d in body["data"]} == {"embedding"}
    expected = vectors(tunelab.predict(encoder_run, texts=TEXTS))
    np.testing.assert_allclose(vectors(body["data"]), expected, atol=1e-5)
    assert np.allclose(np.linalg.norm(expected, axis=1), 1.0, atol=1e-4)  # the Normalize module
    # BERT's [CLS] and [SEP] around each text, truncated to the model's 64 tokens
    tokens = [min(len(t.replace(" ", "")) + 2, 64) for t in TEXTS]
    assert body["usage"] == {"prompt_tokens": sum(tokens), "total_tokens": sum(tokens)}

    one = client.post("/v1/embeddings", json={"input": TEXTS[1]}).json()
    assert len(one["data"]) == 1
    np.testing.assert_allclose(one["data"][0]["embedding"], expected[1], atol=1e-5)


def test_base64_vectors_and_dimensions_equal_to_the_model(client):
    floats = client.post("/v1/embeddings", json={"input": TEXTS[:2]}).json()["data"]
    packed = client.post(
        "/v1/embeddings", json={"input": TEXTS[:2], "encoding_format": "base64", "dimensions": 32}
    ).json()["data"]
    for plain, coded in zip(floats, packed, strict=True):
        decoded = np.frombuffer(base64.b64decode(coded["embedding"]), dtype="<f4")
        np.testing.assert_array_equal(decoded, np.asarray(plain["embedding"], dtype=np.float32))
    assert client.get("/metadata").json()["dimensions"] == 32


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"input": ["a", "b"], "dimensions": 16}, 422, "dimensions=16: this model writes "
         "vectors of 32 numbers and does not shorten them"),
        ({"input": []}, 422, "input is empty; give at least one text"),
        ({"input": ["好"] * 9}, 413, "9 texts in one request; the server takes at most 8"),
        ({"input": ["好", "长" * 401]}, 413, "text 1 has 401 characters"),
        ({"input": [[101, 102]]}, 422, "input: Value error, give a string or a list of strings"),
        ({"input": "a", "encoding_format": "int8"}, 422, "encoding_format: Input should be"),
        ({"texts": ["a"]}, 422, "input: Field required"),
    ],
)  # fmt: skip
def test_bad_embedding_requests_get_one_sentence(client, body, status, words):
    answer = client.post("/v1/embeddings", json=body)
    assert answer.status_code == status
    error = answer.json()["error"]  # OpenAI's error object, as its clients read it
    assert set(answer.json()) == {"error"} and words in error["message"], answer.json()
    assert error["type"] == "invalid_request_error"


def test_predict_and_metadata_serve_an_encoder_too(client, encoder_run):
    records = client.post("/predict", json={"texts": TEXTS[:3]}).json()
    assert records == tunelab.predict(encoder_run, texts=TEXTS[:3])
    assert set(records[0]) == {"text", "embedding"}
    meta = client.get("/metadata").json()
    assert meta["task"] == "sentence-embedding" and meta["labels"] is None


def test_embedding_requests_share_batches_with_each_other(encoder_run):
    app = create_app(encoder_run, batch_wait_ms=300, max_batch=64)
    texts = [f"第{i}个 东西 {'很好' * i}" for i in range(8)]
    expected = vectors(tunelab.predict(encoder_run, texts=texts))
    with TestClient(app) as test_client, ThreadPoolExecutor(len(texts)) as pool:
        answers = list(
            pool.map(lambda t: test_client.post("/v1/embeddings", json={"input": t}).json(), texts)
        )
    assert app.state.batcher.items == len(texts)
    assert app.state.batcher.batches < len(texts)  # some requests shared a forward pass
    for answer, want in zip(answers, expected, strict=True):
        np.testing.assert_allclose(answer["data"][0]["embedding"], want, atol=1e-5)  # padding


def test_a_key_guards_v1_embeddings(encoder_run):
    with TestClient(create_app(encoder_run, api_key="s3cret")) as keyed:
        assert keyed.post("/v1/embeddings", json={"input": "好"}).status_code == 401
        bearer = {"Authorization": "Bearer s3cret"}
        assert keyed.post("/v1/embeddings", json={"input": "好"}, headers=bearer).status_code == 200


def test_a_classifier_refuses_v1_embeddings_with_what_to_do(classifier_run):
    with TestClient(create_app(classifier_run)) as test_client:
        answer = test_client.post("/v1/embeddings", json={"input": "好"})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        "this server holds a text-classification model, which does not embed texts; "
        "POST /predict instead"
    )


# -- ONNX ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(encoder_run, tmp_path_factory):
    """The encoder run exported by the CLI (fp32), and what it printed."""
    pytest.importorskip("onnxruntime")
    from typer.testing import CliRunner

    from tunelab.cli import app

    run = tmp_path_factory.mktemp("exported-encoder") / "man-search"
    shutil.copytree(encoder_run, run)
    done = CliRunner().invoke(app, ["export", str(run), "--format", "onnx"])
    assert done.exit_code == 0, done.output
    return run, done.output


def test_the_graph_outputs_pytorch_s_vectors_whatever_the_padding(exported):
    from tunelab.api import text_frame
    from tunelab.serving.onnx_model import load_onnx

    run, printed = exported
    info = json.loads((run / "model" / "onnx" / "export.json").read_text())
    assert info["task"] == "sentence-embedding" and info["serve"] == "fp32"
    assert info["parity"]["fp32"]["max_abs_embedding_diff"] < 1e-4
    assert "label_agreement" not in info["parity"]["fp32"]
    assert "fp32: max |embedding difference| " in printed

    model, tokenizer, task, max_length = load_onnx(run)
    together = task.forward(model, tokenizer, text_frame(task, TEXTS), max_length, 64).vectors
    alone = np.concatenate(
        [task.forward(model, tokenizer, text_frame(task, [t]), max_length, 1).vectors
         for t in TEXTS]
    )  # fmt: skip
    reference = vectors(tunelab.predict(run, texts=TEXTS))
    assert np.abs(together - reference).max() < 1e-4
    assert np.abs(alone - together).max() < 1e-5  # padding changes nothing


def test_the_onnx_backend_serves_the_same_vectors(exported):
    run, _ = exported
    expected = vectors(tunelab.predict(run, texts=TEXTS))
    with TestClient(create_app(run, backend="onnx")) as test_client:
        answer = test_client.post("/v1/embeddings", json={"input": TEXTS}).json()
        meta = test_client.get("/metadata").json()
    assert meta["backend"] == "onnx" and meta["dimensions"] == 32
    assert answer["model"] == "man-search"
    assert np.abs(vectors(answer["data"]) - expected).max() < 1e-4


def test_int8_export_of_an_encoder_stays_close(exported, tmp_path):
    from tunelab.serving.export import export_onnx

    run, _ = exported
    info = export_onnx(run, tmp_path / "onnx", quantize="int8", samples=16)
    assert info["serve"] == "int8" and info["sizes_mb"]["int8"] < info["sizes_mb"]["fp32"]
    assert info["samples"]["source"] == "generated"
    assert info["parity"]["fp32"]["max_abs_embedding_diff"] < 1e-4
    assert info["parity"]["int8"]["max_abs_embedding_diff"] < 0.05  # int8 weights: close
