"""Pretraining from scratch and continued, on a tiny corpus written in the test."""

import json
import random

import pytest
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

from tests.conftest import make_reviews
from tunelab.data.corpus import read_documents, spaced_words
from tunelab.errors import UserError
from tunelab.training.pretrain import (
    FewMaskedCounts,
    head_on_masked_positions_only,
    held_out_split,
    pack_blocks,
    pretrain,
)

STEPS = {"max_steps": 80, "eval_steps": 40, "batch_size": 8, "logging_steps": 1000,
         "learning_rate": 3e-3}  # fmt: skip


SENTENCES = [
    "今天 天气 很 好",
    "我们 一起 去 公园 散步",
    "这 本 书 非常 有意思",
    "价格 便宜 质量 也 不错",
]


@pytest.fixture
def corpus(tmp_path):
    """Documents made of a few fixed sentences: predictable, so a model can learn them."""
    rng = random.Random(0)
    docs = [" ， ".join(rng.choices(SENTENCES, k=rng.randint(1, 4))) for _ in range(300)]
    docs += [spaced_words(t) for t in make_reviews(20)["text"]]  # a wider vocabulary
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(docs) + "\n", encoding="utf-8")
    return path


def _config(corpus, out, objective, **extra):
    return {
        "objective": objective, "data": [str(corpus)], "output": str(out), "block_size": 32,
        "held_out": 0.1, "architecture": {"layers": 1, "hidden": 32, "heads": 2},
        "vocab_size": 400, "training": dict(STEPS), **extra,
    }  # fmt: skip


def test_pack_blocks_fills_full_rows_and_ends_documents():
    class Chars:
        eos_token_id = 0

        def __call__(self, docs, **kwargs):
            return {"input_ids": [[ord(c) for c in d] for d in docs]}

    blocks = pack_blocks(["abc", "de", "fghij"], Chars(), 4, "clm", with_offsets=False)
    # a b c EOS d e EOS f g h i j EOS -> 13 tokens -> 3 full blocks of 4, remainder dropped
    assert blocks["input_ids"] == [[97, 98, 99, 0], [100, 101, 0, 102], [103, 104, 105, 106]]


def test_held_out_split_is_seeded_and_disjoint():
    docs = [f"d{i}" for i in range(100)]
    train, held = held_out_split(docs, 0.1, seed=3)
    assert len(held) == 10 and not set(train) & set(held)
    assert held_out_split(docs, 0.1, seed=3) == (train, held)


def test_mlm_from_scratch_learns_and_writes_a_model_card(corpus, tmp_path):
    out = tmp_path / "bert"
    figures = pretrain(_config(corpus, out, "mlm", whole_word_masking=True), command="tunelab x")
    card = (out / "README.md").read_text()
    assert "held-out perplexity" in card and "tunelab x" in card and "model.safetensors" in card
    assert figures["steps"] == 80
    assert figures["tokens_seen"] == 80 * 8 * 32
    # A uniform guess over the vocabulary has perplexity = vocab size, and so has the random
    # model; tiny post-LN BERTs sit on the unigram plateau for their first few hundred steps.
    assert figures["held_out_perplexity"] < 0.8 * figures["vocab_size"]
    model = AutoModelForMaskedLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.vocab_size == len(tokenizer) == figures["vocab_size"]
    assert json.loads((out / "pretrain_metrics.json").read_text())["objective"] == "mlm"


def test_clm_from_scratch_has_a_chat_template(corpus, tmp_path):
    out = tmp_path / "llama"
    figures = pretrain(_config(corpus, out, "clm"))
    assert figures["architecture"] == "LlamaForCausalLM"
    assert figures["held_out_perplexity"] < 0.1 * figures["vocab_size"]  # the sentences repeat
    tokenizer = AutoTokenizer.from_pretrained(out)
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "好吗"}, {"role": "assistant", "content": "很好"}],
        return_dict=True, return_assistant_tokens_mask=True,
    )  # fmt: skip
    assert sum(chat["assistant_masks"]) >= 2  # the reply and its end-of-turn token
    assert "Greedy samples" in (out / "README.md").read_text()
    assert AutoModelForCausalLM.from_pretrained(out).config.tie_word_embeddings


def test_continued_pretraining_keeps_tokenizer_and_changes_weights(corpus, tmp_path, tiny_bert):
    from safetensors.torch import load_file

    out = tmp_path / "dapt"
    pretrain(_config(corpus, out, "mlm", from_model=str(tiny_bert)))
    assert (out / "tokenizer.json").read_text() == (tiny_bert / "tokenizer.json").read_text()
    before, after = load_file(tiny_bert / "model.safetensors"), load_file(out / "model.safetensors")
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert not (before[name] == after[name]).all()


def test_existing_model_folder_is_not_replaced(corpus, tmp_path, tiny_bert):
    with pytest.raises(UserError, match="already holds a model; pass --overwrite"):
        pretrain(_config(corpus, tiny_bert, "mlm"))


