"""Training only the used word-embedding rows: the same training, an ordinary model outside."""

from __future__ import annotations

import copy

import pytest
import torch

from tunelab.models.used_rows import (
    UsedRowsEmbedding,
    owe_weight_decay,
    restore_word_embeddings,
    train_used_rows_only,
    used_token_ids,
)

VOCABULARY = 300
USED = 60  # the batches draw token ids below this; rows 60-299 never get a gradient


def _bert(seed: int = 0, tie: bool = False):
    from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

    config = BertConfig(
        vocab_size=VOCABULARY, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, pad_token_id=0, tie_word_embeddings=tie,
    )  # fmt: skip
    torch.manual_seed(seed)
    model_class = BertForMaskedLM if tie else BertForSequenceClassification
    return model_class(config)


def _batches(count: int = 6) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(count):
        ids = torch.randint(1, USED, (4, 10), generator=generator)
        ids[0, 7:] = 0  # padding
        batches.append({"input_ids": ids, "attention_mask": (ids != 0).long(),
                        "labels": torch.randint(0, 2, (4,), generator=generator)})  # fmt: skip
    return batches


def _train(model, batches, used_rows: bool) -> None:
    if used_rows:
        ids = torch.cat([batch["input_ids"].flatten() for batch in batches])
        assert train_used_rows_only(model, ids) is not None
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    # a changing learning rate: the decay owed must follow each step's own rate
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    hook = owe_weight_decay(optimizer, model) if used_rows else None
    model.train()
    for batch in batches:
        model(**batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    if hook is not None:
        hook.remove()
        restore_word_embeddings(model)


def test_training_the_used_rows_gives_the_model_training_every_row_gives():
    every_row, used_rows = _bert(), _bert()
    before = every_row.get_input_embeddings().weight.detach().clone()
    batches = _batches()
    _train(every_row, batches, used_rows=False)
    _train(used_rows, batches, used_rows=True)

    assert type(used_rows.get_input_embeddings()) is torch.nn.Embedding  # the plain one back
    expected = dict(every_row.named_parameters())
    for name, value in used_rows.named_parameters():
        torch.testing.assert_close(value, expected[name], rtol=1e-5, atol=1e-6, msg=name)
    after = used_rows.get_input_embeddings().weight.detach()
    # the unused rows moved by weight decay alone, the used ones by their gradients too
    decayed = after[USED:] / before[USED:]
    assert torch.allclose(decayed, decayed.flatten()[0]) and decayed.flatten()[0] < 0.999
    assert not torch.allclose(after[1:USED] / before[1:USED], decayed.flatten()[0])


def test_state_dict_holds_the_whole_matrix_under_its_usual_name():
    plain, compact = _bert(), _bert()
    _train(compact, _batches(2), used_rows=False)  # weights that differ from plain's
    ids = torch.arange(1, USED)
    train_used_rows_only(compact, ids)
    state = compact.state_dict()
    assert state.keys() == plain.state_dict().keys()
    name = "bert.embeddings.word_embeddings.weight"
    torch.testing.assert_close(state[name], compact.get_input_embeddings().whole_matrix())

    plain.load_state_dict(state)  # a checkpoint of the swapped model is an ordinary one
    compact.load_state_dict(_bert(seed=3).state_dict())  # and the swapped model takes one
    torch.testing.assert_close(compact.state_dict()[name], _bert(seed=3).state_dict()[name])


def test_held_out_tokens_outside_the_used_rows_read_the_frozen_table():
    plain, compact = _bert(), _bert()
    batches = _batches(3)
    _train(plain, batches, used_rows=False)
    compact.load_state_dict(plain.state_dict())
    train_used_rows_only(compact, torch.arange(1, USED))
    compact.get_input_embeddings().note_step(0.5, 0.1)  # a decay owed, applied when read
    plain.get_input_embeddings().weight.data[USED:] *= 1 - 0.5 * 0.1
    plain.get_input_embeddings().weight.data[0] *= 1 - 0.5 * 0.1  # padding is frozen too
    held_out = {"input_ids": torch.tensor([[5, 250, 17, 299, 0]]),
                "attention_mask": torch.tensor([[1, 1, 1, 1, 0]])}  # fmt: skip
    plain.eval(), compact.eval()
    with torch.no_grad():
        words = held_out["input_ids"][:, :4]  # the padding row is a trained one here
        torch.testing.assert_close(
            compact.get_input_embeddings()(words), plain.get_input_embeddings()(words)
        )
        torch.testing.assert_close(compact(**held_out).logits, plain(**held_out).logits)


def test_a_training_token_outside_the_used_rows_is_refused():
    model = _bert()
    train_used_rows_only(model, torch.arange(1, USED))
    model.train()
    batch = {"input_ids": torch.tensor([[3, 4, 200]]), "labels": torch.tensor([1])}
    with pytest.raises(RuntimeError, match=r"\[200\].*training.embedding_rows: all"):
        model(**batch)


def test_a_tied_or_frozen_embedding_is_left_alone():
    tied = _bert(tie=True)
    assert train_used_rows_only(tied, torch.arange(1, USED)) is None
    assert type(tied.get_input_embeddings()) is torch.nn.Embedding
    frozen = _bert()
    frozen.get_input_embeddings().weight.requires_grad_(False)
    assert train_used_rows_only(frozen, torch.arange(1, USED)) is None


def test_the_used_rows_are_the_distinct_token_ids_and_padding():
    from datasets import Dataset

    dataset = Dataset.from_dict({"input_ids": [[101, 7, 7, 102], [101, 9, 102]]})
    assert used_token_ids(dataset).tolist() == [7, 9, 101, 102]
    assert used_token_ids(Dataset.from_dict({"pixel_values": [[0.5]]})) is None
    model = _bert()
    assert train_used_rows_only(model, torch.tensor([5, 9, 5])) == 3  # 5, 9 and padding 0
    swapped = model.get_input_embeddings()
    assert isinstance(swapped, UsedRowsEmbedding) and swapped.used.tolist() == [0, 5, 9]
    assert not any(p is swapped.frozen for p in model.parameters())  # out of the optimizer
    assert copy.deepcopy(model).get_input_embeddings().rows.shape == (3, 16)
