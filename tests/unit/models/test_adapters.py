import json
from pathlib import Path

import pytest
import torch

import tunelab
from tests.conftest import make_entities, make_translations, tiny_run_config
from tunelab.config import AdapterConfig
from tunelab.errors import UserError
from tunelab.models.adapters import head_modules, target_modules

ADAPTER_TRAINING = {"learning_rate": 1e-2}


def read_predictions(result: dict) -> list[dict]:
    text = (Path(result["output"]) / "predictions.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_lora_and_ia3_train_small_shares_and_reload_to_the_same_predictions(
    tiny_sentiment_body, reviews_csv, tmp_path
):
    from safetensors.torch import load_file

    base = load_file(tiny_sentiment_body / "model.safetensors")
    for method, share in (("lora", 0.2), ("ia3", 0.02)):
        config = tiny_run_config(
            tiny_sentiment_body, reviews_csv, tmp_path / method,
            peft={"method": method}, training=ADAPTER_TRAINING,
        )  # fmt: skip
        result = tunelab.train(config)
        train = result["metrics"]["train"]
        assert 0 < train["trainable_share"] < share
        assert result["metrics"]["test"]["accuracy"] >= 0.9
        model_dir = Path(result["model_dir"])
        assert (model_dir / "adapter_config.json").is_file()
        assert not (model_dir / "model.safetensors").exists()  # the adapter alone

        model, _, _, _ = tunelab.load_trained(model_dir)
        reloaded = model.get_base_model().bert.embeddings.word_embeddings.weight
        assert torch.equal(reloaded, base["embeddings.word_embeddings.weight"])  # base frozen
        saved = read_predictions(result)
        again = tunelab.predict(model_dir, texts=[r["text"] for r in saved])
        assert [r["label"] for r in again] == [r["label"] for r in saved]


def test_body_layers_the_checkpoint_lacks_are_saved_with_the_adapter(
    tiny_bert, reviews_csv, tmp_path
):
    # tiny_bert is saved from masked-LM training: it has no pooler, which the classifier
    # needs; left at a random frozen initialisation it would differ on every reload
    config = tiny_run_config(
        tiny_bert, reviews_csv, tmp_path / "run", peft={"method": "lora"},
        training={**ADAPTER_TRAINING, "max_steps": 2},
    )  # fmt: skip
    result = tunelab.train(config)
    saved = read_predictions(result)
    texts = [r["text"] for r in saved]
    reloads = []
    for seed in (1, 2):  # random starts for whatever the folder does not hold
        torch.manual_seed(seed)
        reloads.append(tunelab.predict(result["model_dir"], texts=texts))
    assert reloads[0] == reloads[1]
    for before, after in zip(saved, reloads[0], strict=True):
        for label, p in before["probabilities"].items():
            assert after["probabilities"][label] == pytest.approx(p, abs=2e-3)  # bf16 run


def test_merged_model_loads_without_peft_and_predicts_the_same(
    tiny_sentiment_body, reviews_csv, tmp_path
):
    from transformers import pipeline

    config = tiny_run_config(
        tiny_sentiment_body, reviews_csv, tmp_path / "run",
        peft={"method": "lora"}, training=ADAPTER_TRAINING,
    )  # fmt: skip
    result = tunelab.train(config)
    merged = Path(tunelab.merge(result["output"]))
    assert merged == tmp_path / "run" / "merged"
    assert (merged / "model.safetensors").is_file() and not (
        merged / "adapter_config.json"
    ).exists()

    texts = ["这个很好用", "质量太差了退货", "价格物流"]
    adapter = tunelab.predict(result["model_dir"], texts=texts)
    plain = pipeline("text-classification", model=str(merged), top_k=None)(texts)
    for ours, theirs in zip(adapter, plain, strict=True):
        scores = {entry["label"]: entry["score"] for entry in theirs}
        for label, p in ours["probabilities"].items():
            assert scores[label] == pytest.approx(p, abs=1e-5)
    with pytest.raises(UserError, match="holds full weights"):
        tunelab.merge(merged)


def test_lora_token_classification_saves_its_classifier(tiny_bert, tmp_path):
    from tests.unit.tasks.test_token_classification import write_jsonl

    train = write_jsonl(tmp_path / "train.jsonl", make_entities(200))
    config = tiny_run_config(tiny_bert, train, tmp_path / "run", peft={"method": "lora"})
    config["task"] = "token-classification"
    result = tunelab.train(config)
    saved = read_predictions(result)
    texts = [r["text"] for r in saved]
    expected = spans(saved)
    assert any(expected) and spans(tunelab.predict(result["model_dir"], texts=texts)) == expected
    assert spans(tunelab.predict(tunelab.merge(result["output"]), texts=texts)) == expected


def spans(records: list[dict]) -> list[list[tuple]]:
    return [[(e["start"], e["end"], e["label"]) for e in r["entities"]] for r in records]


@pytest.mark.parametrize(("method", "packing"), [("lora", True), ("prompt-tuning", False)])
def test_causal_lm_adapters_generate_the_same_after_reloading(
    tiny_llama, tmp_path, method, packing
):
    from tests.unit.tasks.test_generation import generation_config

    config = generation_config(
        tiny_llama, tmp_path, "causal-lm", make_translations(200),
        epochs=2, learning_rate=1e-2, batch_size=16,
    )  # fmt: skip
    config["generation"]["packing"] = packing
    config["peft"] = {"method": method, "num_virtual_tokens": 4}
    result = tunelab.train(config)
    assert result["metrics"]["train"]["trainable_share"] < 0.5
    saved = read_predictions(result)
    again = tunelab.predict(result["model_dir"], texts=[r["source"] for r in saved[:5]])
    assert [r["output"] for r in again] == [r["output"] for r in saved[:5]]


