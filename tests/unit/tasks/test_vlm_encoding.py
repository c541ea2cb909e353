"""A tiny SmolVLM (Idefics3) built in code, and chats with images encoded for it: the loss
falls on the assistant's words only, never on image tokens, prompts or markup."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import TWO_IMAGE_CHAT
from tunelab.errors import UserError
from tunelab.models.scratch_vlm import save_scratch_vlm
from tunelab.tasks.token_windows import IGNORE
from tunelab.tasks.vlm_encoding import encode_image_chat

CHAT = TWO_IMAGE_CHAT


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    out = save_scratch_vlm(["which is red", "the first", "yes", "sure"] * 30,
                           tmp_path_factory.mktemp("tiny-vlm"))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AutoProcessor.from_pretrained(out), AutoModelForImageTextToText.from_pretrained(out)


def pictures(folder: Path) -> list[str]:
    paths = []
    for name, colour in (("red", (200, 20, 20)), ("blue", (20, 20, 200))):
        Image.new("RGB", (20, 12), colour).save(folder / f"{name}.png")
        paths.append(str(folder / f"{name}.png"))
    return paths


def test_the_scratch_vlm_loads_as_smolvlm_and_expands_each_image(tiny_vlm, tmp_path) -> None:
    processor, model = tiny_vlm
    assert type(model).__name__ == "Idefics3ForConditionalGeneration"
    row = encode_image_chat(processor, CHAT, pictures(tmp_path), "chats.jsonl line 1")
    image_token = processor.tokenizer.convert_tokens_to_ids("<image>")
    # 32x32 pixels in 8x8 patches, shuffled by 2: 4 tokens per image, two images
    assert row["input_ids"].count(image_token) == 2 * 4 == 2 * processor.image_seq_len
    assert np.asarray(row["pixel_values"]).shape == (2, 3, 32, 32)


def test_labels_are_the_assistant_turns_only(tiny_vlm, tmp_path) -> None:
    processor, _ = tiny_vlm
    row = encode_image_chat(processor, CHAT, pictures(tmp_path), "chats.jsonl line 1")
    kept = [token for token in row["labels"] if token != IGNORE]
    assert processor.tokenizer.decode(kept) == "The first.<|im_end|>Yes.<|im_end|>"
    image_token = processor.tokenizer.convert_tokens_to_ids("<image>")
    for token, label in zip(row["input_ids"], row["labels"], strict=True):
        assert label in (IGNORE, token) and not (token == image_token and label != IGNORE)
    # the same tokens as the processor gives on its own
    text = processor.apply_chat_template(CHAT, tokenize=False)
    images = [Image.open(p).convert("RGB") for p in pictures(tmp_path)]
    assert row["input_ids"] == list(processor(text=[text], images=[images])["input_ids"][0])


def test_training_on_the_labels_learns_the_answers(tiny_vlm, tmp_path) -> None:
    import torch

    processor, model = tiny_vlm
    row = encode_image_chat(processor, CHAT, pictures(tmp_path), "chats.jsonl line 1")
    batch = {key: torch.tensor(np.asarray(value))[None] for key, value in row.items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss = model(**batch).loss
        first = first if first is not None else float(loss.detach())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert float(loss.detach()) < first / 4  # a random model memorises two short answers


def test_a_conversation_the_template_or_processor_refuses_is_one_line(tiny_vlm, tmp_path) -> None:
    processor, _ = tiny_vlm
    red, blue = pictures(tmp_path)
    in_system = [{"role": "system", "content": [{"type": "image"}]}, *CHAT[1:]]
    refused = r"^c\.jsonl line 3: the model's chat template refuses this conversation \(images go"
    with pytest.raises(UserError, match=refused):
        encode_image_chat(processor, in_system, [red, red, blue], "c.jsonl line 3")
    with pytest.raises(UserError, match=r"^c\.jsonl line 4: the processor cannot place the "):
        encode_image_chat(processor, CHAT, [red], "c.jsonl line 4")
    with pytest.raises(UserError, match="must be a multiple of patch_size 8"):
        save_scratch_vlm(["a"], tmp_path / "bad", image_size=36)


def test_a_batch_encodes_as_each_conversation_alone(tiny_vlm, tmp_path) -> None:
    from tunelab.tasks.vlm_encoding import encode_image_chats

    processor, _ = tiny_vlm
    red, blue = pictures(tmp_path)
    one = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "which?"}]},
           {"role": "assistant", "content": [{"type": "text", "text": "red"}]}]  # fmt: skip
    chats = [(CHAT, [red, blue], "c line 1"), (one, [blue], "c line 2")]
    batch = encode_image_chats(processor, chats)
    for together, (messages, images, where) in zip(batch, chats, strict=True):
        alone = encode_image_chat(processor, messages, images, where)
        assert together["input_ids"] == alone["input_ids"]
        assert together["labels"] == alone["labels"]
        count = len(images)  # the batch pads the image stack with empty images
        assert np.array_equal(np.asarray(together["pixel_values"])[:count],
                              np.asarray(alone["pixel_values"]))  # fmt: skip
    with pytest.raises(UserError, match=r"^c line 2: the processor cannot place the images"):
        encode_image_chats(processor, [(CHAT, [red, blue], "c line 1"), (one, [], "c line 2")])


def test_a_long_conversation_is_cut_to_max_length_but_never_inside_an_image(
    tiny_vlm, tmp_path
) -> None:
    processor, _ = tiny_vlm
    images = pictures(tmp_path)
    full = encode_image_chat(processor, CHAT, images, "c line 1")
    image_token = processor.tokenizer.convert_tokens_to_ids("<image>")
    last_image = max(i for i, token in enumerate(full["input_ids"]) if token == image_token)

    limit = last_image + 4  # past the images, before the end of the answers
    assert limit < len(full["input_ids"])
    cut = encode_image_chat(processor, CHAT, images, "c line 1", max_length=limit)
    for key in ("input_ids", "attention_mask", "labels"):
        assert list(cut[key]) == list(full[key])[:limit]
    assert np.array_equal(np.asarray(cut["pixel_values"]), np.asarray(full["pixel_values"]))

    inside = encode_image_chat(processor, CHAT, images, "c line 1", max_length=last_image - 2)
    kept = len(inside["input_ids"])
    assert last_image < kept < limit  # kept through the image's closing markup, not more
    assert inside["input_ids"].count(image_token) == full["input_ids"].count(image_token)
    assert inside["input_ids"] == full["input_ids"][:kept]
