"""A vision-language model built in code: SmolVLM's architecture (Idefics3) at toy size.

Tests and the offline examples need a VLM that loads the way a published one does: through
``AutoModelForImageTextToText`` and ``AutoProcessor``, with a processor that expands each
``<image>`` of the chat template into the image's tokens. SmolVLM/Idefics3 is the family that
needs nothing beyond transformers and Pillow (Qwen2-VL's processor holds a video part that
wants torchvision, which :mod:`tunelab.models.vision_processor` leaves out where it is missing),
so the scratch model is an ``Idefics3ForConditionalGeneration``: a SigLIP-style vision
encoder, a pixel-shuffle connector (``scale_factor``) and a Llama decoder, under a byte-level
BPE tokenizer trained on the given texts, with a ChatML template that takes images in user
turns only (an image elsewhere raises, as some published templates do).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tunelab.errors import UserError

IMAGE_TOKENS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"]

VLM_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}"
    "{% if message['role'] != 'user' %}"
    "{{ raise_exception('images go in user turns only, not in a ' + message['role'] + ' turn') }}"
    "{% endif %}{{ '<image>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def save_scratch_vlm(
    texts: Iterable[str],
    out_dir: Path,
    image_size: int = 32,
    patch_size: int = 8,
    scale_factor: int = 2,
    layers: int = 2,
    hidden: int = 64,
    heads: int = 2,
    vision_layers: int = 2,
    vision_hidden: int = 64,
    vocab_size: int = 400,
    seed: int = 0,
) -> Path:
    """Write a randomly initialised Idefics3 (SmolVLM) model and its processor to ``out_dir``.

    Each image is resized to ``image_size`` square pixels, cut into ``patch_size`` patches
    and shuffled down by ``scale_factor``: ``(image_size / patch_size)^2 / scale_factor^2``
    image tokens per image (the processor's ``image_seq_len``).

    Raises:
        UserError: when the patches do not tile the image or the connector cannot shuffle them.
    """
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import (
        Idefics3ImageProcessorPil,
    )

    from tunelab.models.tokenizer_training import byte_level_bpe_tokenizer

    grid = image_size // patch_size
    if image_size % patch_size or grid % scale_factor:
        raise UserError(f"image_size {image_size} must be a multiple of patch_size {patch_size} "
                        f"times scale_factor {scale_factor}")  # fmt: skip
    tokenizer = byte_level_bpe_tokenizer(texts, vocab_size=vocab_size)
    tokenizer.add_tokens(IMAGE_TOKENS, special_tokens=True)
    tokenizer.chat_template = VLM_CHAT_TEMPLATE
    images = Idefics3ImageProcessorPil(
        do_image_splitting=False, size={"longest_edge": image_size},
        max_image_size={"longest_edge": image_size},
    )  # fmt: skip
    processor = Idefics3Processor(images, tokenizer, image_seq_len=(grid // scale_factor) ** 2,
                                  chat_template=VLM_CHAT_TEMPLATE)  # fmt: skip
    config = Idefics3Config(
        vision_config={"hidden_size": vision_hidden, "intermediate_size": 2 * vision_hidden,
                       "num_hidden_layers": vision_layers, "num_attention_heads": heads,
                       "image_size": image_size, "patch_size": patch_size},
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": hidden,
                     "intermediate_size": 2 * hidden, "num_hidden_layers": layers,
                     "num_attention_heads": heads, "num_key_value_heads": heads,
                     "max_position_embeddings": 1024, "tie_word_embeddings": True,
                     "bos_token_id": tokenizer.bos_token_id,
                     "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
        scale_factor=scale_factor,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    return _save_new_vlm(Idefics3ForConditionalGeneration, config, processor, out_dir, seed)


def _save_new_vlm(model_class: Any, config: Any, processor: Any, out_dir: Path, seed: int) -> Path:
    """A randomly initialised ``model_class`` of ``config`` that ends an answer at the
    tokenizer's end of text or ChatML's ``<|im_end|>``, saved with ``processor``."""
    import torch

    torch.manual_seed(seed)
    model = model_class(config)
    tokenizer = processor.tokenizer
    turn_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, turn_end]
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


QWEN_VISION_TOKENS = ["<|vision_start|>", "<|image_pad|>", "<|vision_end|>", "<|video_pad|>"]


def save_scratch_qwen2_vl(
    texts: Iterable[str],
    out_dir: Path,
    min_pixels: int = 16 * 16,
    max_pixels: int = 32 * 32,
    patch_size: int = 4,
    layers: int = 2,
    hidden: int = 32,
    seed: int = 0,
) -> Path:
    """Write a randomly initialised Qwen2-VL and its processor to ``out_dir``, saved as a
    published one is: a byte-level BPE tokenizer with Qwen's vision tokens, the ChatML
    template putting ``<|vision_start|><|image_pad|><|vision_end|>`` where an image goes, and
    the Pillow image processor, which keeps each image near its own size between
    ``min_pixels`` and ``max_pixels`` in ``patch_size`` patches merged 2x2. The processor is
    built without its video part (:mod:`tunelab.models.vision_processor`), so this works
    without torchvision; with it, the folder loads as the full processor."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    from tunelab.models.tokenizer_training import byte_level_bpe_tokenizer
    from tunelab.models.vision_processor import image_only_processor

    template = VLM_CHAT_TEMPLATE.replace("'<image>'", "'" + "".join(QWEN_VISION_TOKENS[:3]) + "'")
    tokenizer = byte_level_bpe_tokenizer(texts, vocab_size=400)
    tokenizer.add_tokens(QWEN_VISION_TOKENS, special_tokens=True)
    tokenizer.chat_template = template
    images = Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels,
                                      patch_size=patch_size, merge_size=2,
                                      temporal_patch_size=2)  # fmt: skip
    processor = image_only_processor(Qwen2VLProcessor)(images, tokenizer, chat_template=template)
    start, image, end, video = (tokenizer.convert_tokens_to_ids(t) for t in QWEN_VISION_TOKENS)
    heads = max(1, hidden // 16)  # 16 wide heads: mrope_section covers half of 16
    config = Qwen2VLConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": hidden,
                     "intermediate_size": 2 * hidden, "num_hidden_layers": layers,
                     "num_attention_heads": heads, "num_key_value_heads": 1,
                     "rope_scaling": {"type": "mrope", "mrope_section": [2, 2, 4]},
                     "bos_token_id": tokenizer.bos_token_id,
                     "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id, "tie_word_embeddings": True},
        vision_config={"depth": 1, "embed_dim": hidden, "hidden_size": hidden,
                       "num_heads": heads, "patch_size": patch_size, "spatial_merge_size": 2,
                       "temporal_patch_size": 2},
        image_token_id=image, vision_start_token_id=start, vision_end_token_id=end,
        video_token_id=video, tie_word_embeddings=True,
    )  # fmt: skip
    return _save_new_vlm(Qwen2VLForConditionalGeneration, config, processor, out_dir, seed)
