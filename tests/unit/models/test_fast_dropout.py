"""Dropout masks from numpy's SFC64 on the CPU: the right share kept, repeatable by torch's
seed, the same arithmetic as torch's dropout and SDPA, and only for the models given them."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tunelab.models import fast_dropout  # noqa: E402
from tunelab.models.fast_dropout import (  # noqa: E402
    dropout,
    fast_cpu_dropout,
    keep_mask,
    keep_multiplier,
    keep_probability,
)

SMALL = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
             intermediate_size=32, max_position_embeddings=40, num_labels=3)  # fmt: skip


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5])
def test_the_mask_keeps_one_minus_p_of_the_elements(p):
    torch.manual_seed(0)
    mask = keep_mask((400, 500), p)
    assert mask.dtype == torch.bool and mask.shape == (400, 500)
    # 200,000 draws: the share's standard deviation is under 0.0012
    assert abs(mask.float().mean().item() - (1 - p)) < 0.005
    assert keep_probability(p) == pytest.approx(1 - p, abs=1 / 65536)


def test_the_mask_follows_torchs_seed():
    torch.manual_seed(3)
    first, second = keep_mask((64, 64), 0.1), keep_mask((64, 64), 0.1)
    torch.manual_seed(3)
    assert torch.equal(keep_mask((64, 64), 0.1), first)
    assert not torch.equal(first, second)  # each call draws a fresh seed
    torch.manual_seed(4)
    assert not torch.equal(keep_mask((64, 64), 0.1), first)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32", "float64"])
def test_the_multiplier_is_the_mask_as_ones_and_zeros(dtype):
    # the same draws: a run's numbers are those of the boolean mask it replaced
    dtype = getattr(torch, dtype)
    torch.manual_seed(5)
    mask = keep_mask((3, 70, 90), 0.1)
    torch.manual_seed(5)
    multiplier = keep_multiplier((3, 70, 90), 0.1, dtype)
    assert multiplier.dtype == dtype and multiplier.shape == (3, 70, 90)
    assert torch.equal(multiplier, mask.to(dtype))


def test_dropout_scales_the_kept_elements_and_its_gradient_is_the_same_mask():
    x = torch.randn(8, 30, requires_grad=True)
    torch.manual_seed(7)
    mask = keep_mask(x.shape, 0.2)
    torch.manual_seed(7)
    y = dropout(x, 0.2)
    scale = 1 / keep_probability(0.2)
    assert torch.allclose(y, x.detach() * mask * scale)
    y.sum().backward()
    assert torch.allclose(x.grad, mask.float() * scale)


def test_evaluation_and_p_zero_leave_the_input_alone():
    x = torch.randn(5, 7)
    assert torch.equal(dropout(x, 0.3, training=False), x)
    assert torch.equal(dropout(x, 0.0), x)


def _batch() -> dict:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 50, (4, 12), generator=generator)
    mask = torch.ones_like(ids)
    mask[2:, 7:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 2, 1])}


def _classifiers(kind: str) -> tuple:
    """The same weights twice: without dropout, and with p=0.1 and the faster masks."""
    if kind == "bert":
        config_class, settings = transformers.BertConfig, SMALL
        names = ("hidden_dropout_prob", "attention_probs_dropout_prob")
    else:
        config_class, names = transformers.GPT2Config, ("resid_pdrop", "embd_pdrop", "attn_pdrop")
        settings = dict(vocab_size=50, n_embd=16, n_layer=2, n_head=2, n_positions=40,
                        num_labels=3, pad_token_id=0)  # fmt: skip
    torch.manual_seed(0)
    plain = transformers.AutoModelForSequenceClassification.from_config(
        config_class(**settings, **dict.fromkeys(names, 0.0))
    ).train()
    torch.manual_seed(0)
    fast = transformers.AutoModelForSequenceClassification.from_config(
        config_class(**settings, **dict.fromkeys(names, 0.1))
    ).train()
    assert fast_cpu_dropout(fast) > 0
    return plain, fast


@pytest.mark.parametrize("kind,padded", [("bert", True), ("gpt2", True), ("gpt2", False)])
def test_with_nothing_dropped_logits_and_gradients_equal_the_model_without_dropout(
    kind, padded, monkeypatch
):
    """Padding masks (BERT, GPT-2) and causal attention without a mask (GPT-2's unpadded
    batch) through the written-out attention."""
    shapes = []

    def keep_all(shape, p, dtype):
        shapes.append(tuple(shape))
        return torch.ones(shape, dtype=dtype)

    monkeypatch.setattr(fast_dropout, "keep_multiplier", keep_all)
    monkeypatch.setattr(fast_dropout, "keep_probability", lambda p: 1.0)
    plain, fast = _classifiers(kind)
    batch = _batch()
    if not padded:
        del batch["attention_mask"]
    expected, found = plain(**batch), fast(**batch)
    assert any(len(shape) == 4 and shape[-2:] == (12, 12) for shape in shapes)  # attention
    assert any(len(shape) == 3 for shape in shapes)  # hidden states
    assert torch.allclose(expected.logits, found.logits, atol=1e-5)
    expected.loss.backward()
    found.loss.backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), fast.named_parameters(), strict=True):
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-5), name


def test_models_not_given_the_masks_keep_torchs_dropout(monkeypatch):
    _classifiers("bert")  # installs the attention wrapper for the process
    calls = []
    monkeypatch.setattr(fast_dropout, "keep_multiplier",
                        lambda shape, p, dtype: calls.append(shape))  # fmt: skip
    torch.manual_seed(0)
    other = transformers.BertForSequenceClassification(transformers.BertConfig(**SMALL)).train()
    other(**_batch())
    assert calls == []
    assert all(type(m).forward is m.forward.__func__ for m in other.modules()
               if isinstance(m, torch.nn.Dropout))  # fmt: skip


def test_training_outputs_repeat_by_seed_and_the_model_stays_a_plain_model():
    _, fast = _classifiers("bert")
    batch = _batch()
    torch.manual_seed(11)
    first = fast(**batch).logits
    again = fast(**batch).logits
    torch.manual_seed(11)
    assert torch.equal(fast(**batch).logits, first)
    assert not torch.equal(again, first)
    fast.eval()
    assert torch.equal(fast(**batch).logits, fast(**batch).logits)
    twin = copy.deepcopy(fast)
    assert twin.state_dict().keys() == fast.state_dict().keys()
    assert fast_cpu_dropout(twin) == fast_cpu_dropout(fast)  # idempotent, also on a copy
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    assert not hasattr(ALL_ATTENTION_FUNCTIONS["sdpa"].__wrapped__, "__wrapped__")


@pytest.mark.parametrize("kind", ["bert", "gpt2"])
def test_in_bf16_the_written_out_attention_agrees_with_torchs_within_bf16_rounding(
    kind, monkeypatch
):
    """Under bf16 autocast (how the CPU trains where bf16 is faster) the probabilities stay in
    bf16: logits and gradients still match torch's attention to bf16's precision."""
    monkeypatch.setattr(
        fast_dropout, "keep_multiplier", lambda shape, p, dtype: torch.ones(shape, dtype=dtype)
    )
    monkeypatch.setattr(fast_dropout, "keep_probability", lambda p: 1.0)
    plain, fast = _classifiers(kind)
    batch = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, found = plain(**batch), fast(**batch)
    assert found.logits.dtype == expected.logits.dtype
    assert torch.allclose(expected.logits.float(), found.logits.float(), atol=3e-2, rtol=3e-2)
    expected.loss.backward()
    found.loss.backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), fast.named_parameters(), strict=True):
        if a.grad is not None:
            assert (a.grad - b.grad).norm() <= 0.05 * a.grad.norm() + 1e-6, name


def _llamas() -> tuple:
    """A tiny Llama (grouped-query: 4 query heads, 2 key/value heads, no attention dropout),
    twice with the same weights: plain, and given tunelab's CPU attention."""
    config = transformers.LlamaConfig(
        vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=40,
        attn_implementation="sdpa",
    )  # fmt: skip
    torch.manual_seed(0)
    plain = transformers.LlamaForCausalLM(config).train()
    fast = copy.deepcopy(plain)
    fast_cpu_dropout(fast)
    return plain, fast


