"""Parameter counts and training-memory estimates against real (tiny) models."""

from __future__ import annotations

import pytest

from tunelab.models.load import BUNDLED_MODELS_DIR
from tunelab.models.memory import (
    Architecture,
    activation_bytes,
    architecture_from_config,
    estimate_memory,
    lora_parameter_count,
    matmul_flops_per_second,
    memory_from_config,
    parameter_count,
    training_flops,
)

SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
         "intermediate_size": 64, "vocab_size": 100}  # fmt: skip
SEQ2SEQ = {"vocab_size": 100, "d_model": 32, "encoder_layers": 2, "decoder_layers": 3,
           "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 64,
           "decoder_ffn_dim": 64, "max_position_embeddings": 40, "pad_token_id": 0,
           "decoder_start_token_id": 0}  # fmt: skip
SPECIAL = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "cls_token_id": 1,
           "sep_token_id": 2}  # fmt: skip


def _tiny(family: str):
    """A tiny config of ``family`` and the auto class that builds the model as fine-tuned."""
    import transformers as tf

    configs = {
        "bert": (tf.BertConfig(max_position_embeddings=40, **SMALL), tf.AutoModel),
        "xlm-roberta": (tf.XLMRobertaConfig(max_position_embeddings=40, type_vocab_size=1,
                                            **SMALL), tf.AutoModel),
        "deberta": (tf.DebertaV2Config(position_buckets=16, relative_attention=True,
                                       position_biased_input=False, type_vocab_size=0,
                                       norm_rel_ebd="layer_norm", share_att_key=True,
                                       pos_att_type=["p2c", "c2p"], **SMALL), tf.AutoModel),
        "modernbert": (tf.ModernBertConfig(**SMALL, **SPECIAL), tf.AutoModel),
        "qwen2 (grouped-query)": (tf.Qwen2Config(**{**SMALL, "num_attention_heads": 4},
                                                 num_key_value_heads=2),
                                  tf.AutoModelForCausalLM),
        "llama (untied, head_dim)": (tf.LlamaConfig(**{**SMALL, "num_attention_heads": 4},
                                                    num_key_value_heads=2, head_dim=16,
                                                    tie_word_embeddings=False),
                                     tf.AutoModelForCausalLM),
        "t5": (tf.T5Config(vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=2,
                           num_decoder_layers=3, num_heads=2), tf.AutoModelForSeq2SeqLM),
        "mt5 (gated)": (tf.MT5Config(vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=2,
                                     num_heads=2), tf.AutoModelForSeq2SeqLM),
        "bart": (tf.BartConfig(**SEQ2SEQ), tf.AutoModelForSeq2SeqLM),
        "marian": (tf.MarianConfig(**SEQ2SEQ), tf.AutoModelForSeq2SeqLM),
    }  # fmt: skip
    return configs[family]


FAMILIES = ["bert", "xlm-roberta", "deberta", "modernbert", "qwen2 (grouped-query)",
            "llama (untied, head_dim)", "t5", "mt5 (gated)", "bart", "marian"]  # fmt: skip


@pytest.mark.parametrize("family", FAMILIES)
def test_parameter_count_equals_the_built_model(family):
    config, auto = _tiny(family)
    model = auto.from_config(config)
    assert parameter_count(architecture_from_config(config)) == sum(
        p.numel() for p in model.parameters()
    )


@pytest.mark.parametrize("name", ["zh-bert-mini", "zh-llama-mini"])
def test_parameter_count_of_the_bundled_starters(name):
    from transformers import AutoModel, AutoModelForCausalLM

    auto = AutoModelForCausalLM if name == "zh-llama-mini" else AutoModel
    model = auto.from_pretrained(BUNDLED_MODELS_DIR / name)
    counted = parameter_count(architecture_from_config(model.config))
    assert counted == sum(p.numel() for p in model.parameters())


def test_lora_count_equals_what_peft_trains():
    from transformers import BertForSequenceClassification

    from tunelab.config import AdapterConfig
    from tunelab.models.adapters import add_adapters

    config, _ = _tiny("bert")
    config.num_labels = 3
    model = add_adapters(BertForSequenceClassification(config), AdapterConfig(method="lora"),
                         "SEQ_CLS")  # fmt: skip
    adapters = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert adapters == lora_parameter_count(architecture_from_config(config), rank=8)


