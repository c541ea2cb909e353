"""The processor of an image-and-text model, loaded where torchvision is missing too.

Qwen2-VL, Qwen2.5-VL and other video-capable models ship a processor that holds a video
processor beside the image processor and the tokenizer. transformers builds video
processors only with torchvision, so without it ``AutoProcessor`` refuses the whole
processor, although its image processor has a Pillow backend and tunelab never feeds
videos. Where that happens, :class:`VisionProcessor` loads the same processor class without
its video part: the chat template, the tokenizer and the image processor are the
checkpoint's own, and ``save_pretrained`` writes the usual files under the usual class name,
so the saved folder loads anywhere (with torchvision, as the full processor).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from typing import Any

from tunelab.errors import UserError

logger = logging.getLogger("tunelab")

# files that name a checkpoint's processor class, in the order transformers reads them
_NAMING_FILES = ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json")
# what a loader may be given besides the source that also locates a hub file
_LOCATING = ("revision", "local_files_only", "cache_dir", "token")


class VisionProcessor:
    """``AutoProcessor`` with one fallback: a processor whose video part cannot load for lack
    of torchvision loads without it (see the module's docstring)."""

    @staticmethod
    def from_pretrained(source: str, **kwargs: Any) -> Any:
        """``AutoProcessor.from_pretrained(source, **kwargs)``, or the checkpoint's processor
        class without its video processor where torchvision is missing and that part is what
        failed."""
        from transformers import AutoProcessor

        try:
            return AutoProcessor.from_pretrained(source, **kwargs)
        except (OSError, ValueError, AttributeError, ImportError):
            image_only = _image_only_class(source, kwargs)
            if image_only is None:
                raise
        try:
            processor = image_only.from_pretrained(source, **kwargs)
        except (OSError, ValueError, AttributeError, ImportError, TypeError):
            # a class whose __init__ hands its video processor on by name (Gemma 4)
            raise UserError(
                f"the processor of {source} ({image_only.__name__}) holds a video processor, "
                "which transformers builds only with torchvision, and it cannot load without "
                "it; install torchvision (pip install torchvision, a build matching your torch)"
            ) from None
        logger.info(
            "the model's %s holds a video processor, which needs torchvision (not installed): "
            "loaded its tokenizer and image processor alone (images work, videos would not)",
            image_only.__name__,
        )
        return processor


def _image_only_class(source: str, kwargs: dict[str, Any]) -> type | None:
    """The checkpoint's processor class without its video processor, or None where
    torchvision is installed or the class takes no video processor."""
    import transformers
    from transformers.utils import is_torchvision_available

    if is_torchvision_available():
        return None
    name = _processor_class_name(source, {k: v for k, v in kwargs.items() if k in _LOCATING})
    processor_class = getattr(transformers, name, None) if name else None
    if processor_class is None:
        return None
    if "video_processor" not in inspect.signature(processor_class.__init__).parameters:
        return None
    return image_only_processor(processor_class)


@functools.cache
def image_only_processor(processor_class: type) -> type:
    """``processor_class`` with ``video_processor`` left out of its parts (one class per
    base, so instances compare alike); it keeps the base's name, which its saved files
    record."""

    class ImageOnly(processor_class):  # type: ignore[valid-type,misc]
        def __init__(
            self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None,
            **kwargs: Any,
        ) -> None:  # fmt: skip
            # transformers reads a processor's parts from its __init__'s parameter names
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template,
                             **kwargs)  # fmt: skip

    ImageOnly.__name__ = processor_class.__name__
    ImageOnly.__qualname__ = processor_class.__qualname__
    return ImageOnly


def _processor_class_name(source: str, locating: dict[str, Any]) -> str | None:
    """The ``processor_class`` a checkpoint's config files name, if any."""
    from transformers.utils import cached_file

    for filename in _NAMING_FILES:
        try:
            path = cached_file(source, filename, _raise_exceptions_for_missing_entries=False,
                               **locating)  # fmt: skip
        except OSError:
            path = None
        if not path:
            continue
        with open(path, encoding="utf-8") as handle:
            name = json.load(handle).get("processor_class")
        if name:
            return str(name)
    return None
