"""Training steps sized to the memory free: long chats through a decoder take fewer rows a
step and accumulate, so every update still sees the rows asked for; one row too big for
memory recomputes activations instead; and nothing changes where the step fits."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from tests.conftest import make_translations
from tunelab.models.memory import architecture_from_config, estimate_memory
from tunelab.training import step_memory
from tunelab.training.step_memory import HEADROOM, longest_step, plan_steps


@pytest.fixture
def smollm2_config():
    """SmolLM2-135M's shape: 30 layers, 576 wide, a 49,152-token vocabulary."""
    from transformers import LlamaConfig

    shape = {"num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3}
    return LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, **shape)


def peak(config, rows: int, width: int, **kwargs) -> int:
    arch = architecture_from_config(config)
    return estimate_memory(arch, rows, width, lm_head=True, **kwargs).peak


def test_the_longest_step_is_the_longest_rows_batched_as_the_collator_does():
    lengths = [100, 900, 300, 800, 50, 700]
    padded = longest_step(lengths, None, 3, packed_to=None)
    assert (padded.rows, padded.width, padded.predicted) == (3, 900, None)
    # packed into 1,000-token rows, first fit longest first: [900], [800], [700]
    assert longest_step(lengths, None, 3, packed_to=1000).rows == 3
    # four rows: 900+100? no, 100 is not among the four longest: [900], [800], [700, 300]
    four = longest_step(lengths, lambda rows: 10 * len(rows), 4, packed_to=1000)
    assert (four.rows, four.width, four.predicted) == (3, 1000, 40)


def test_a_step_too_big_halves_its_rows_and_accumulates(smollm2_config):
    lengths = [1700] * 64
    # room for 4 rows of 1,700 tokens, not 8
    free = int(peak(smollm2_config, 4, 1700) / HEADROOM) + 1
    plan = plan_steps(smollm2_config, lengths, None, 32, 1, free, lm_head=True)
    assert (plan.batch_size, plan.accumulation, plan.checkpointing) == (4, 8, False)
    assert plan.tokens == 4 * 1700 and plan.peak == peak(smollm2_config, 4, 1700)
    # asked to accumulate already: the updates keep their 64 rows
    assert plan_steps(smollm2_config, lengths, None, 32, 2, free, lm_head=True).accumulation == 16
    # plenty of memory: as asked
    roomy = plan_steps(smollm2_config, lengths, None, 32, 1, 10**13, lm_head=True)
    assert (roomy.batch_size, roomy.accumulation) == (32, 1)


def test_one_row_too_big_checkpoints_and_none_fits_at_all(smollm2_config):
    lengths = [8000] * 8
    alone = peak(smollm2_config, 1, 8000)
    checkpointed = peak(smollm2_config, 1, 8000, checkpointing=True)
    assert checkpointed < alone / 2  # each layer keeps its input alone
    free = int(checkpointed / HEADROOM) + 1
    plan = plan_steps(smollm2_config, lengths, None, 8, 1, free, lm_head=True)
    assert (plan.batch_size, plan.accumulation, plan.checkpointing) == (1, 8, True)
    assert plan_steps(smollm2_config, lengths, None, 8, 1, free // 4, lm_head=True) is None


def test_answer_logits_cost_less_than_every_position(smollm2_config):
    everything = peak(smollm2_config, 4, 1700)
    answers = peak(smollm2_config, 4, 1700, predicted=4 * 200)
    per_position = 49152 * 10  # fp32 log-probabilities and the logits' gradient
    assert everything - answers == pytest.approx(2 * (4 * 1700 - 800) * per_position, rel=0.01)


def test_a_run_short_of_memory_trains_fewer_rows_a_step_with_the_same_updates(
    tiny_llama, tmp_path, monkeypatch, caplog
):
    import tunelab
    from tests.unit.tasks.test_generation import generation_config

    # only 4 rows of a step fit: a step's cost is its rows
    monkeypatch.setattr(step_memory, "free_memory", lambda model: ("cpu", int(4.5e9 / HEADROOM)))

    class Rows:
        def __init__(self, rows: int) -> None:
            self.peak = rows * 10**9

    monkeypatch.setattr(step_memory, "estimate_memory", lambda arch, rows, *a, **k: Rows(rows))
    config = generation_config(tiny_llama, tmp_path, "causal-lm", make_translations(400),
                               epochs=1, batch_size=16)  # fmt: skip
    config["generation"]["packing"] = False
    with caplog.at_level(logging.INFO, logger="tunelab"):
        result = tunelab.train(config)
    assert "training 4 rows a step x 4 accumulated instead of 16 rows a step" in caplog.text
    assert "every update still sees 16 rows" in caplog.text
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert (report["step_memory"]["batch_size"], report["step_memory"]["accumulation"]) == (4, 4)
    rows = report["rows_after"]["train"]
    assert result["metrics"]["train"]["steps"] == -(-rows // 16)  # as many updates as asked
    assert "batch_size: 4" in (tmp_path / "run" / "config.yaml").read_text()


def test_checkpointing_is_turned_on_where_one_row_needs_it(tiny_llama, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.config import build_config
    from tunelab.tasks.generation import CausalGeneration

    class Cost:  # one row fits with checkpointing, two do not
        def __init__(self, rows: int, checkpointing: bool) -> None:
            self.peak = rows * (10**9 if checkpointing else 10**12)

    monkeypatch.setattr(step_memory, "free_memory", lambda model: ("cpu", 2 * 10**9))

    def cost(_: object, rows: int, *args: object, checkpointing: bool = False, **kw: object):
        return Cost(rows, checkpointing)

    monkeypatch.setattr(step_memory, "estimate_memory", cost)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    config = build_config({"task": "causal-lm", "training": {"batch_size": 8}})
    task = CausalGeneration(settings={"packing": False})  # a step's rows are its batch rows
    frame = task.standardize(pd.DataFrame(make_translations(20)))
    encoded = task.encode(frame, AutoTokenizer.from_pretrained(tiny_llama), 64)
    found = step_memory.fit_steps_to_memory(config, task, model, encoded, 64, "bf16")
    assert found["checkpointing"] and model.is_gradient_checkpointing
    assert (config.training.batch_size, config.training.gradient_accumulation_steps) == (1, 8)


def test_checkpointed_packed_rows_give_the_same_gradients(tiny_llama):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.tasks.generation import CausalGeneration

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    task = CausalGeneration()
    frame = task.standardize(pd.DataFrame(make_translations(6)))
    rows = task.encode(frame, tokenizer, 64)
    batch = task.collator(tokenizer)([rows[i] for i in range(len(rows))])
    assert batch["input_ids"].shape[0] < len(rows)  # rows packed together

    def gradients(checkpointing: bool) -> list:
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(tiny_llama)
        model.config.use_cache = False
        model.train()
        for module in model.modules():  # dropout off: the two passes must draw nothing
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        if checkpointing:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
            assert model.model.gradient_checkpointing
        model(**batch).loss.backward()
        return [p.grad for p in model.parameters() if p.grad is not None]

    plain, checkpointed = gradients(False), gradients(True)
    assert len(plain) == len(checkpointed) > 0
    for a, b in zip(plain, checkpointed, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
