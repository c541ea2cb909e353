"""The last layer of a first-token classifier run for position 0 only: same logits, same
gradients, a one-position last hidden state (so the change is really in effect)."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tunelab.models.first_token import first_token_last_layer  # noqa: E402

SMALL = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
             intermediate_size=32, max_position_embeddings=40, num_labels=3)  # fmt: skip


def _pair(kind: str) -> tuple:
    """The same randomly initialised classifier twice: as it comes, and with the change."""
    configs = {"bert": transformers.BertConfig, "roberta": transformers.RobertaConfig,
               "electra": transformers.ElectraConfig}  # fmt: skip
    config = configs[kind](**SMALL, pad_token_id=1)
    torch.manual_seed(0)
    plain = transformers.AutoModelForSequenceClassification.from_config(config).eval()
    changed = copy.deepcopy(plain)
    assert first_token_last_layer(changed)
    return plain, changed


def _batch() -> dict:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 50, (4, 12), generator=generator)
    mask = torch.ones_like(ids)
    mask[2:, 7:] = 0  # padded rows: position 0 still attends only to real tokens
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 2, 1])}


@pytest.mark.parametrize("kind", ["bert", "roberta", "electra"])
def test_logits_and_gradients_are_unchanged_and_the_last_layer_sees_one_position(kind):
    plain, changed = _pair(kind)
    batch = _batch()
    expected, found = plain(**batch), changed(**batch)
    assert torch.allclose(expected.logits, found.logits, atol=1e-6)
    expected.loss.backward()
    found.loss.backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), changed.named_parameters(), strict=True):
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-6), name
    backbone = getattr(changed, changed.base_model_prefix)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    assert backbone(**inputs).last_hidden_state.shape == (4, 1, 16)  # position 0 alone
    assert getattr(plain, plain.base_model_prefix)(**inputs).last_hidden_state.shape[1] == 12


def test_the_state_dict_is_untouched_and_a_deep_copy_uses_its_own_weights():
    plain, changed = _pair("bert")
    assert plain.state_dict().keys() == changed.state_dict().keys()
    twin = copy.deepcopy(changed)
    with torch.no_grad():
        twin.bert.encoder.layer[-1].attention.output.dense.weight.mul_(3.0)
    batch = _batch()
    # the copy's rebound forward reads the copy's (changed) weights, not the original's
    assert not torch.allclose(twin(**batch).logits, changed(**batch).logits)
    assert first_token_last_layer(changed)  # again: still the same logits
    assert torch.allclose(plain(**batch).logits, changed(**batch).logits, atol=1e-6)


def test_models_whose_head_reads_other_positions_are_left_alone():
    config = transformers.BertConfig(**SMALL)
    tokens = transformers.BertForTokenClassification(config)
    assert not first_token_last_layer(tokens)
    assert "forward" not in vars(tokens.bert.encoder.layer[-1].attention.output)


def test_under_a_lora_adapter_the_logits_are_unchanged():
    peft = pytest.importorskip("peft")
    plain, _ = _pair("bert")
    lora = peft.LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query", "value", "dense"])
    torch.manual_seed(2)
    adapted = peft.get_peft_model(copy.deepcopy(plain), lora).eval()
    for name, parameter in adapted.named_parameters():
        if "lora_B" in name:  # non-zero, so the adapter changes the output
            torch.nn.init.normal_(parameter, std=0.5)
    batch = _batch()
    expected = adapted(**batch).logits
    assert first_token_last_layer(adapted)
    assert torch.allclose(adapted(**batch).logits, expected, atol=1e-6)


def test_the_last_layer_attends_from_the_first_query_alone_unless_weights_are_asked_for(
    monkeypatch,
):
    from tunelab.models import first_token

    calls = []
    original = first_token._first_query_attention
    monkeypatch.setattr(first_token, "_first_query_attention",
                        lambda *args: calls.append(args[1].shape) or original(*args))  # fmt: skip
    plain, changed = _pair("bert")
    batch = _batch()
    assert torch.allclose(plain(**batch).logits, changed(**batch).logits, atol=1e-6)
    assert calls == [(4, 1, 16)]  # one query a row
    # attention weights (the explainer's map, in eager attention) need every query
    changed.set_attn_implementation("eager")
    found = changed(**batch, output_attentions=True)
    assert len(calls) == 1 and found.attentions[-1].shape == (4, 2, 12, 12)
    assert torch.allclose(plain(**batch).logits, found.logits, atol=1e-6)