def _spy_written_out(monkeypatch) -> list:
    calls = []
    written_out = fast_dropout._math_attention

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return written_out(*args, **kwargs)

    monkeypatch.setattr(fast_dropout, "_math_attention", spy)
    return calls


@pytest.mark.parametrize("padded", [True, False])
def test_bf16_training_without_dropout_writes_attention_out_and_agrees_with_sdpa(
    padded, monkeypatch
):
    """Grouped-query heads by broadcasting, causal with and without a padding mask; Llama
    hands SDPA fp32 queries (its rotary embeddings) that autocast would run in bf16."""
    calls = _spy_written_out(monkeypatch)
    plain, fast = _llamas()
    batch = _batch()
    batch["labels"] = batch["input_ids"]
    if not padded:
        del batch["attention_mask"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, found = plain(**batch), fast(**batch)
    assert calls == [(4, 4, 12, 8)] * 2  # both layers, written out
    assert torch.allclose(expected.logits.float(), found.logits.float(), atol=3e-2, rtol=3e-2)
    expected.loss.backward()
    found.loss.backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), fast.named_parameters(), strict=True):
        assert (a.grad - b.grad).norm() <= 0.05 * a.grad.norm() + 1e-6, name


def test_in_fp32_inference_or_past_the_size_limit_sdpa_keeps_attention(monkeypatch):
    """Where the fused kernel is the faster one (fp32, no backward) or the scores would take
    too much memory, attention without dropout stays with SDPA."""
    calls = _spy_written_out(monkeypatch)
    _, fast = _llamas()
    batch = _batch()
    del batch["labels"]
    fast(**batch)  # fp32 training
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        fast(**batch)  # bf16, no backward to come
    assert calls == []
    monkeypatch.setattr(fast_dropout, "WRITTEN_OUT_MOST", 4 * 4 * 12 * 12 - 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast(**batch)
    assert calls == []
    monkeypatch.setattr(fast_dropout, "WRITTEN_OUT_MOST", 4 * 4 * 12 * 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast(**batch)
    assert len(calls) == 2