def _saved_bytes(model, inputs, bf16: bool) -> int:
    """Bytes of the tensors autograd keeps for backward (weights themselves excluded)."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
    with hooks, torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        model(**inputs)
    return sum(n for ptr, n in seen.items() if ptr not in params)


@pytest.mark.parametrize("method", ["full", "lora"])
@pytest.mark.parametrize("precision", ["bf16", "fp32"])
@pytest.mark.parametrize("family", ["bert", "modernbert", "llama"])
def test_activation_estimate_matches_what_autograd_keeps(family, precision, method):
    import torch
    import transformers as tf

    from tunelab.config import AdapterConfig
    from tunelab.models.adapters import add_adapters

    shape = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
             "vocab_size": 300}  # fmt: skip
    causal = family == "llama"
    if family == "bert":
        model = tf.BertForSequenceClassification(tf.BertConfig(intermediate_size=256, **shape))
    elif family == "modernbert":
        config = tf.ModernBertConfig(intermediate_size=128, **shape, **SPECIAL)
        model = tf.ModernBertForSequenceClassification(config)
    else:
        config = tf.LlamaConfig(intermediate_size=176, num_key_value_heads=2, **shape)
        model = tf.LlamaForCausalLM(config)
    model.train()
    if method == "lora":
        task_type = "CAUSAL_LM" if causal else "SEQ_CLS"
        model = add_adapters(model, AdapterConfig(method="lora"), task_type)
    batch, length = 4, 64
    ids = torch.randint(5, 290, (batch, length))
    labels = ids if causal else torch.randint(0, 2, (batch,))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    measured = _saved_bytes(model, inputs, precision == "bf16")

    arch = architecture_from_config(model.config)
    estimate = activation_bytes(arch, batch, length, precision, method, lm_head=causal)
    if causal:  # the logits' short-lived copies are counted too, but autograd keeps none
        estimate -= batch * length * arch.vocab * 6
    assert estimate == pytest.approx(measured, rel=0.15)


def test_attention_scores_count_for_bert_on_cpu_but_not_for_llama_or_on_cuda():
    bert = Architecture("bert", 12, 768, 12, 3072, 21128, positions=512, token_types=2)
    llama = Architecture("llama", 16, 2048, 32, 8192, 128256, kv_heads=8, head_dim=64)
    for arch in (bert, llama):
        short, long = (activation_bytes(arch, 8, n, "fp32") for n in (128, 512))
        linear = long - 4 * short + 3 * activation_bytes(arch, 8, 0, "fp32")
        if arch is bert:
            assert linear > 0  # the quadratic attention term makes 4x the length cost more
        else:
            assert linear == 0
    cpu = activation_bytes(bert, 8, 512, device="cpu")
    assert activation_bytes(bert, 8, 512, device="cuda") < cpu


def test_lora_needs_less_than_full_fine_tuning_when_weights_dominate():
    qwen7b = Architecture("qwen2", 28, 3584, 28, 18944, 152064, kv_heads=4,
                          tied_embeddings=False, weight_bytes=2)  # fmt: skip
    full, lora = (estimate_memory(qwen7b, 4, 256, m, lm_head=True) for m in ("full", "lora"))
    qlora = estimate_memory(qwen7b, 4, 256, "qlora", lm_head=True, device="cuda")
    assert lora.peak < full.peak
    assert qlora.weights < lora.weights / 2  # 4-bit body; embeddings stay bf16
    assert lora.trainable < full.trainable / 100
    assert lora.optimizer < full.optimizer / 100
    # full: weights, a gradient and two AdamW moments per weight, all fp32 though the
    # checkpoint stores bf16 (master weights); LoRA's frozen base stays bf16 as stored
    assert full.weights + full.gradients + full.optimizer == 16 * full.parameters
    assert lora.weights == 2 * lora.parameters + 4 * lora.trainable


def test_memory_from_config_and_more_data_cost_more():
    from transformers import BertConfig

    config = BertConfig(**SMALL)
    estimate = memory_from_config(config, 8, 64)
    assert estimate == estimate_memory(architecture_from_config(config), 8, 64)
    assert memory_from_config(config, 16, 64).peak > estimate.peak
    assert memory_from_config(config, 8, 128).peak > estimate.peak
    assert estimate.peak == estimate.tensors + estimate.allocator


def test_training_flops_and_throughput_probe():
    arch = architecture_from_config(_tiny("bert")[0])
    assert training_flops(arch, 1000, 64, "lora") < training_flops(arch, 1000, 64, "full")
    assert training_flops(arch, 2000, 64) == 2 * training_flops(arch, 1000, 64)
    speed = matmul_flops_per_second("fp32")
    assert speed > 1e8
    assert matmul_flops_per_second("fp32") == speed  # measured once per process
