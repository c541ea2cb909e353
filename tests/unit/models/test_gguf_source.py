"""GGUF files as a model source: a tiny Llama written as GGUF in the test comes back as the
same model (logits, tokens, chat template), trains, and its run folder loads without gguf;
unreadable architectures and ambiguous folders are one sentence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_translations
from tests.unit.tasks.test_generation import CAUSAL_TRAINING, generation_config
from tunelab.errors import UserError

gguf = pytest.importorskip("gguf")

# transformers' Llama tensor names -> llama.cpp's, per layer and for the whole model
LAYER_NAMES = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}  # fmt: skip
MODEL_NAMES = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}


def _permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's interleaving of the query and key rows (transformers undoes it on load)."""
    return (
        weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def write_gguf(folder: Path, out: Path, architecture: str = "llama") -> Path:
    """An HF Llama folder written as a GGUF file the way llama.cpp's converter writes it."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    config = model.config
    tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    vocab = sorted(tokenizer["model"]["vocab"].items(), key=lambda item: item[1])
    special = {token["content"]: token["id"] for token in tokenizer["added_tokens"]}
    tokens = [token for token, _ in vocab]
    for content, index in special.items():
        if index >= len(tokens):
            tokens.append(content)
    writer = gguf.GGUFWriter(str(out), architecture)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in special else 1 for t in tokens])
    writer.add_token_merges([" ".join(pair) for pair in tokenizer["model"]["merges"]])
    writer.add_bos_token_id(special[settings["bos_token"]])
    writer.add_eos_token_id(special[settings["eos_token"]])
    writer.add_pad_token_id(special[settings["pad_token"]])
    template = folder / "chat_template.jinja"
    writer.add_chat_template(template.read_text(encoding="utf-8"))
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    for name, tensor in model.state_dict().items():
        weights = tensor.float().numpy()
        stem, _, kind = name.rpartition(".")
        if stem.startswith("model.layers."):
            layer, _, part = stem.removeprefix("model.layers.").partition(".")
            if part == "self_attn.q_proj":
                weights = _permute(weights, heads)
            elif part == "self_attn.k_proj":
                weights = _permute(weights, kv_heads)
            target = f"blk.{layer}.{LAYER_NAMES[part]}.{kind}"
        else:
            target = f"{MODEL_NAMES[stem]}.{kind}"
        writer.add_tensor(target, weights)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


@pytest.fixture
def tiny_gguf(tiny_llama, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "gguf").mkdir()
    return write_gguf(tiny_llama, tmp_path / "gguf" / "tiny-llama.f32.gguf")


def test_a_gguf_file_comes_back_as_the_same_model(tiny_llama, tiny_gguf):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.models.load import resolve_model_source

    folder = Path(resolve_model_source(str(tiny_gguf)))
    assert (folder / "model.safetensors").is_file()
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    ours, theirs = (AutoModelForCausalLM.from_pretrained(f).eval() for f in (folder, tiny_llama))
    original, converted = (AutoTokenizer.from_pretrained(f) for f in (tiny_llama, folder))
    text = "red cat 红"
    ids = original(text, return_tensors="pt")["input_ids"]
    assert converted(text)["input_ids"] == ids[0].tolist()
    assert converted.chat_template == original.chat_template
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, theirs(ids).logits, atol=1e-4, rtol=1e-4)
    # the folder holding the file names it too, and the conversion happens once
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert resolve_model_source(str(tiny_gguf.parent)) == str(folder)
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_a_run_from_a_gguf_file_loads_without_gguf_and_predicts_the_same(tiny_gguf, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import tunelab

    config = generation_config(
        tiny_gguf, tmp_path, "causal-lm", make_translations(64), **CAUSAL_TRAINING
    )
    config["training"].update(epochs=1, max_steps=2)
    result = tunelab.train(config)

    model_dir = Path(result["model_dir"])
    assert "quantization_config" not in json.loads((model_dir / "config.json").read_text())
    (answer,) = tunelab.predict(model_dir, texts=["red cat"])
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)  # plain transformers, no gguf_file
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "red cat"}], add_generation_prompt=True,
        return_tensors="pt", return_dict=True,
    )  # fmt: skip
    out = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    text = tokenizer.decode(out[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert answer["output"] == text.strip()


def test_gguf_problems_are_one_sentence(tiny_llama, tmp_path, monkeypatch):
    from tunelab.models.load import resolve_model_source

    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "cache"))
    odd = tmp_path / "odd"
    odd.mkdir()
    writer = gguf.GGUFWriter(str(odd / "model.gguf"), "wavenet")
    writer.add_tensor("w", np.zeros((2, 2), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(UserError, match=r"cannot read GGUF files of architecture 'wavenet'"):
        resolve_model_source(str(odd / "model.gguf"))
    (odd / "other.gguf").write_bytes((odd / "model.gguf").read_bytes())
    with pytest.raises(UserError, match=r"holds several GGUF files \(model.gguf, other.gguf\)"):
        resolve_model_source(str(odd))
    (odd / "broken.gguf").write_bytes(b"not a gguf file at all")
    with pytest.raises(UserError, match=r"is not a readable GGUF file"):
        resolve_model_source(str(odd / "broken.gguf"))
