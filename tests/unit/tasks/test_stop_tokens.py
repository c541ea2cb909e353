"""It stops when it should: the checks before a causal model trains, and the share of answers
that end with a stop token after it has."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import make_translations
from tunelab.errors import UserError
from tunelab.tasks.generation import CausalGeneration
from tunelab.tasks.stop_tokens import check_stop_tokens

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# the same turns without the end-of-turn token: answers simply stop in the text
NO_CLOSING = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
PLAIN_CLOSING = NO_CLOSING.replace("}}\n{% endfor", "}}</answer>\n{% endfor")


def _parts(tiny_llama: Path, template: str | None, packing: bool = True):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.chat_template = template
    task = CausalGeneration(settings={"packing": packing, "max_new_tokens": 8})
    frame = task.standardize(__import__("pandas").DataFrame(make_translations(8)))
    features = task.encode(frame, tokenizer, 64)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    return task, model, tokenizer, features


@pytest.mark.parametrize("packing", [True, False])
def test_a_good_template_passes_and_notes_the_token_the_base_model_lacks(tiny_llama, packing):
    task, model, tokenizer, features = _parts(tiny_llama, CHATML, packing)
    found = check_stop_tokens(
        model, tokenizer, task.stop_ids(tokenizer), features, task.collator(tokenizer)
    )
    # the tiny base model stops at <|endoftext|> only; the trained one will stop at both
    assert len(found) == 1 and "'<|im_end|>'" in found[0] and "generation_config" in found[0]


@pytest.mark.parametrize(
    ("template", "words"),
    [
        (NO_CLOSING, "writes nothing after an assistant answer"),
        (PLAIN_CLOSING, "closes assistant answers with '</answer>', which is not one special"),
    ],
)
def test_a_template_without_a_stop_token_is_an_error_naming_it(tiny_llama, template, words):
    task, model, tokenizer, features = _parts(tiny_llama, template)
    with pytest.raises(UserError, match=words) as error:
        check_stop_tokens(
            model, tokenizer, task.stop_ids(tokenizer), features, task.collator(tokenizer)
        )
    assert "generation.check_stop_tokens=false" in str(error.value)


def test_labels_masked_where_pad_is_eos_name_the_pad_token(tiny_llama):
    import torch

    task, model, tokenizer, features = _parts(tiny_llama, None, packing=False)
    tokenizer.pad_token = tokenizer.eos_token  # the usual shortcut

    def masks_padding(rows):  # what DataCollatorForLanguageModeling does: pad -> -100
        batch = task.collator(tokenizer)(rows)
        labels = batch["labels"].clone()
        labels[batch["input_ids"] == tokenizer.pad_token_id] = -100
        return {**batch, "labels": labels}

    stop = task.stop_ids(tokenizer)
    with pytest.raises(UserError, match=r"pad token '<\|endoftext\|>' \(id 2\) is a stop token"):
        check_stop_tokens(model, tokenizer, stop, features, masks_padding)
    # the task's own collator keeps the EOS label, whatever the pad token
    assert check_stop_tokens(model, tokenizer, stop, features, task.collator(tokenizer)) == []
    assert torch.tensor(features[0]["labels"])[-1] == tokenizer.eos_token_id


def test_with_the_check_off_a_broken_template_only_warns(tiny_llama, caplog):
    task, model, tokenizer, features = _parts(tiny_llama, NO_CLOSING)
    with caplog.at_level(logging.WARNING, logger="tunelab"):
        found = check_stop_tokens(
            model, tokenizer, task.stop_ids(tokenizer), features, task.collator(tokenizer),
            strict=False,
        )  # fmt: skip
    assert any("writes nothing" in f for f in found) and "writes nothing" in caplog.text


def test_eos_ending_share_counts_answers_that_stop_before_the_limit(tiny_llama):
    import pandas as pd

    task, model, tokenizer, _ = _parts(tiny_llama, CHATML, packing=False)
    frame = task.standardize(pd.DataFrame(make_translations(6)))
    eos = tokenizer.eos_token_id
    with pytest.MonkeyPatch.context() as patch:
        # the random tiny model never stops on its own: make it say EOS first on every row
        import torch

        bias = torch.full((model.config.vocab_size,), -1e4)
        bias[eos] = 1e4
        patch.setattr(model.lm_head, "bias", torch.nn.Parameter(bias), raising=False)
        stopped = task.forward(model, tokenizer, frame, 64, 4)
    model.lm_head.bias = None
    running = task.forward(model, tokenizer, frame, 64, 4)
    assert task.evaluate_outputs(stopped, frame)["eos_ending_share"] == 1.0
    assert task.evaluate_outputs(running, frame)["eos_ending_share"] == 0.0
    assert "run to max_new_tokens" in task.learning_warning(
        task.evaluate_outputs(running, frame), 6
    )