def test_lora_seq2seq_trains_and_reloads(tiny_t5, tmp_path):
    from tests.unit.tasks.test_generation import generation_config

    config = generation_config(
        tiny_t5, tmp_path, "seq2seq", make_translations(100), epochs=1, learning_rate=1e-2
    )
    config["peft"] = {"method": "lora"}
    result = tunelab.train(config)
    assert "chrf" in result["metrics"]["test"]
    saved = read_predictions(result)[:5]
    again = tunelab.predict(result["model_dir"], texts=[r["source"] for r in saved])
    assert [r["output"] for r in again] == [r["output"] for r in saved]


@pytest.mark.parametrize(
    ("task", "peft", "error"),
    [
        ("text-classification", {"method": "qlora"}, "needs a CUDA GPU"),
        ("token-classification", {"method": "prompt-tuning"}, "virtual tokens, which token-classi"),
        ("causal-lm", {"method": "prefix-tuning"}, "set generation.packing=false"),
    ],
)
def test_impossible_adapter_choices_fail_before_loading(
    tiny_bert, reviews_csv, tmp_path, task, peft, error
):
    if "qlora" in peft.values() and torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    config = tiny_run_config(tiny_bert, reviews_csv, tmp_path / "run", peft=peft)
    config["task"] = task
    with pytest.raises(UserError, match=error):
        tunelab.train(config)
    assert not (tmp_path / "run").exists()


def test_adapters_on_a_random_scratch_model_are_refused(reviews_csv, tmp_path):
    config = tiny_run_config("scratch-bert", reviews_csv, tmp_path / "run", peft={"method": "lora"})
    with pytest.raises(UserError, match=r"model\.name is scratch-bert"):
        tunelab.train(config)


def test_misnamed_target_modules_list_the_model_layers(tiny_bert):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    settings = AdapterConfig(method="lora", target_modules=["q_proj"])
    with pytest.raises(UserError, match=r"match no linear layer.*query.*value"):
        target_modules(model, settings, head_modules(model, "SEQ_CLS"))


def test_auto_targets_on_the_modernbert_starter_skip_the_head():
    import re

    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained("models/zh-bert-mini", num_labels=2)
    heads = head_modules(model, "SEQ_CLS")
    assert heads == ["head", "classifier"]
    names = [n for n, _ in model.named_modules()]

    def matched(pattern: str) -> set[str]:
        return {n for n in names if re.fullmatch(pattern, n)}

    lora = matched(target_modules(model, AdapterConfig(method="lora"), heads)["target_modules"])
    assert lora == {
        f"model.layers.{i}.{m}"
        for i in range(4)
        for m in ("attn.Wqkv", "attn.Wo", "mlp.Wi", "mlp.Wo")
    }
    ia3 = target_modules(model, AdapterConfig(method="ia3"), heads)
    assert matched(ia3["target_modules"]) == {
        f"model.layers.{i}.{m}" for i in range(4) for m in ("attn.Wqkv", "mlp.Wo")
    }
    assert matched(ia3["feedforward_modules"]) == {f"model.layers.{i}.mlp.Wo" for i in range(4)}


def test_merged_causal_model_generates_what_the_adapter_does(tiny_llama, tmp_path):
    """Merging keeps behaviour (LLaMA-Factory #3096 #3563 #6020, PEFT #1043): on held-out
    prompts the merged folder, loaded by plain transformers with its own generation_config,
    writes token for token what the adapter writes, and stops at the same tokens."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.models.trained import load_trained
    from tunelab.tasks.causal_encoding import prompt_ids

    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in make_translations(300)), "utf-8")
    config = tiny_run_config(tiny_llama, train, tmp_path / "run", peft={"method": "lora"},
                             training={"learning_rate": 1e-2, "epochs": 4})  # fmt: skip
    config["task"] = "causal-lm"
    config["generation"] = {"max_new_tokens": 16}
    result = tunelab.train(config)
    merged = Path(tunelab.merge(result["output"]))

    held_out = [r["source"] for r in make_translations(12, seed=99)]
    assert tunelab.predict(merged, texts=held_out) == tunelab.predict(
        result["model_dir"], texts=held_out
    )
    adapter, tokenizer, task, _ = load_trained(result["model_dir"])
    plain = AutoModelForCausalLM.from_pretrained(merged).eval()
    assert AutoTokenizer.from_pretrained(merged).chat_template == tokenizer.chat_template
    stops = task.stop_ids(tokenizer)
    assert sorted(plain.generation_config.eos_token_id) == sorted(stops)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    probe = torch.tensor([prompt_ids(tokenizer, None, held_out[0])])
    with torch.inference_mode():  # the adapter changed the model: the equality below is news
        assert not torch.allclose(adapter(probe).logits, base(probe).logits, atol=1e-2)
    for text in held_out:
        ids = torch.tensor([prompt_ids(tokenizer, None, text)])
        with torch.inference_mode():
            ours = adapter.generate(ids, max_new_tokens=16, do_sample=False, eos_token_id=stops)
            theirs = plain.generate(ids)  # the merged folder's own generation_config
            assert torch.allclose(adapter(ids).logits, plain(ids).logits, atol=1e-4)
        assert ours.tolist() == theirs.tolist()
