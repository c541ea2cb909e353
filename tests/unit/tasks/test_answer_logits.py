"""Causal-LM logits at the answer tokens only: the same loss and gradients as transformers'
own, with the output layer run on the answers' positions alone."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tunelab.tasks.answer_logits import (  # noqa: E402
    answer_logits_trainer,
    answer_loss,
    answer_positions,
    answer_share,
)
from tunelab.tasks.generation import CausalGeneration  # noqa: E402
from tunelab.tasks.token_windows import IGNORE  # noqa: E402


def _labels() -> torch.Tensor:
    """Three rows of 7: answers in different places, the last row's first label set."""
    labels = torch.full((3, 7), IGNORE)
    labels[0, 4:] = torch.tensor([5, 6, 7])
    labels[1, 2:4] = torch.tensor([8, 9])
    labels[2, :3] = torch.tensor([1, 2, 3])
    return labels


@pytest.mark.parametrize("counted", [None, 9])
def test_the_loss_from_full_logits_is_transformers_causal_lm_loss(counted):
    from transformers.loss.loss_utils import ForCausalLMLoss

    torch.manual_seed(0)
    logits, labels = torch.randn(3, 7, 11), _labels()
    items = None if counted is None else torch.tensor(counted)
    expected = ForCausalLMLoss(logits, labels, vocab_size=11, num_items_in_batch=items)
    found = answer_loss({"logits": logits}, labels, num_items_in_batch=items)
    assert torch.allclose(found, expected)
    # the answers' rows alone, in row order, give the same
    alone = logits[answer_positions(labels)].unsqueeze(0)
    assert alone.shape == (1, 3 + 2 + 2, 11)  # row 2's first label is predicted by nothing
    assert torch.allclose(answer_loss({"logits": alone}, labels, items), expected)
    with pytest.raises(ValueError, match="match neither"):
        answer_loss({"logits": torch.randn(3, 9, 11)}, labels)


def _llama() -> transformers.LlamaForCausalLM:
    config = transformers.LlamaConfig(
        vocab_size=40, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).train()


@pytest.mark.parametrize("packed", [False, True])
def test_training_runs_the_output_layer_on_the_answers_with_the_same_loss_and_gradients(
    packed, tmp_path
):
    import copy

    from transformers import Trainer, TrainingArguments

    model = _llama()
    model.config.use_cache = False  # as CausalGeneration.build_model trains packed rows
    reference = copy.deepcopy(model)
    labels = _labels()
    inputs = {"input_ids": torch.randint(3, 40, (3, 7)), "labels": labels}
    if packed:  # positions restarting mid-row, no mask, as tunelab's PackingCollator gives
        inputs["position_ids"] = torch.tensor([[0, 1, 2, 0, 1, 2, 3]] * 3)
    else:
        inputs["attention_mask"] = torch.ones(3, 7, dtype=torch.long)
    shapes = []
    model.lm_head.register_forward_hook(lambda module, args, out: shapes.append(out.shape))
    trainer = answer_logits_trainer(Trainer)(
        model=model, compute_loss_func=answer_loss,
        args=TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True),
    )  # fmt: skip
    items = torch.tensor(int((labels != IGNORE).sum()))
    found = trainer.compute_loss(model, dict(inputs), num_items_in_batch=items)
    expected = reference(**inputs, num_items_in_batch=items).loss
    assert shapes == [(1, 7, 40)]  # logits at the 7 answer positions of 21
    assert torch.allclose(found, expected, atol=1e-6)
    found.backward()
    expected.backward()
    for (name, a), (_, b) in zip(reference.named_parameters(), model.named_parameters(),
                                 strict=True):  # fmt: skip
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name
    assert not model.lm_head._forward_pre_hooks  # the selection is gone after the step


def test_the_answer_share_counts_label_positions_after_each_rows_first():
    from datasets import Dataset

    rows = Dataset.from_dict({"labels": [[IGNORE, 5, 6], [IGNORE, IGNORE, 7, 8], [3, 4], []]})
    assert answer_share(rows) == pytest.approx(5 / 9)
    assert answer_share(rows.select([1, 2])) == pytest.approx(3 / 6)
    assert answer_share(Dataset.from_dict({"input_ids": [[1, 2]]})) == 1.0


def test_prompt_learning_adapters_keep_the_full_logits(tiny_llama):
    import pandas as pd
    import peft
    from transformers import AutoModelForCausalLM, AutoTokenizer

    task = CausalGeneration()
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    frame = task.standardize(pd.DataFrame({"prompt": ["red cat"], "completion": ["红猫"]}))
    train = task.encode(frame, tokenizer, 64)
    setup = task.trainer_setup(model, tokenizer, None, train, None)
    assert setup.trainer_class.__name__ == "AnswerLogitsTrainer"
    assert setup.inputs["compute_loss_func"] is answer_loss
    prompted = peft.get_peft_model(
        model, peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4)
    )
    setup = task.trainer_setup(prompted, tokenizer, None, train, None)
    assert setup.trainer_class.__name__ == "Trainer"
    assert setup.inputs["compute_loss_func"] is None
