"""FLOPs per token against hand counts, the precision probe's choice and cache, and the
utilisation a run reports."""

from __future__ import annotations

import pytest

from tunelab.models import flops


def test_a_tiny_bert_classifier_matches_a_hand_count():
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, num_labels=3)  # fmt: skip
    model = BertForSequenceClassification(config)
    # per layer: query, key, value, output 4 x 32x32, feed-forward 32x64 + 64x32;
    # pooler 32x32, classifier 32x3; embeddings are lookups and cost nothing
    weights = 2 * (4 * 32 * 32 + 2 * 32 * 64) + 32 * 32 + 32 * 3
    assert flops.matmul_weights(model) == weights == 17_504
    # attention: 12 x layers x T x (heads x head size) at T = 10
    assert flops.training_flops_per_token(model, 10) == 6 * 17_504 + 12 * 2 * 10 * 32


def test_a_llama_with_grouped_query_attention_and_a_tied_head():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, intermediate_size=24,
                         tie_word_embeddings=True)  # fmt: skip
    model = LlamaForCausalLM(config)
    # q and o 16x16; k and v 16x8 (2 of 4 heads); gate, up, down 16x24; the head 16x50 runs
    # as a product even though its weight is the embedding table
    per_layer = 2 * 16 * 16 + 2 * 16 * 8 + 3 * 16 * 24
    assert flops.matmul_weights(model) == 2 * per_layer + 16 * 50
    assert flops.attention_width(config) == (2, 16)
    # trained on its answers' logits alone (a quarter of the tokens), the head runs a quarter
    assert flops.output_weights(model) == 16 * 50
    assert flops.training_flops_per_token(model, 10, output_share=0.25) == (
        6 * (2 * per_layer + 0.25 * 16 * 50) + 12 * 2 * 10 * 16
    )
    # frozen weights (LoRA's base) have no weight gradient: 4 a token, not 6
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    model.model.layers[0].mlp.down_proj.weight.requires_grad_(True)
    trained = 16 * 24
    assert flops.matmul_weights(model, trained=True) == trained
    assert flops.training_flops_per_token(model, 10, output_share=0.25) == (
        6 * trained + 4 * (2 * per_layer - trained + 0.25 * 16 * 50) + 12 * 2 * 10 * 16
    )


def test_bf16_is_chosen_only_where_the_probe_finds_it_faster(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path))
    timings = {False: 0.010, True: 0.018}  # bf16 slower, as on AVX512-BF16 without AMX
    calls = []

    def step_seconds(bf16: bool) -> float:
        calls.append(bf16)
        return timings[bf16]

    monkeypatch.setattr(flops, "_step_seconds", step_seconds)
    assert flops.cpu_trains_faster_in_bf16() is False
    measured = len(calls)
    assert flops.cpu_trains_faster_in_bf16() is False and len(calls) == measured  # cached

    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "amx"))
    timings.update({True: 0.003})
    assert flops.cpu_trains_faster_in_bf16() is True


def test_utilisation_is_achieved_over_peak(tmp_path, monkeypatch):
    from transformers import BertConfig, BertModel

    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path))
    monkeypatch.setattr(flops, "peak_flops", lambda precision, device="cpu": (1e12, "test"))
    model = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=64))  # fmt: skip
    found = flops.utilisation(model, tokens=10_000, seconds=2.0, sequence_length=10,
                              precision="fp32")  # fmt: skip
    per_token = flops.training_flops_per_token(model, 10)
    assert found["tokens_per_second"] == 5000
    assert found["mfu"] == pytest.approx(5000 * per_token / 1e12, abs=1e-4)


def test_a_run_faster_than_a_busy_machines_probe_raises_the_peak(tmp_path, monkeypatch):
    from transformers import BertConfig, BertModel

    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path))
    monkeypatch.setattr(flops, "PROBE_SECONDS", 0.05)
    model = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=64))  # fmt: skip
    measured, _ = flops.peak_flops("fp32")
    per_token = flops.training_flops_per_token(model, 10)
    tokens = 2 * measured / per_token  # twice the probe's rate for one second
    found = flops.utilisation(model, tokens=tokens, seconds=1.0, sequence_length=10,
                              precision="fp32")  # fmt: skip
    assert found["mfu"] == 1.0 and found["peak_source"].startswith("this run")
    assert flops.peak_flops("fp32")[0] == pytest.approx(2 * measured, rel=1e-6)  # kept


@pytest.mark.parametrize(
    ("count", "text"),
    [(6.5e10, "65 GFLOP"), (7e7, "70 MFLOP"), (1.234e6, "1.23 MFLOP"), (2.5e12, "2.5 TFLOP"),
     (512, "512 FLOP")],
)  # fmt: skip
def test_a_flop_count_is_written_in_the_unit_that_keeps_it_readable(count, text):
    # a 0.5M-weight scratch model's 3 MFLOP a token once read "0.00 GFLOP"
    assert flops.flops_text(count) == text


def test_machines_of_one_name_with_and_without_amx_are_cached_apart():
    # two virtual machines both called "Intel(R) Xeon(R) Processor": their peaks differ
    without = "model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu avx512f avx512_bf16\n"
    with_amx = without.replace("avx512_bf16", "avx512_bf16 amx_tile amx_bf16")
    assert flops.matrix_units(without) == " avx512_bf16"
    assert flops.matrix_units(with_amx) == " amx_bf16 avx512_bf16"
    assert flops.matrix_units("model name\t: an old CPU\nflags\t\t: fpu sse2\n") == ""


def test_the_load_others_add_is_the_load_average_beyond_this_process(monkeypatch):
    from tunelab.models import flops

    monkeypatch.setattr(flops.os, "getloadavg", lambda: (3.4, 1.0, 1.0), raising=False)
    assert flops.other_cpu_load(2) == pytest.approx(1.4)
    monkeypatch.setattr(flops.os, "getloadavg", lambda: (1.2, 1.0, 1.0), raising=False)
    assert flops.other_cpu_load(2) == 0.0  # a training run that did not fill its threads

    def no_load_average():
        raise OSError("no load average here")

    monkeypatch.setattr(flops.os, "getloadavg", no_load_average, raising=False)
    assert flops.other_cpu_load(2) is None
