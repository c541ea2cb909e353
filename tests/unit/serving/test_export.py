"""ONNX export on tiny models: parity with PyTorch, int8, and the ONNX server backend."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

import tunelab
from tunelab.errors import UserError

pytest.importorskip("onnxruntime")
pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from tunelab.serving.server import create_app


@pytest.fixture(scope="module")
def exported(classifier_run, tmp_path_factory):
    """The classifier run exported by the CLI with --quantize int8, and what it printed."""
    from typer.testing import CliRunner

    from tunelab.cli import app

    run = tmp_path_factory.mktemp("exported") / "run"
    shutil.copytree(classifier_run, run)
    done = CliRunner().invoke(app, ["export", str(run), "--format", "onnx", "--quantize", "int8"])
    assert done.exit_code == 0, done.output
    return run, done.output


def test_export_writes_a_servable_folder_and_prints_the_parity_check(exported):
    run, printed = exported
    folder = run / "model" / "onnx"
    for name in ("model.onnx", "model_quantized.onnx", "config.json", "tokenizer.json",
                 "README.md", "export.json"):  # fmt: skip
        assert (folder / name).is_file(), name
    info = json.loads((folder / "export.json").read_text())
    assert info["serve"] == "int8" and info["task"] == "text-classification"
    assert info["samples"] == {"rows": 40, "source": str(run / "predictions.jsonl")}
    assert info["parity"]["fp32"]["label_agreement"] == 1.0
    assert info["parity"]["fp32"]["max_abs_logit_diff"] < 1e-3
    assert 0.0 <= info["parity"]["int8"]["label_agreement"] <= 1.0
    assert info["sizes_mb"]["int8"] < info["sizes_mb"]["fp32"]
    assert "fp32: labels agree with PyTorch on 100.00% of rows" in printed
    assert "int8: labels agree with PyTorch on" in printed


def test_onnx_backend_serves_the_int8_model_with_the_reported_agreement(exported):
    run, _ = exported
    texts = [json.loads(line)["text"] for line in (run / "predictions.jsonl").open()]
    torch_records = tunelab.predict(run, texts=texts)
    with TestClient(create_app(run, backend="onnx")) as client:
        served = client.post("/predict", json={"texts": texts}).json()
        meta = client.get("/metadata").json()
    assert meta["backend"] == "onnx" and meta["labels"] == ["negative", "positive"]
    assert [r["text"] for r in served] == texts
    agreement = sum(
        a["label"] == b["label"] for a, b in zip(served, torch_records, strict=True)
    ) / len(texts)
    info = json.loads((run / "model" / "onnx" / "export.json").read_text())
    assert agreement == pytest.approx(info["parity"]["int8"]["label_agreement"])
    for a, b in zip(served, torch_records, strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=0.02)  # int8 weights, close


def test_tagger_export_serves_the_same_tags_as_pytorch(tagger_run, tmp_path):
    from tunelab.serving.export import export_onnx

    shutil.copytree(tagger_run, tmp_path / "run")
    info = export_onnx(tmp_path / "run", samples=32)
    assert info["serve"] == "fp32" and info["samples"]["source"] == "generated"
    assert info["parity"]["fp32"] == {
        "rows": 32, "max_abs_logit_diff": pytest.approx(0, abs=1e-3), "label_agreement": 1.0,
    }  # fmt: skip
    texts = ["张三在北京买了书", "王芳去上海看李小明"]
    expected = tunelab.predict(tmp_path / "run", texts=texts)
    with TestClient(create_app(tmp_path / "run", backend="onnx")) as client:
        served = client.post("/predict", json={"texts": texts}).json()
    assert [r["tags"] for r in served] == [r["tags"] for r in expected]
    assert [[e["text"] for e in r["entities"]] for r in served] == [
        [e["text"] for e in r["entities"]] for r in expected
    ]


def test_generation_models_are_refused_with_what_works(tiny_llama, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.serving.export import export_onnx
    from tunelab.tasks.generation import CausalGeneration

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    model.config.tunelab = {**CausalGeneration().metadata(), "max_length": 64}
    model.save_pretrained(tmp_path / "model")
    AutoTokenizer.from_pretrained(tiny_llama).save_pretrained(tmp_path / "model")
    covered = (
        "covers text-classification, token-classification, sentence-embedding, "
        "image-classification, audio-classification models; this is a causal-lm"
    )
    with pytest.raises(UserError, match=covered):
        export_onnx(tmp_path)


def test_bad_options_and_a_missing_extra_are_user_errors(classifier_run, monkeypatch):
    from tunelab.serving.export import export_onnx

    with pytest.raises(UserError, match="--quantize int4 is not supported"):
        export_onnx(classifier_run, quantize="int4")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(UserError, match=r"pip install 'tunelab\[onnx\]'"):
        export_onnx(classifier_run)
