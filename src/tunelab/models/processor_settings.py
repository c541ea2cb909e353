"""The image-token budget of a vision model's processor, set from the run config.

How many tokens an image becomes is the processor's setting, and each family names it its
own way: Qwen2-VL ``min_pixels``/``max_pixels``, SmolVLM/Idefics3 ``do_image_splitting`` and
``size: {longest_edge}`` (each tile is ``image_seq_len`` tokens), LLaVA-NeXT
``image_grid_pinpoints``, TrOCR/ViT ``size``. ``image.processor`` passes such settings to the
processor as it loads (so its own ``__init__`` derives what follows from them), and the run
folder saves the processor with them, so prediction and serving use the same budget.
"""

from __future__ import annotations

from typing import Any

from tunelab.errors import UserError

# what an image processor's declared keyword arguments hold besides settings of its own
_NOT_SETTINGS = frozenset({"return_tensors", "data_format", "input_data_format", "device"})


def _parts(processor: Any) -> list[Any]:
    """The objects a setting can belong to: the image processor first, then the processor."""
    return [part for part in (getattr(processor, "image_processor", None), processor) if part]


def check_processor_settings(processor: Any, settings: dict[str, Any]) -> None:
    """Refuse a setting the loaded processor does not have (transformers ignores unknown
    keyword arguments silently, so a misspelt ``max_pixel`` would change nothing).

    Raises:
        UserError: naming the key and the image settings the processor has.
    """
    parts = _parts(processor)
    for key in settings:
        if not any(hasattr(part, key) or key in _declared(part) for part in parts):
            simple = (int, float, bool, dict, list)
            held = {name for name, value in vars(parts[0]).items()
                    if not name.startswith("_") and isinstance(value, simple)}  # fmt: skip
            known = sorted(held | (_declared(parts[0]) - _NOT_SETTINGS))
            raise UserError(
                f"image.processor: '{key}' is not a setting of this model's "
                f"{type(parts[0]).__name__}; its settings include {', '.join(known[:30])}"
            )


def _declared(part: Any) -> frozenset[str]:
    """The settings a transformers 5 image processor declares it takes (its ``valid_kwargs``
    TypedDict): some it folds into others as it loads, as Qwen2-VL's ``min_pixels`` and
    ``max_pixels`` into ``size``, so no attribute of that name remains."""
    declared = getattr(part, "valid_kwargs", None)
    keys = getattr(declared, "__required_keys__", frozenset()) | getattr(
        declared, "__optional_keys__", frozenset()
    )
    return frozenset(keys)


def image_tokens_per_image(processor: Any, image: Any) -> int | None:
    """How many image tokens the processor turns ``image`` (an opened PIL image) into, every
    tile counted, the markup around them not; ``None`` for a processor without an image token
    (an encoder-decoder reader, whose image never enters the token sequence)."""
    token = getattr(processor, "image_token", None)
    token_id = getattr(processor, "image_token_id", None)
    if token is None or token_id is None:
        return None
    encoded = processor(text=[str(token)], images=[[image]])
    return int(sum(1 for value in encoded["input_ids"][0] if value == token_id))