def test_missing_and_empty_corpus(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_documents([tmp_path / "none.txt"])
    (tmp_path / "blank.txt").write_text("\n  \n")
    with pytest.raises(UserError, match="no text found"):
        read_documents([tmp_path / "blank.txt"])


def test_the_masked_positions_head_gives_the_same_loss_and_is_not_saved(tmp_path):
    import torch
    from transformers import BertConfig, BertForMaskedLM, ModernBertConfig, ModernBertForMaskedLM

    torch.manual_seed(0)
    small = {"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 1,
             "num_attention_heads": 2, "intermediate_size": 32}  # fmt: skip
    model = ModernBertForMaskedLM(ModernBertConfig(**small, pad_token_id=0)).eval()
    ids = torch.randint(4, 50, (2, 12))
    labels = torch.full_like(ids, -100)
    labels[:, [1, 5, 9]] = ids[:, [1, 5, 9]]
    full = model(input_ids=ids, labels=labels)
    assert head_on_masked_positions_only(model)
    sparse = model(input_ids=ids, labels=labels)
    assert torch.allclose(full.loss, sparse.loss, atol=1e-6)
    assert full.logits.shape == (2, 12, 50) and sparse.logits.shape == (6, 50)
    model.save_pretrained(tmp_path / "saved")
    reloaded = ModernBertForMaskedLM.from_pretrained(tmp_path / "saved")
    assert reloaded(input_ids=ids, labels=labels).logits.shape == (2, 12, 50)
    assert not head_on_masked_positions_only(BertForMaskedLM(BertConfig(**small)))


def test_masked_counts_are_trimmed_to_few_values_and_unmasked_tokens_restored():
    import torch
    from transformers import DataCollatorForLanguageModeling

    from tunelab.models.load import resolve_model_source

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_source("zh-bert-mini"))
    generator = torch.Generator().manual_seed(0)
    blocks = torch.randint(10, 4000, (40, 64, 128), generator=generator)  # no special ids
    collate = FewMaskedCounts(DataCollatorForLanguageModeling(tokenizer, seed=0), seed=0)
    counts = set()
    for batch_ids in blocks:
        batch = collate([{"input_ids": row.tolist()} for row in batch_ids])
        masked = batch["labels"] != -100
        counts.add(int(masked.sum()))
        # every position is either its own token or masked with the original as its label
        assert (batch["input_ids"][~masked] == batch_ids[~masked]).all()
        assert (batch["labels"][masked] == batch_ids[masked]).all()
    # about 1,229 masked of 8,192 per batch (sd 32): trimmed to multiples of 32
    assert all(count % 32 == 0 and 1100 < count < 1350 for count in counts)
    assert len(counts) <= 8


def test_modernbert_encoder_fine_tunes_and_matches_the_pipeline(corpus, tmp_path):
    from transformers import pipeline

    import tunelab

    out = tmp_path / "modern"
    config = _config(corpus, out, "mlm")
    config["architecture"]["encoder"] = "modernbert"
    assert pretrain(config)["architecture"] == "ModernBertForMaskedLM"
    make_reviews(120).to_csv(tmp_path / "r.csv", index=False)
    result = tunelab.train({
        "output": str(tmp_path / "run"), "data": {"train": str(tmp_path / "r.csv")},
        "model": {"name": str(out)}, "training": {"max_steps": 3},
    })  # fmt: skip
    texts = ["很好很好", "太差了"]
    ours = [r["label"] for r in tunelab.predict(result["model_dir"], texts=texts)]
    plain = [r["label"] for r in pipeline("text-classification", model=result["model_dir"])(texts)]
    assert ours == plain


def test_a_second_stage_keeps_the_held_out_documents_and_records_the_first(
    corpus, tmp_path, monkeypatch
):
    import tunelab.training.pretrain as pretrain_module

    first = pretrain(_config(corpus, tmp_path / "stage1", "mlm", seed=5))
    split_seeds = []
    real_split = pretrain_module.held_out_split

    def recording_split(documents, share, seed):
        split_seeds.append(seed)
        return real_split(documents, share, seed)

    monkeypatch.setattr(pretrain_module, "held_out_split", recording_split)
    config = _config(corpus, tmp_path / "stage2", "mlm", seed=9, held_out_seed=5)
    config["from_model"] = str(tmp_path / "stage1")
    second = pretrain(config)

    assert split_seeds == [5]
    assert second["earlier_stages"] == [first]
    assert second["tokens_seen_all_stages"] == first["tokens_seen"] + second["tokens_seen"]
    card = (tmp_path / "stage2" / "README.md").read_text(encoding="utf-8")
    assert f"| earlier stage 1 | {first['steps']} steps" in card
    assert f"| tokens seen, all stages | {second['tokens_seen_all_stages']:,} |" in card


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"steps": 3}'])
def test_an_unreadable_earlier_history_is_ignored(tmp_path, content):
    from tunelab.training.pretrain import earlier_stages

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pretrain_metrics.json").write_text(content)
    assert earlier_stages(str(tmp_path)) == []


def test_an_odd_nested_stage_is_dropped_and_the_rest_kept(tmp_path):
    from tunelab.training.pretrain import earlier_stages

    good = {"steps": 3, "tokens_seen": 384, "seconds": 1.5, "held_out_perplexity": None}
    odd = {"steps": 2, "tokens_seen": "many", "seconds": 1.0}
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pretrain_metrics.json").write_text(
        json.dumps({**good, "earlier_stages": [odd, good], "tokens_seen_all_stages": 768})
    )
    assert earlier_stages(str(tmp_path)) == [good, good]
