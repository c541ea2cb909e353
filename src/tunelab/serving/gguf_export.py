"""``tunelab export RUN --format gguf``: a causal (Llama-shaped) model as one GGUF file for
llama.cpp and Ollama, written with the ``gguf`` package, plus an Ollama ``Modelfile`` carrying
the chat template and the stop tokens.

The tensors are named and laid out as llama.cpp's own converter writes them (query and key
rows permuted for its rotary layout, norms in f32, no ``output.weight`` for tied embeddings),
the byte-level BPE tokenizer goes in as ``gpt2`` vocabulary and merges with its special
tokens, and the file is checked by loading it back with ``transformers`` (``gguf_file=``):
logits and greedy answers on probe prompts against the PyTorch model, in ``export.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunelab.errors import UserError
from tunelab.models.adapters import is_adapter_folder, merged_model
from tunelab.models.load import from_pretrained
from tunelab.models.trained import load_trained, model_folder
from tunelab.outputs import atomic_folder
from tunelab.tasks.causal_encoding import needs_bos, prompt_ids

# types the gguf package can write from Python: floats, and block quantizations that
# llama.cpp and transformers both read
TYPES = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "q4_0": "Q4_0"}
FILE_TYPES = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16", "q8_0": "MOSTLY_Q8_0",
              "q4_0": "MOSTLY_Q4_0"}  # fmt: skip
PROBES = ["hello", "Translate into Chinese: Open file", "你好，请问", "red cat dog"]


def export_gguf(
    model_or_run: str | Path, output: str | Path | None = None, types: tuple[str, ...] = ("f16",)
) -> dict[str, Any]:
    """Write ``model-<type>.gguf`` for each of ``types`` and a ``Modelfile`` into ``output``
    (default ``<model>/gguf``), each file checked against the PyTorch model.

    Returns:
        What ``export.json`` holds: per type the file, its size and the parity check.

    Raises:
        UserError: for a model that is not Llama-shaped, an unknown type, or a missing
            ``gguf`` package.
    """
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise UserError(
            "GGUF export needs the gguf package; install it with pip install 'tunelab[gguf]'"
        ) from None
    unknown = [t for t in types if t not in TYPES]
    if unknown:
        raise UserError(f"--quantize {unknown[0]} is not one of {', '.join(TYPES)}")
    folder = model_folder(model_or_run)
    model, tokenizer = _causal_model(folder)
    architectures = model.config.architectures or [type(model).__name__]
    if model.config.model_type != "llama":
        raise UserError(
            f"{folder} holds a {architectures[0]}; GGUF export writes Llama-shaped causal "
            "models (zh-llama-mini, Llama, TinyLlama); serve this one with tunelab serve"
        )
    target = Path(output) if output is not None else folder / "gguf"
    model = model.float().eval()
    result: dict[str, Any] = {"types": {}}
    with atomic_folder(target) as out:
        for kind in types:
            name = f"model-{kind}.gguf"
            write_gguf(model, tokenizer, out / name, kind)
            result["types"][kind] = {
                "file": name,
                "megabytes": round((out / name).stat().st_size / 2**20, 3),
                **parity(model, tokenizer, out, name),
            }
        modelfile, template_ok = ollama_modelfile(tokenizer, f"model-{types[0]}.gguf")
        (out / "Modelfile").write_text(modelfile, encoding="utf-8")
        result["modelfile_template"] = template_ok
        (out / "export.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    result["folder"] = str(target)
    return result


def _causal_model(folder: Path) -> tuple[Any, Any]:
    """A tunelab run's model (an adapter merged: llama.cpp reads one set of weights), or any
    causal model folder such as a starter."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if getattr(from_pretrained(AutoConfig, str(folder)), "tunelab", None):
        model, tokenizer, _, _ = load_trained(folder, device="cpu")  # tensors to numpy
        return (merged_model(model) if is_adapter_folder(folder) else model), tokenizer
    model = from_pretrained(AutoModelForCausalLM, str(folder))
    return model, from_pretrained(AutoTokenizer, str(folder))


