"""How much memory and time fine-tuning a model takes, from its architecture numbers alone.

Nothing here downloads or builds a model: parameter counts come from the layer shapes, and
the training memory from what PyTorch keeps for the backward pass. The activation numbers
were read off the tensors that autograd saves for BERT, ModernBERT and Llama models (bf16
autocast and fp32) and are checked against measured peak memory by
``benchmarks/memory_estimate.py``.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

# family -> (kind, how its layers are built for the activation estimate)
FAMILIES: dict[str, tuple[str, str]] = {
    "bert": ("encoder", "post-ln"),
    "roberta": ("encoder", "post-ln"),
    "xlm-roberta": ("encoder", "post-ln"),
    "deberta": ("encoder", "post-ln"),
    "modernbert": ("encoder", "modernbert"),
    "llama": ("decoder", "llama"),
    "qwen2": ("decoder", "llama"),
    "t5": ("encoder-decoder", "post-ln"),
    "bart": ("encoder-decoder", "post-ln"),
    "marian": ("encoder-decoder", "post-ln"),
}

# Bytes autograd keeps per token and layer: (per hidden unit, per intermediate unit, per
# attention score and head). Post-LN encoders with attention dropout take PyTorch's math
# attention path, which keeps q, k, v in fp32 and softmax, dropout mask and dropped scores
# (12 bytes a score); ModernBERT and Llama (no attention dropout) take the flash path, which
# keeps no score matrix. Under bf16 autocast every linear layer saves its own bf16 copy of
# its input; in fp32 the layers that share an input share one copy, and gated MLPs keep
# both halves.
ACTIVATION_BYTES: dict[str, dict[str, tuple[int, int, int]]] = {
    "post-ln": {"bf16": (34, 4, 12), "fp32": (40, 8, 12)},
    "modernbert": {"bf16": (24, 8, 0), "fp32": (40, 16, 0)},
    "llama": {"bf16": (34, 8, 0), "fp32": (40, 16, 0)},
}
# Bytes per adapted input element that a LoRA layer adds: its dropout mask (fp32, as PEFT
# casts the input to the adapter's dtype) and its own copy of the input for lora_A.
LORA_INPUT_BYTES = {"bf16": 4, "fp32": 8}
ENCODER_DECODER_DECODER_FACTOR = 1.5  # a decoder layer: self- and cross-attention
# On CPU, glibc's heap keeps freed activation blocks and fragments as forward and backward
# passes interleave: measured resident peaks ran 1.3-1.9x the live tensors, about one more
# copy of the activations (benchmarks/memory_estimate.py). CUDA's caching allocator wastes
# less, but the CUDA context itself takes about half a GiB.
ALLOCATOR_SHARE = {"cpu": 1.0, "cuda": 0.1}
CUDA_CONTEXT_BYTES = 512 * 2**20
MODEL_TYPES = {"xlm-roberta": "xlm-roberta", "deberta-v2": "deberta", "mt5": "t5"}
LORA_RANK = 8  # tunelab's default peft.r


@dataclass(frozen=True)
class Architecture:
    """The numbers that fix a transformer's size.

    Attributes:
        family: one of :data:`FAMILIES`.
        layers: transformer layers (the encoder's, for encoder-decoder models).
        hidden: hidden size (``d_model``).
        heads: attention heads.
        intermediate: feed-forward width (of each half, for gated MLPs).
        vocab: vocabulary size.
        kv_heads: key/value heads (grouped-query attention); default: ``heads``.
        head_dim: size of one head; default: ``hidden // heads``.
        positions: rows of learned position embeddings (DeBERTa: relative position rows).
        token_types: rows of segment (token type) embeddings.
        tied_embeddings: whether the output layer reuses the input embeddings.
        decoder_layers: decoder layers of an encoder-decoder model.
        gated_mlp: T5 family only: gated-GELU feed-forward (mT5, T5 v1.1).
        weight_bytes: bytes per weight as stored (4 float32, 2 bfloat16); transformers loads
            a checkpoint in its stored dtype.
    """

    family: str
    layers: int
    hidden: int
    heads: int
    intermediate: int
    vocab: int
    kv_heads: int | None = None
    head_dim: int | None = None
    positions: int = 0
    token_types: int = 0
    tied_embeddings: bool = True
    decoder_layers: int = 0
    gated_mlp: bool = False
    weight_bytes: int = 4

    @property
    def kind(self) -> str:
        """``encoder``, ``decoder`` or ``encoder-decoder``."""
        return FAMILIES[self.family][0]

    @property
    def dim(self) -> int:
        """Size of one attention head."""
        return self.head_dim or self.hidden // self.heads


def _block_linears(arch: Architecture) -> list[tuple[int, int, int, bool]]:
    """Every linear layer of the transformer blocks as (inputs, outputs, how many, bias)."""
    h, i, n = arch.hidden, arch.intermediate, arch.layers
    inner, kv = arch.heads * arch.dim, (arch.kv_heads or arch.heads) * arch.dim
    if arch.family == "modernbert":
        return [(h, 3 * h, n, False), (h, h, n, False), (h, 2 * i, n, False), (i, h, n, False)]
    if arch.kind == "decoder":
        qkv_bias = arch.family == "qwen2"
        return [(h, inner, n, qkv_bias), (h, kv, 2 * n, qkv_bias), (inner, h, n, False),
                (h, i, 2 * n, False), (i, h, n, False)]  # fmt: skip
    bias = arch.family != "t5"
    mlp_in = 2 if arch.gated_mlp else 1
    attention = [(h, inner, 3, bias), (inner, h, 1, bias)]
    mlp = [(h, i, mlp_in, bias), (i, h, 1, bias)]
    per_layer = [(a, b, c * n, d) for a, b, c, d in attention + mlp]
    cross = [(a, b, c * arch.decoder_layers, d) for a, b, c, d in attention * 2 + mlp]
    return per_layer + cross


def _other_parameters(arch: Architecture) -> int:
    """Embeddings, norms, position tables, poolers: everything outside the block linears."""
    h, v, n, d = arch.hidden, arch.vocab, arch.layers, arch.decoder_layers
    embeddings = v * h + (0 if arch.tied_embeddings else v * h)
    if arch.family in ("bert", "roberta", "xlm-roberta"):
        tables = (arch.positions + arch.token_types) * h
        return embeddings + tables + 2 * h + 4 * h * n + h * h + h  # LayerNorms, pooler
    if arch.family == "deberta":
        return embeddings + 2 * h + 4 * h * n + arch.positions * h + 2 * h
    if arch.family == "modernbert":
        return embeddings + h + (2 * n - 1) * h + h  # layer 0 has no attention norm
    if arch.kind == "decoder":
        return embeddings + 2 * h * n + h
    if arch.family == "t5":
        return embeddings + 2 * h * n + 3 * h * d + 2 * h + 2 * 32 * arch.heads
    positions = 2 * arch.positions * h
    if arch.family == "bart":
        positions += 2 * 2 * h + 2 * 2 * h  # two offset rows and an embedding LayerNorm each
    return embeddings + positions + 4 * h * n + 6 * h * d


def linear_parameter_count(arch: Architecture) -> int:
    """Weights of the block linear layers (the matrix multiplies), without biases."""
    return sum(a * b * c for a, b, c, _ in _block_linears(arch))


def parameter_count(arch: Architecture) -> int:
    """Parameters of the model as fine-tuned: the encoder (with its pooler, as ``AutoModel``
    builds it), or the whole model with its LM head for decoders and encoder-decoders."""
    linears = sum(c * (a * b + (b if bias else 0)) for a, b, c, bias in _block_linears(arch))
    return linears + _other_parameters(arch)


def lora_parameter_count(arch: Architecture, rank: int = LORA_RANK) -> int:
    """Parameters LoRA trains with adapters on every block linear layer (tunelab's default)."""
    adapters = sum(c * rank * (a + b) for a, b, c, _ in _block_linears(arch))
    if arch.family in ("bert", "roberta", "xlm-roberta"):
        adapters += rank * 2 * arch.hidden  # the pooler is a linear layer of the body too
    return adapters


def architecture_from_config(config: Any) -> Architecture:
    """Read an :class:`Architecture` off a transformers ``PretrainedConfig``.

    Families tunelab does not know are read as the closest known one (a causal LM as Llama,
    an encoder-decoder as BART, anything else as BERT), so the numbers stay a rough guide.
    """
    get = functools.partial(getattr, config)
    model_type = get("model_type", "")
    family = MODEL_TYPES.get(model_type, model_type)
    if family not in FAMILIES:
        names = " ".join(get("architectures", None) or [])
        family = ("bart" if get("is_encoder_decoder", False)
                  else "llama" if "CausalLM" in names else "bert")  # fmt: skip
    dtype = str(get("dtype", None) or get("torch_dtype", None) or "float32")
    common = {
        "family": family,
        "vocab": get("vocab_size"),
        "tied_embeddings": bool(get("tie_word_embeddings", True)),
        "weight_bytes": 2 if ("bfloat16" in dtype or "float16" in dtype) else 4,
    }
    if FAMILIES[family][0] == "encoder-decoder":
        if family == "t5":
            return Architecture(
                layers=get("num_layers"), hidden=get("d_model"), heads=get("num_heads"),
                intermediate=get("d_ff"), head_dim=get("d_kv"),
                decoder_layers=get("num_decoder_layers", None) or get("num_layers"),
                gated_mlp=bool(get("is_gated_act", False)), **common,
            )  # fmt: skip
        return Architecture(
            layers=get("encoder_layers"), hidden=get("d_model"),
            heads=get("encoder_attention_heads"), intermediate=get("encoder_ffn_dim"),
            decoder_layers=get("decoder_layers"), positions=get("max_position_embeddings"),
            **common,
        )  # fmt: skip
    positions = get("max_position_embeddings", 0)
    if family == "deberta":
        # relative position rows: 2 x the buckets (or the maximum distance, or the length)
        buckets, distance = get("position_buckets", -1), get("max_relative_positions", -1)
        positions = 2 * (buckets if buckets > 0 else distance if distance > 0 else positions)
    return Architecture(
        layers=get("num_hidden_layers"), hidden=get("hidden_size"),
        heads=get("num_attention_heads"), intermediate=get("intermediate_size"),
        kv_heads=get("num_key_value_heads", None), head_dim=get("head_dim", None),
        positions=positions if FAMILIES[family][0] == "encoder" else 0,
        token_types=get("type_vocab_size", 0) or 0, **common,
    )  # fmt: skip


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak training memory, in bytes, and what it is made of.

    Attributes:
        method: ``full``, ``lora`` or ``qlora``.
        parameters: all parameters; trainable: the ones the optimizer updates.
        weights: the stored weights (fp32 master weights under bf16 autocast).
        gradients: one gradient per trainable weight.
        optimizer: AdamW's two moment estimates per trainable weight.
        activations: what the forward pass keeps for backward, plus the bf16 weight copies
            autocast makes and the LM head's logits.
        tensors: the peak of the tensors alive at once.
        allocator: what the memory allocator holds beyond them (CPU heap fragmentation,
            CUDA context).
        peak: the estimated peak memory of the process's training: ``tensors + allocator``.
    """

    method: str
    parameters: int
    trainable: int
    weights: int
    gradients: int
    optimizer: int
    activations: int
    tensors: int
    allocator: int
    peak: int


def activation_bytes(
    arch: Architecture,
    batch_size: int,
    max_length: int,
    precision: str = "bf16",
    method: str = "full",
    lm_head: bool = False,
    device: str = "cpu",
    predicted: int | None = None,
    checkpointing: bool = False,
) -> int:
    """What the forward pass keeps for backward, for one batch of full-length sequences.

    Args:
        arch: the model's architecture.
        batch_size: sequences per optimizer step (per device).
        max_length: tokens per sequence (the encoder's and the decoder's, for seq2seq).
        precision: ``bf16`` (autocast) or ``fp32``; ``fp16`` counts as bf16.
        method: ``full``, ``lora`` or ``qlora`` (the frozen body still keeps what backward
            needs to reach the adapters).
        lm_head: whether the model predicts a token at every position (causal LM, seq2seq):
            its fp32 log-probabilities are kept, and its logits and their gradient live
            briefly.
        device: ``cpu`` or ``cuda``; CUDA's fused attention keeps no score matrix even with
            attention dropout.
        predicted: positions the LM head predicts (tunelab's causal LMs compute logits at
            the answer tokens only); default: every token.
        checkpointing: activation checkpointing: each layer keeps its (fp32) input alone, and
            one layer's activations live again while its backward runs.
    """
    mode = "fp32" if precision == "fp32" else "bf16"
    c_h, c_i, c_s = ACTIVATION_BYTES[FAMILIES[arch.family][1]][mode]
    if device == "cuda" or arch.family == "deberta":
        # DeBERTa's eager attention adds two position scores to each content score.
        c_s = 0 if device == "cuda" and arch.family != "deberta" else 3 * c_s
    h, s, tokens = arch.hidden, max_length, batch_size * max_length
    layer = c_h * h + c_i * arch.intermediate + c_s * arch.heads * s
    layers = arch.layers + ENCODER_DECODER_DECODER_FACTOR * arch.decoder_layers
    kept = tokens * layers * layer + tokens * 8 * h  # embeddings / final norm
    if checkpointing:
        kept = tokens * (layers * 4 * h + layer) + tokens * 8 * h
    if method != "full":
        adapted = sum(a * c for a, _, c, _ in _block_linears(arch))
        kept += tokens * adapted * LORA_INPUT_BYTES[mode]
        if mode == "fp32":
            # frozen linears no longer keep their (shared) fp32 inputs: the attention's,
            # its output projection's, and the MLP's two
            kept -= tokens * layers * 4 * (3 * h + arch.intermediate)
    if lm_head:
        kept += (tokens if predicted is None else predicted) * arch.vocab * (4 + 6)
    fp32_weights = method == "full" or arch.weight_bytes == 4  # full: fp32 master weights
    if mode == "bf16" and fp32_weights and method != "qlora":
        # autocast's bf16 copies of fp32 weights, kept for backward (QLoRA dequantises
        # one layer at a time)
        kept += 2 * linear_parameter_count(arch)
    return int(kept)


def estimate_memory(
    arch: Architecture,
    batch_size: int,
    max_length: int,
    method: str = "full",
    precision: str = "bf16",
    lm_head: bool = False,
    device: str = "cpu",
    lora_rank: int = LORA_RANK,
    predicted: int | None = None,
    checkpointing: bool = False,
) -> MemoryEstimate:
    """Peak memory of fine-tuning ``arch`` with AdamW, as the Hugging Face Trainer does it.

    Full fine-tuning keeps weights, a gradient and two AdamW moments per weight, all fp32
    whatever dtype the checkpoint stores (tunelab casts weights that train to fp32:
    :mod:`tunelab.models.master_weights`; bf16 autocast computes in bf16 from them). LoRA
    keeps the frozen base in its stored dtype without gradients or moments; QLoRA stores the
    base in 4 bits (about 0.55 bytes a weight with its scales), CUDA only. Activations: see
    :func:`activation_bytes`.

    The peak is either the end of the forward pass (activations, with gradients still to
    come) or the optimizer step (all gradients, activations freed), whichever is larger.
    ``predicted`` and ``checkpointing``: see :func:`activation_bytes`.
    """
    if method not in ("full", "lora", "qlora"):
        raise ValueError(f"unknown method {method!r}")
    total = parameter_count(arch)
    trainable = total if method == "full" else lora_parameter_count(arch, lora_rank)
    if method == "qlora":
        linears = linear_parameter_count(arch)
        weights = int(0.55 * linears) + 2 * (total - linears)
    else:
        weights = (4 if method == "full" else arch.weight_bytes) * total
    if method != "full":
        weights += 4 * trainable  # adapters train in fp32
    # fp32 gradients and moments: the master weights' (full) or the adapters'
    gradients, optimizer = 4 * trainable, 2 * 4 * trainable
    activations = activation_bytes(arch, batch_size, max_length, precision, method, lm_head,
                                   device, predicted, checkpointing)  # fmt: skip
    # The gradients of the top layers exist while the lower layers' activations still wait:
    # count a quarter of them together with all activations.
    tensors = weights + optimizer + max(activations + gradients // 4, gradients)
    allocator = int(ALLOCATOR_SHARE[device] * activations)
    if device == "cuda":
        allocator += CUDA_CONTEXT_BYTES
    return MemoryEstimate(method, total, trainable, weights, gradients, optimizer, activations,
                          tensors, allocator, tensors + allocator)  # fmt: skip


def memory_from_config(
    config: Any, batch_size: int, max_length: int, method: str = "full", **kwargs: Any
) -> MemoryEstimate:
    """:func:`estimate_memory` for any transformers ``PretrainedConfig`` (e.g. ``AutoConfig``).

    ``kwargs`` pass through (``precision``, ``lm_head``, ``device``, ``lora_rank``).
    """
    return estimate_memory(architecture_from_config(config), batch_size, max_length, method,
                           **kwargs)  # fmt: skip


@functools.cache
def matmul_flops_per_second(precision: str = "bf16", device: str = "cpu") -> float:
    """This machine's measured matrix-multiply speed (FLOP/s), cached for the process.

    A few 512x512 products (2048 on a GPU) for about a quarter of a second, with the threads
    torch uses now: a probe, not a benchmark.
    """
    import torch

    dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    n = 2048 if device == "cuda" else 512
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    (a @ b).sum().item()  # warm-up: kernels, thread pool
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < 0.25:
        c = a @ b
        runs += 1
    c.sum().item()  # wait for asynchronous GPU work
    return 2 * n**3 * runs / (time.perf_counter() - started)


def training_flops(
    arch: Architecture, tokens: int, max_length: int, method: str = "full", lm_head: bool = False
) -> float:
    """Floating-point operations to train on ``tokens`` tokens of length ``max_length``.

    Forward 2 FLOPs per weight per token, backward 4 (2 when frozen weights need no
    gradient); attention adds 4·length·hidden per token and layer forward; the output layer
    counts when it predicts every token.
    """
    matrix = linear_parameter_count(arch)
    if lm_head:
        matrix += arch.vocab * arch.hidden
    per_weight = 6 if method == "full" else 4
    layers = arch.layers + 2 * arch.decoder_layers  # decoder: self- and cross-attention
    attention = 3 * 4 * max_length * arch.heads * arch.dim * layers
    return float(tokens) * (per_weight * matrix + attention)


# Share of the probe's matmul speed a whole training step reaches (small matrices,
# element-wise work, the optimizer), by device and method. On CPU LoRA saves a third of the
# matrix work but spends it again on the adapters' dropout and thin rank-8 products:
# benchmarks/memory_estimate.py measured LoRA steps as slow as full ones. The CUDA values
# are rules of thumb, not measured here.
TRAINING_EFFICIENCY = {("cpu", "full"): 0.25, ("cpu", "lora"): 0.15,
                       ("cuda", "full"): 0.4, ("cuda", "lora"): 0.3}  # fmt: skip


def estimate_epoch_seconds(
    arch: Architecture,
    examples: int,
    max_length: int,
    method: str = "full",
    precision: str = "bf16",
    lm_head: bool = False,
    device: str = "cpu",
) -> float:
    """Rough seconds for one epoch over ``examples`` sequences of ``max_length`` tokens.

    An upper end: with dynamic padding, batches of shorter texts take less.
    """
    flops = training_flops(arch, examples * max_length, max_length, method, lm_head)
    efficiency = TRAINING_EFFICIENCY[device, "full" if method == "full" else "lora"]
    return flops / (matmul_flops_per_second(precision, device) * efficiency)
