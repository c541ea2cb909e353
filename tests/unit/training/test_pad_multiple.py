"""training.pad_to_multiple_of: batches padded up to a multiple of N tokens, or a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tunelab.errors import UserError
from tunelab.tasks.packing import PackingCollator
from tunelab.tasks.text_classification import TextClassification
from tunelab.training.trainer import pad_to_multiple


def _rows(tokenizer, texts: list[str]) -> list[dict]:
    return [dict(tokenizer(text), labels=0) for text in texts]


def test_a_padded_batch_grows_to_the_next_multiple(tiny_bert: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    collator = TextClassification().collator(tokenizer)
    rows = _rows(tokenizer, ["good", "a rather longer sentence than the other one"])
    longest = max(len(row["input_ids"]) for row in rows)
    assert longest % 8, "the rows must not already fill a multiple of 8"
    assert collator(rows)["input_ids"].shape[1] == longest  # unset: the longest row

    pad_to_multiple(collator, 8)
    batch = collator(rows)
    assert batch["input_ids"].shape[1] == -(-longest // 8) * 8
    # the added positions are padding, masked out
    assert batch["attention_mask"].sum().item() == sum(len(row["input_ids"]) for row in rows)


def test_batches_built_another_way_name_the_option() -> None:
    with pytest.raises(UserError, match=r"training\.pad_to_multiple_of"):
        pad_to_multiple(PackingCollator(64, 0), 8)
    with pytest.raises(UserError, match="leave it unset"):
        pad_to_multiple(None, 8)


def test_the_setting_reaches_the_trainers_collator(tiny_bert: Path, tmp_path: Path) -> None:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification

    from tunelab.config import build_config
    from tunelab.training.trainer import build_trainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    train = Dataset.from_dict({**tokenizer(["good", "a bad film"]), "labels": [1, 0]})
    for setting, padded_to in ((None, None), (8, 8)):
        training = build_config({"training": {"pad_to_multiple_of": setting}}).training
        trainer = build_trainer(
            model, tokenizer, TextClassification(), train, None, training, tmp_path, 0, "fp32"
        )
        assert trainer.data_collator.pad_to_multiple_of == padded_to