def write_gguf(model: Any, tokenizer: Any, path: Path, kind: str) -> None:
    """One GGUF file of a Llama model: hyperparameters, tokenizer and tensors."""
    import gguf

    config = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    rope = (getattr(config, "rope_parameters", None) or {}).get("rope_theta") or getattr(
        config, "rope_theta", 10000.0
    )
    writer.add_name(path.parent.parent.name or "tunelab")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(rope))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(getattr(gguf.LlamaFileType, FILE_TYPES[kind]))
    _add_tokenizer(writer, tokenizer, config.vocab_size, model.generation_config)
    _add_tensors(writer, model, kind, heads, kv_heads)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _add_tokenizer(writer: Any, tokenizer: Any, vocab_size: int, generation: Any) -> None:
    import gguf

    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    if backend["model"]["type"] != "BPE" or "ByteLevel" not in json.dumps(
        backend.get("pre_tokenizer")
    ):
        raise UserError(
            "GGUF export writes byte-level BPE tokenizers (GPT-2/Llama 3 style); this model's "
            f"tokenizer is {backend['model']['type']}"
        )
    by_id = {i: t for t, i in tokenizer.get_vocab().items()}
    special = {int(i) for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    added = {int(i) for i in tokenizer.added_tokens_decoder}
    tokens, kinds = [], []
    for i in range(vocab_size):
        token = by_id.get(i)
        tokens.append(token if token is not None else f"[PAD{i}]")
        kinds.append(
            gguf.TokenType.UNUSED if token is None
            else gguf.TokenType.CONTROL if i in special
            else gguf.TokenType.USER_DEFINED if i in added
            else gguf.TokenType.NORMAL
        )  # fmt: skip
    merges = backend["model"].get("merges", [])
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(kinds)
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    if tokenizer.bos_token_id is not None:
        writer.add_bos_token_id(tokenizer.bos_token_id)
    if tokenizer.eos_token_id is not None:
        writer.add_eos_token_id(tokenizer.eos_token_id)
    if tokenizer.pad_token_id is not None:
        writer.add_pad_token_id(tokenizer.pad_token_id)
    # llama.cpp adds BOS itself when asked to; tunelab adds it where the template does not
    probe = tokenizer(tokenizer.apply_chat_template([{"role": "user", "content": "q"}],
                      tokenize=False), add_special_tokens=False)["input_ids"] if (
        tokenizer.chat_template) else []  # fmt: skip
    writer.add_add_bos_token(needs_bos(tokenizer, probe))
    stops = generation.eos_token_id if generation is not None else None
    stops = stops if isinstance(stops, list) else [] if stops is None else [stops]
    end_of_turn = [s for s in stops if s != tokenizer.eos_token_id]
    if end_of_turn:  # llama.cpp stops at EOS and EOT: the template's end-of-turn token
        writer.add_eot_token_id(end_of_turn[0])
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def _permute(weights: Any, heads: int) -> Any:
    """llama.cpp's rotary layout of query/key rows (interleaved halves per head)."""
    return (
        weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _add_tensors(writer: Any, model: Any, kind: str, heads: int, kv_heads: int) -> None:
    import gguf
    import numpy as np

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, model.config.num_hidden_layers)
    qtype = getattr(gguf.GGMLQuantizationType, TYPES[kind])
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    for name, tensor in model.state_dict().items():
        if tied and name == "lm_head.weight":
            continue  # llama.cpp (and transformers' GGUF loader) tie to token_embd
        if "rotary_emb" in name:
            continue
        new_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise UserError(f"GGUF export has no llama.cpp name for the tensor {name}")
        data = tensor.detach().float().cpu().numpy()
        if name.endswith("q_proj.weight"):
            data = _permute(data, heads)
        elif name.endswith("k_proj.weight"):
            data = _permute(data, kv_heads)
        if data.ndim == 1 or qtype == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(new_name, data.astype(np.float32))
            continue
        chosen = qtype
        block = gguf.GGML_QUANT_SIZES[qtype][0]
        if data.shape[-1] % block:  # rows that do not fill whole blocks stay f16, as llama.cpp
            chosen = gguf.GGMLQuantizationType.F16
        packed = gguf.quants.quantize(data, chosen)
        writer.add_tensor(new_name, packed, raw_shape=packed.shape, raw_dtype=chosen)


def parity(model: Any, tokenizer: Any, folder: Path, name: str) -> dict[str, Any]:
    """Load the GGUF back with transformers and compare with the PyTorch model: logits on
    probe prompts (max absolute difference), greedy answers, and the GGUF tokenizer's ids."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(
        str(folder), gguf_file=name, dtype=torch.float32
    ).eval()
    loaded_tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=name)
    worst, same_answers, same_ids = 0.0, 0, 0
    stops = model.generation_config.eos_token_id
    for text in PROBES:
        ids = prompt_ids(tokenizer, None, text)
        theirs = prompt_ids(loaded_tokenizer, None, text)
        same_ids += ids == theirs
        batch = torch.tensor([ids])
        with torch.inference_mode():
            diff = (model(batch).logits - loaded(batch).logits).abs().max().item()
            settings = {"max_new_tokens": 24, "do_sample": False, "eos_token_id": stops,
                        "pad_token_id": tokenizer.pad_token_id}  # fmt: skip
            same = (
                model.generate(batch, **settings).tolist()
                == loaded.generate(batch, **settings).tolist()
            )
        worst = max(worst, diff)
        same_answers += same
    return {
        "max_abs_logit_diff": worst,
        "greedy_answers_equal": f"{same_answers}/{len(PROBES)}",
        "tokenizer_ids_equal": f"{same_ids}/{len(PROBES)}",
    }


def ollama_modelfile(tokenizer: Any, gguf_name: str) -> tuple[str, bool]:
    """An Ollama Modelfile: the GGUF, the chat template as a Go template, the stop tokens.

    The Jinja template cannot be translated in general; its turns are read off a rendering
    (the text before and after each turn's content), written as a Go template, and checked by
    rendering a probe conversation both ways. Returns the file and whether the check held
    (without it the Modelfile leaves TEMPLATE out and Ollama uses the GGUF's own template).
    """
    lines = [f"FROM ./{gguf_name}"]
    template = _go_template(tokenizer) if tokenizer.chat_template else None
    if template is not None:
        lines.append(f'TEMPLATE """{template}"""')
    for token in _stop_tokens(tokenizer):
        lines.append(f"PARAMETER stop {json.dumps(token)}")
    return "\n".join(lines) + "\n", template is not None


def _stop_tokens(tokenizer: Any) -> list[str]:
    from tunelab.tasks.stop_tokens import closing_token

    tokens = [tokenizer.eos_token] if tokenizer.eos_token else []
    if tokenizer.chat_template:
        _, token = closing_token(tokenizer)
        if token is not None:
            tokens.append(tokenizer.convert_ids_to_tokens(token))
    return list(dict.fromkeys(tokens))


def _go_template(tokenizer: Any) -> str | None:
    """The chat template as an Ollama Go template, for templates whose every turn is one
    header naming the role, the content, and one closing text (ChatML and its kin); None when
    the Go template would not render a probe conversation exactly as the Jinja one does."""
    marker = "\x00{}\x00"
    chat = [{"role": r, "content": marker.format(r)} for r in ("system", "user", "assistant")]
    try:
        rendered = tokenizer.apply_chat_template(chat, tokenize=False)
        before = tokenizer.apply_chat_template(chat[:2], tokenize=False)
        asked = tokenizer.apply_chat_template(chat[:2], tokenize=False, add_generation_prompt=True)
    except Exception:  # a template that refuses this shape (e.g. no system turn)
        return None
    header = asked[len(before) :] if asked.startswith(before) else ""
    last = marker.format("assistant")
    suffix = rendered[rendered.find(last) + len(last) :]
    if "assistant" not in header:
        return None

    def turns(messages: list[dict[str, str]]) -> str:
        return "".join(
            header.replace("assistant", m["role"]) + m["content"] + suffix for m in messages
        )

    if turns(chat) != rendered or turns(chat[:2]) + header != asked:
        return None
    go_header = header.replace("assistant", "{{ .Role }}")
    return "{{- range .Messages }}" + go_header + "{{ .Content }}" + suffix + "{{ end }}" + header
