"""GGUF export of a causal run: the file loads back in transformers (``gguf_file=``) with the
same logits and greedy answers, carries the tokenizer and chat template, and comes with an
Ollama Modelfile whose template renders chats as the Jinja one does."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("gguf")

from tunelab.errors import UserError
from tunelab.serving.gguf_export import export_gguf


def test_cli_writes_gguf_files_that_load_back_with_the_same_answers(causal_run):
    import gguf
    from typer.testing import CliRunner

    from tunelab.cli import app

    done = CliRunner().invoke(
        app, ["export", str(causal_run), "--format", "gguf", "--quantize", "f32,f16,q8_0"]
    )
    assert done.exit_code == 0, done.output
    folder = causal_run / "model" / "gguf"
    checks = json.loads((folder / "export.json").read_text())["types"]
    assert checks["f32"]["max_abs_logit_diff"] < 1e-4
    assert checks["f16"]["max_abs_logit_diff"] < 5e-2
    for kind in ("f32", "f16"):
        assert checks[kind]["greedy_answers_equal"] == "4/4"
        assert checks[kind]["tokenizer_ids_equal"] == "4/4"
    assert checks["q8_0"]["megabytes"] < checks["f16"]["megabytes"] < checks["f32"]["megabytes"]
    assert "q8_0: " in done.output and "greedy answers equal" in done.output

    reader = gguf.GGUFReader(str(folder / "model-f16.gguf"))
    fields = reader.fields
    template = bytes(fields["tokenizer.chat_template"].parts[-1]).decode()
    assert "<|im_end|>" in template
    eot = int(fields["tokenizer.ggml.eot_token_id"].parts[-1][0])
    assert eot != int(fields["tokenizer.ggml.eos_token_id"].parts[-1][0])

    modelfile = (folder / "Modelfile").read_text()
    assert modelfile.startswith('FROM ./model-f32.gguf\nTEMPLATE """{{- range .Messages }}')
    assert 'PARAMETER stop "<|im_end|>"' in modelfile


def test_go_template_is_left_out_when_it_cannot_match(tiny_llama):
    from transformers import AutoTokenizer

    from tunelab.serving.gguf_export import ollama_modelfile

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'user' %}Q: {{ m['content'] }}\n"
        "{% else %}A: {{ m['content'] }}\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}A:{% endif %}"
    )
    text, matched = ollama_modelfile(tokenizer, "m.gguf")
    assert not matched and "TEMPLATE" not in text and "FROM ./m.gguf" in text


def test_an_encoder_is_refused_in_one_sentence(classifier_run, tmp_path):
    with pytest.raises(UserError, match="Llama-shaped causal"):
        export_gguf(classifier_run, tmp_path / "out")
