"""Packed (padding-free) batches give the padded batch's logits and gradients, for BERT-
and RoBERTa-style position ids, sentence pairs, LoRA, and inside a real Trainer run."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tunelab.models.unpadded import UnpaddedCollator, use_unpadded_batches  # noqa: E402

SMALL = dict(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
             intermediate_size=32, max_position_embeddings=40, num_labels=3,
             hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fmt: skip
CONFIGS = {"bert": "BertConfig", "roberta": "RobertaConfig", "electra": "ElectraConfig"}


class _Tokenizer:
    """Just enough of a tokenizer for DataCollatorWithPadding (the padded reference)."""

    pad_token_id = 1
    padding_side = "right"
    model_input_names = ("input_ids", "token_type_ids", "attention_mask")

    def pad(self, features, return_tensors="pt", pad_to_multiple_of=None, **_):
        longest = max(len(row["input_ids"]) for row in features)
        if pad_to_multiple_of:
            longest = -(-longest // pad_to_multiple_of) * pad_to_multiple_of
        batch = {}
        for name, fill in (("input_ids", 1), ("token_type_ids", 0), ("attention_mask", 0)):
            if name in features[0]:
                batch[name] = torch.tensor(
                    [row[name] + [fill] * (longest - len(row[name])) for row in features]
                )
        batch["labels"] = torch.tensor([row["labels"] for row in features])
        return batch


def _padded() -> transformers.DataCollatorWithPadding:
    return transformers.DataCollatorWithPadding(_Tokenizer())


def _rows(pairs: bool = False) -> list[dict]:
    generator = torch.Generator().manual_seed(1)
    rows = []
    for i, length in enumerate((9, 3, 14, 6)):
        ids = torch.randint(3, 60, (length,), generator=generator).tolist()
        row = {"input_ids": ids, "attention_mask": [1] * length, "labels": i % 3}
        if pairs:
            row["token_type_ids"] = [0] * (length // 2) + [1] * (length - length // 2)
        rows.append(row)
    return rows


def _models(kind: str, adapter: bool = False) -> tuple:
    config = getattr(transformers, CONFIGS[kind])(**SMALL, pad_token_id=1)
    torch.manual_seed(0)
    plain = transformers.AutoModelForSequenceClassification.from_config(
        config, attn_implementation="sdpa"
    )
    if adapter:
        peft = pytest.importorskip("peft")
        lora = peft.LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query", "value"])
        plain = peft.get_peft_model(plain, lora)
    packed = copy.deepcopy(plain)
    return plain, packed, use_unpadded_batches(packed)


def _compare(plain, packed, first_position: int, rows: list[dict]) -> None:
    padded_batch = _Tokenizer().pad(rows)
    packed_batch = UnpaddedCollator(_padded(), first_position)(rows)
    assert packed_batch["input_ids"].shape == (1, sum(len(r["input_ids"]) for r in rows))
    expected, found = plain(**padded_batch), packed(**packed_batch)
    assert torch.allclose(expected.logits, found.logits, atol=1e-5)
    expected.loss.backward()
    found.loss.backward()
    compared = 0
    for (name, a), (_, b) in zip(plain.named_parameters(), packed.named_parameters(), strict=True):
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-5), name
            compared += 1
    assert compared


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_a_packed_batch_gives_the_padded_batchs_logits_and_gradients(kind):
    plain, packed, first_position = _models(kind)
    assert first_position == (2 if kind == "roberta" else 0)  # RoBERTa counts from pad + 1
    _compare(plain.train(), packed.train(), first_position, _rows())


def test_rows_split_into_attention_blocks_by_length_give_the_same_logits(monkeypatch):
    from tunelab.models import unpadded

    monkeypatch.setattr(unpadded, "GROUP_COST", 0)  # every split that saves work is taken
    rows = [*_rows(), dict(_rows()[1], labels=2)]  # lengths 9, 3, 14, 6, 3
    layout = UnpaddedCollator(_padded())(rows)["packed_rows"]
    blocks = [group["mask"].shape for group in layout["groups"]]
    assert len(blocks) == unpadded.ATTENTION_GROUPS == 4
    assert sorted(shape[0] * shape[-1] for shape in blocks) == [6, 6, 9, 14]  # 3+3, 6, 9, 14
    plain, packed, first_position = _models("bert")
    _compare(plain.train(), packed.train(), first_position, rows)


def test_a_packed_batch_builds_no_mask_over_all_its_tokens_but_a_padded_one_does(monkeypatch):
    from transformers import masking_utils

    built = []
    real_mask = masking_utils.sdpa_mask

    def recording_mask(*args, **kwargs):
        mask = real_mask(*args, **kwargs)
        built.append(None if mask is None else tuple(mask.shape))
        return mask

    monkeypatch.setattr(masking_utils, "sdpa_mask", recording_mask)
    _, packed, first_position = _models("bert")
    rows = _rows()  # 32 tokens in four rows: a mask over them all would be 32 x 32
    packed(**UnpaddedCollator(_padded(), first_position)(rows))
    assert built == []  # the layout keeps the rows apart; transformers would build 1 x 32 x 32
    packed(**_Tokenizer().pad(rows))
    assert built == [(4, 1, 14, 14)]  # a padded batch still gets SDPA's padding mask


def test_length_groups_cut_where_the_padded_work_falls_most():
    from tunelab.models.unpadded import length_groups

    assert length_groups([3, 3, 4, 100], most=4, cost=0) == [2, 3, 4]  # 3,3 | 4 | 100
    assert length_groups([3, 3, 4, 100], most=2, cost=0) == [3, 4]
    assert length_groups([3, 3, 4, 100], most=4, cost=1_000) == [3, 4]  # 3 x 4² + 100²
    assert length_groups([3, 3, 4, 100], most=4, cost=50_000) == [4]  # a split costs more
    assert length_groups([7], most=4, cost=0) == [1]


def test_sentence_pairs_keep_their_segments():
    plain, packed, first_position = _models("bert")
    _compare(plain, packed, first_position, _rows(pairs=True))


def test_a_lora_wrapped_classifier_takes_packed_batches():
    plain, packed, first_position = _models("bert", adapter=True)
    assert first_position == 0
    _compare(plain, packed, first_position, _rows())


def test_padded_batches_still_work_and_the_saved_config_is_the_usual_one(tmp_path):
    plain, packed, _ = _models("bert")
    batch = _Tokenizer().pad(_rows())
    assert torch.allclose(plain(**batch).logits, packed(**batch).logits, atol=1e-5)
    packed.save_pretrained(tmp_path)
    reloaded = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert torch.allclose(reloaded(**batch).logits, plain(**batch).logits, atol=1e-5)


def test_models_it_does_not_know_are_left_alone():
    config = transformers.DistilBertConfig(vocab_size=60, dim=16, n_layers=1, n_heads=2,
                                           hidden_dim=32, max_position_embeddings=40)  # fmt: skip
    model = transformers.AutoModelForSequenceClassification.from_config(config)
    assert use_unpadded_batches(model) is None
    eager = transformers.AutoModelForSequenceClassification.from_config(
        transformers.BertConfig(**SMALL), attn_implementation="eager"
    )
    assert use_unpadded_batches(eager) is None  # eager attention (weights asked for): padded


def test_asking_for_padded_lengths_pads_instead():
    collator = UnpaddedCollator(_padded())
    assert "packed_rows" in collator(_rows())
    collator.pad_to_multiple_of = 8
    batch = collator(_rows())
    assert "packed_rows" not in batch and batch["input_ids"].shape == (4, 16)  # 14 -> 16


def test_rows_of_nearly_one_length_are_padded_as_usual():
    rows = _rows()
    alike = [dict(rows[0], input_ids=rows[0]["input_ids"][:n], attention_mask=[1] * n)
             for n in (9, 9, 8, 9)]  # fmt: skip
    batch = UnpaddedCollator(_padded())(alike)
    assert "packed_rows" not in batch and batch["input_ids"].shape == (4, 9)


def test_the_trainer_trains_on_packed_batches_unless_told_not_to(tiny_bert, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tunelab.config import build_config
    from tunelab.tasks.text_classification import TextClassification
    from tunelab.training.trainer import build_trainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    texts = ["good", "a bad film", "a rather longer sentence than the others", "ok"] * 4
    train = Dataset.from_dict({**tokenizer(texts), "labels": [1, 0, 1, 0] * 4})
    settings = {"batch_size": 4, "max_steps": 2, "learning_rate": 1e-3}
    training = build_config({"training": settings}).training
    for padding_free, collator in ((True, UnpaddedCollator), (False, None)):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
        task = TextClassification(padding_free=padding_free)
        trainer = build_trainer(model, tokenizer, task, train, None, training, tmp_path, 0, "fp32")
        assert isinstance(trainer.data_collator, collator or transformers.DataCollatorWithPadding)
        before = [p.detach().clone() for p in model.parameters()]
        result = trainer.train()
        assert result.global_step == 2 and torch.isfinite(torch.tensor(result.training_loss))
        assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
