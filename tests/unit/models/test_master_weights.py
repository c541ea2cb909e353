"""Weights that train are fp32 whatever the checkpoint stores: bf16 weights would round away
AdamW's small updates (a MiniLM stored in bf16 lost 2-3 points of SST-2 accuracy so)."""

from __future__ import annotations

import pytest
import torch

from tunelab.models.master_weights import fp32_master_weights


def tiny_classifier(dtype: torch.dtype) -> torch.nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, num_labels=2)  # fmt: skip
    return BertForSequenceClassification(config).to(dtype)


def dtypes(model: torch.nn.Module, trainable: bool) -> set[torch.dtype]:
    return {p.dtype for p in model.parameters() if p.requires_grad == trainable}


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_full_fine_tuning_casts_the_whole_model(precision: str) -> None:
    model = tiny_classifier(torch.bfloat16)
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)  # frozen parts too
    total = sum(p.numel() for p in model.parameters())
    assert fp32_master_weights(model, precision, adapters=False) == total
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_adapters_under_autocast_cast_only_what_trains() -> None:
    from peft import LoraConfig, get_peft_model

    model = tiny_classifier(torch.bfloat16)
    model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=2, target_modules=["query"]))
    # the head PEFT keeps trainable is bf16 as loaded; LoRA's own weights are fp32 already
    half = sum(p.numel() for p in model.parameters()
               if p.requires_grad and p.dtype == torch.bfloat16)  # fmt: skip
    assert half > 0
    assert fp32_master_weights(model, "bf16", adapters=True) == half
    assert dtypes(model, trainable=True) == {torch.float32}
    assert dtypes(model, trainable=False) == {torch.bfloat16}  # the frozen base stays small

    lora = LoraConfig(task_type="SEQ_CLS", r=2, target_modules=["query"])
    fp32_run = get_peft_model(tiny_classifier(torch.bfloat16), lora)
    fp32_master_weights(fp32_run, "fp32", adapters=True)  # no autocast: one dtype throughout
    assert {p.dtype for p in fp32_run.parameters()} == {torch.float32}


def test_an_fp32_checkpoint_is_left_as_it_is() -> None:
    model = tiny_classifier(torch.float32)
    before = {name: p.data_ptr() for name, p in model.named_parameters()}
    assert fp32_master_weights(model, "bf16", adapters=False) == 0
    assert {name: p.data_ptr() for name, p in model.named_parameters()} == before


def test_small_updates_survive_in_fp32_and_vanish_in_bf16() -> None:
    """Why: one AdamW step at a fine-tuning rate leaves most bf16 weights where they were."""
    moved = {}
    for name, cast in (("bf16", False), ("fp32", True)):
        model = tiny_classifier(torch.bfloat16)
        if cast:
            fp32_master_weights(model, "bf16", adapters=False)
        weight = model.bert.encoder.layer[0].intermediate.dense.weight
        before = weight.detach().float().clone()
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(
                input_ids=torch.randint(0, 64, (4, 8)), labels=torch.tensor([0, 1, 0, 1])
            ).loss
        loss.backward()
        optimizer.step()
        moved[name] = (weight.detach().float() != before).float().mean().item()
    assert moved["fp32"] > 0.9 and moved["bf16"] < 0.5, moved


def test_a_run_on_a_bf16_checkpoint_trains_fp32_weights_and_says_so(
    tmp_path, tiny_bert, reviews_csv
) -> None:
    import json

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import tunelab
    from tests.conftest import tiny_run_config

    stored = tmp_path / "bf16"
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, dtype=torch.bfloat16)
    model.save_pretrained(stored)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(stored)
    config = tiny_run_config(stored, reviews_csv, tmp_path / "run", training={"epochs": 1})
    tunelab.train(config)
    report = json.loads((tmp_path / "run" / "data_report.json").read_text(encoding="utf-8"))
    trained, *_ = tunelab.load_trained(tmp_path / "run")
    assert report["fp32_master_weights"] == sum(p.numel() for p in trained.parameters())
    assert {p.dtype for p in trained.parameters()} == {torch.float32}  # saved as trained
