"""Image and text in, text out: fine-tune a vision-language model (SmolVLM/Idefics3, Qwen2-VL,
LLaVA, PaliGemma, ... through ``AutoModelForImageTextToText``) on chats with images.

Data is the chat JSONL (or JSON list) tunelab reads for text chat, with images in the turns
in any of the forms :mod:`tunelab.data.image_chats` reads (OpenAI content parts,
LLaMA-Factory/TRL ``images`` + ``<image>``, ShareGPT). Each conversation is rendered with the
model's own processor and chat template, the processor expands each image into its tokens
(the processor's resolution settings set how many), and the loss is on the assistant turns
only (:mod:`tunelab.tasks.vlm_encoding`). The model is chosen by validation loss and judged
on the test conversations' last answers, generated from the turns before them, by CER, exact
match and chrF (short answers, OCR); the report shows the worst answers with their first
image. The vision tower is frozen by default (``image.train_vision: true`` trains it too);
with ``--peft lora`` the adapters go on the language model's layers.

The image doctor examines every image of every conversation; a conversation longer than the
run's ``max_length`` (the 99th percentile of the training conversations' tokens unless set)
loses its last tokens but never part of an image; test answers are generated several
conversations at a time, left-padded. Packing is off (images cannot be packed across rows).
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from typing_extensions import Self

from tunelab.data.image_chats import read_image_chat
from tunelab.data.images import open_rgb
from tunelab.data.media import MEDIA_FOLDER
from tunelab.errors import UserError
from tunelab.evaluation.reading import character_errors
from tunelab.inference import Generations, autocast
from tunelab.models.catalog import VISION_CHAT
from tunelab.models.choice import SCRATCH_VLM
from tunelab.models.processor_settings import image_tokens_per_image
from tunelab.tasks.base import DataFit
from tunelab.tasks.file_classification import LABEL, PATH
from tunelab.tasks.image_classification import DOCTOR_INPUT_SIDE, model_input_side
from tunelab.tasks.image_to_text import ImageToText, decoding_settings
from tunelab.tasks.token_windows import IGNORE
from tunelab.tasks.vlm_encoding import (
    TOKEN_KEYS,
    encode_image_chats,
    rendered_chat,
    template_refusal_named,
)

log = logging.getLogger("tunelab")

CHAT = "chat"  # the standardised column: {"messages", "images"} as JSON
# conversations per generate call (benchmarks/vlm_generation.py)
GENERATION_BATCH = 8
MESSAGE_COLUMNS = ("messages", "conversations")


def _chat_json(chat: dict[str, Any]) -> str:
    """A conversation as the dataset stores it (an image's bytes as base64)."""
    images = [{"bytes": base64.b64encode(i).decode()} if isinstance(i, bytes) else i
              for i in chat["images"]]  # fmt: skip
    return json.dumps({"messages": chat["messages"], "images": images}, ensure_ascii=False)


def _chat_of(stored: str) -> dict[str, Any]:
    chat = json.loads(stored)
    chat["images"] = [base64.b64decode(i["bytes"]) if isinstance(i, dict) else i
                      for i in chat["images"]]  # fmt: skip
    return chat


def message_text(message: dict[str, Any]) -> str:
    """The text of a message in content-part form (its image parts left out)."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


def chat_texts(frame: pd.DataFrame) -> list[str]:
    """The text of every message of a standardised frame's conversations (a scratch
    model's tokenizer is trained on them)."""
    return [message_text(m) for stored in frame[CHAT] for m in _chat_of(stored)["messages"]]


def prompt_and_answer(
    messages: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], str | None]:
    """The turns to answer and the answer: a conversation ending with the assistant splits
    before that turn; one ending with the user is all prompt, with no answer."""
    if messages[-1]["role"] != "assistant":
        return messages, None
    return messages[:-1], message_text(messages[-1])


def images_before(messages: list[dict[str, Any]], images: list[Any]) -> list[Any]:
    """The images the turns ``messages`` hold: the first ones, in order."""
    count = sum(part.get("type") == "image" for m in messages for part in m["content"])
    return images[:count]


class ImageTextToText(ImageToText):
    """Answer in text to chats that hold images: a vision-language model."""

    name = "image-text-to-text"
    model_kind = VISION_CHAT
    search_batch_sizes = (2, 4, 8)

    def __init__(
        self, drop_invalid: bool = True, settings: dict[str, Any] | None = None,
        train_vision: bool = False, input_side: int = DOCTOR_INPUT_SIDE,
    ) -> None:  # fmt: skip
        super().__init__("image", "messages", False, drop_invalid, settings, input_side)
        self.train_vision = train_vision
        self.max_length: int | None = None  # training cuts longer conversations (encode)
        self._image_rows: dict[str, list[Any]] = {}  # per split: each image's conversation row

    @classmethod
    def from_run_config(cls, config: Any) -> Self:
        """Build from a :class:`tunelab.config.RunConfig`: decoding from ``generation``,
        whether the vision tower trains from ``image.train_vision`` (always for scratch-vlm,
        whose random tower has nothing to keep)."""
        train_vision = config.image.train_vision or config.model.name == SCRATCH_VLM
        return cls(config.data.drop_invalid, decoding_settings(config), train_vision,
                   model_input_side(config))  # fmt: skip

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], model_config: Any) -> Self:
        """Rebuild from the metadata a trained model carries in its ``config.json``."""
        return cls(settings=meta.get("settings"))

    # -- data ------------------------------------------------------------------------------

    def required_columns(self, with_labels: bool = True) -> dict[str, str]:
        return {CHAT: "data (a 'messages' column of chats with images)"}

    def recognise(self, frame: pd.DataFrame, given: frozenset[str]) -> DataFit | None:
        """Chats (a ``messages`` or ``conversations`` column) that hold images, as content
        parts or in an ``images`` column: strength 3, above text chat."""
        column = next((c for c in MESSAGE_COLUMNS if c in frame.columns), None)
        if column is None:
            return None
        if "images" in frame.columns and frame["images"].map(_has_items).any():
            return DataFit(3, f"chats in '{column}' with images in 'images'")
        if frame[column].iloc[:100].map(_has_image_part).any():
            return DataFit(3, f"chats in '{column}' with images in their messages")
        return None

    def standardize(self, frame: pd.DataFrame, with_labels: bool = True) -> pd.DataFrame:
        """Rows of ``chat`` (the conversation and its images, each image opened once and
        checked), ``path`` (its first image, for the image doctor and the report) and
        ``label`` (the last assistant answer).

        Raises:
            UserError: naming the row of a malformed conversation, a placeholder count that
                does not match its images, an image in a turn that cannot hold one, or a
                missing, remote, unreadable or outside image; or for a conversation without
                any image.
        """
        source = frame.attrs.get("source", "data")
        column = next((c for c in MESSAGE_COLUMNS if c in frame.columns), None)
        if column is None or frame.attrs.get("kind") == MEDIA_FOLDER:
            raise UserError(f"{source} has no 'messages' column; {self.name} reads chats with "
                            "images (JSONL with messages and images)")  # fmt: skip
        source_path = Path(str(source))
        base = source_path.parent if source_path.is_file() else Path.cwd()
        chats, paths, answers = [], [], []
        for row, record in frame.iterrows():
            values = {key: value for key, value in record.items() if _present(value)}
            values.setdefault("messages", values.pop("conversations", None))
            chat = read_image_chat(_plain(values), f"{source} row {row}", base,
                                   need_answer=with_labels,
                                   confine=frame.attrs.get("confine", True))  # fmt: skip
            if not chat["images"]:
                raise UserError(f"{source} row {row}: the conversation has no image; "
                                f"{self.name} trains on chats with images (text-only chats "
                                "train with task: causal-lm)")  # fmt: skip
            chats.append(_chat_json(chat))
            paths.append(chat["images"][0])
            answers.append(prompt_and_answer(chat["messages"])[1])
        shaped = pd.DataFrame({PATH: paths, CHAT: chats}, index=frame.index)
        if with_labels:
            shaped[LABEL] = answers
        shaped.attrs = {**frame.attrs, "columns": {PATH: "images", LABEL: column}}
        return shaped

    # -- the doctor ---------------------------------------------------------------------

    def image_frames(self, frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """Every image of the conversations, a row each, so that the doctor's duplicates,
        near duplicates, size outliers and leakage between splits cover them all (the
        report names them by their conversation's row: :meth:`diagnose`). An image file used
        again (two questions about one chart, in one conversation or several) is one row,
        under its first conversation: asking about it twice is no duplicate; in another
        split it is still leakage."""
        images = {}
        self._image_rows, self._image_uses = {}, {}
        for split, frame in frames.items():
            first: dict[Any, Any] = {}  # image (path or bytes) -> the row that first uses it
            uses = 0
            for row, stored in frame[CHAT].items():
                for image in _chat_of(stored)["images"]:
                    first.setdefault(image, row)
                    uses += 1
            self._image_rows[split] = list(first.values())
            self._image_uses[split] = uses
            images[split] = pd.DataFrame({PATH: list(first)})
            images[split].attrs = dict(frame.attrs)
        return images

    def diagnose(
        self, frames: dict[str, pd.DataFrame], find_label_errors: bool, seed: int
    ) -> dict[str, Any]:
        """As for image-to-text, over all the images of the conversations; ``rows`` counts
        conversations, ``images_read`` their images, and examples name a conversation's row."""
        report = super().diagnose(frames, find_label_errors, seed)
        for split, section in report.get("images", {}).items():
            _conversation_rows(section, self._image_rows[split])
            section["rows"] = len(frames[split])
            section["image_uses"] = self._image_uses[split]
        for key, section in report.get("leakage", {}).items():
            held = key.split("_in_")[0]
            if isinstance(section, dict) and held in self._image_rows:
                _conversation_rows(section, self._image_rows[held])
        return report

    def question_frame(
        self, images: list[str | bytes], questions: list[str], source: str = "--image/--text"
    ) -> pd.DataFrame:
        """Rows asking each question about its image (one image for every question, or one
        per question), as ``tunelab predict --image --text`` and ``tunelab serve`` give them:
        paths that may be anywhere (typed, not read from a data file), or the bytes of
        uploaded files.

        Raises:
            UserError: for counts that do not pair up, or an image that cannot be read.
        """
        if len(images) not in (1, len(questions)) or not questions:
            raise UserError(
                f"--image given {len(images)} times and --text {len(questions)} "
                "times; give one image for all questions, or one per question"
            )
        pairs = zip(images * len(questions) if len(images) == 1 else images, questions,
                    strict=True)  # fmt: skip
        rows = [{"messages": [{"role": "user", "content": [
            {"type": "image", "path": _image_source(image)},
            {"type": "text", "text": question}]}]} for image, question in pairs]  # fmt: skip
        frame = pd.DataFrame(rows)
        frame.index = pd.RangeIndex(1, len(frame) + 1)
        frame.attrs.update(source=source, confine=False)
        return self.standardize(frame, with_labels=False)

    # -- model and features ----------------------------------------------------------------

    def build_model(self, source: str, **load_kwargs: Any) -> Any:
        """The model, its vision tower frozen (and left out of LoRA's target modules) unless
        ``image.train_vision``."""
        model = super().build_model(source, **load_kwargs)
        tower = None if self.train_vision else _vision_tower(model)
        if tower is not None:
            tower.requires_grad_(False)
            # nor do adapters go there (peft.target_modules auto)
            model.tunelab_frozen_modules = [n for n, m in model.named_modules() if m is tower]
        return model

    def image_tokens(self, frame: pd.DataFrame, processor: Any) -> int | None:
        """Tokens the processor makes of the first row's first image (``image.processor``
        sets how many)."""
        first = _chat_of(frame[CHAT].iloc[0])["images"][0]
        return image_tokens_per_image(processor, open_rgb(first))

    # conversations have token lengths (text and image tokens): the run reports them and
    # chooses max_length from them, as for text
    has_token_lengths = True

    def token_lengths(self, frame: pd.DataFrame, processor: Any) -> np.ndarray:
        """Each conversation's tokens as the processor will make them, without opening its
        images: the rendered text's tokens, and for each image the tokens its placeholder
        grows by in the first training image (its image tokens and the markup around them;
        exact where the processor gives every image the same budget, as SmolVLM does; an
        estimate where it sizes each image apart, as Qwen2-VL does)."""
        source = frame.attrs.get("source", "data")
        texts, counts = [], []
        for row, stored in frame[CHAT].items():
            chat = _chat_of(stored)
            texts.append(rendered_chat(processor, chat["messages"], f"{source} row {row}")[0])
            counts.append(len(chat["images"]))
        grows = _placeholder_growth(processor, _chat_of(frame[CHAT].iloc[0])["images"][0])
        encoded = processor.tokenizer(texts, verbose=False)
        pairs = zip(encoded["input_ids"], counts, strict=True)
        return np.array([len(ids) + count * grows for ids, count in pairs])

    def encode(self, frame: pd.DataFrame, tokenizer: Any, max_length: int) -> Any:
        """A dataset of conversations that encodes (and opens the images of) each batch when
        it is read, cut to ``max_length`` tokens but never inside an image."""
        from datasets import Dataset

        self.max_length = max_length
        dataset = Dataset.from_dict({CHAT: frame[CHAT].tolist(),
                                     "where": [f"{frame.attrs.get('source', 'data')} row {r}"
                                               for r in frame.index]})  # fmt: skip
        dataset.set_transform(self.loader_transform(tokenizer, augment=False))
        return dataset

    def loader_transform(self, processor: Any, augment: bool) -> Any:
        """Conversations to the processor's inputs with ``labels`` on the assistant turns
        (ragged: the collator pads them)."""

        def transform(batch: dict[str, list[Any]]) -> dict[str, Any]:
            chats = [(chat["messages"], chat["images"], where) for chat, where in
                     zip(map(_chat_of, batch[CHAT]), batch["where"], strict=True)]  # fmt: skip
            # one processor call where it can
            rows = encode_image_chats(processor, chats, self.max_length)
            return {key: [row[key] for row in rows] for key in rows[0]}

        return transform

    def collator(self, tokenizer: Any) -> Any:
        """Pads the tokens (labels with -100) and gathers the images: Qwen2-VL-style patch
        rows (with ``image_grid_thw``) are concatenated, Idefics3-style image stacks are padded
        with empty images to the batch's most."""
        import torch

        pad = tokenizer.tokenizer.pad_token_id or 0

        def collate(rows: list[dict[str, Any]]) -> dict[str, Any]:
            width = max(len(row["input_ids"]) for row in rows)

            def padded(key: str, value: int) -> Any:
                return torch.tensor([list(row[key]) + [value] * (width - len(row[key]))
                                     for row in rows])  # fmt: skip

            # a value per token (Qwen2-VL's mm_token_type_ids too), padded; the rest are images
            fills = {"input_ids": pad, "labels": IGNORE}
            per_token = [key for key in rows[0] if key in TOKEN_KEYS]
            batch = {key: padded(key, fills.get(key, 0)) for key in per_token}
            image_keys = [key for key in rows[0] if key not in TOKEN_KEYS]
            if "image_grid_thw" in rows[0]:
                for key in image_keys:
                    batch[key] = torch.cat([torch.as_tensor(np.asarray(row[key])) for row in rows])
                return batch
            for key in image_keys:
                tensors = [torch.as_tensor(np.asarray(row[key])) for row in rows]
                most = max(t.shape[0] for t in tensors)
                batch[key] = torch.stack([
                    torch.cat([t, t.new_zeros((most - t.shape[0], *t.shape[1:]))]) for t in tensors
                ])  # fmt: skip
            return batch

        return collate

    def finish(self, model: Any, tokenizer: Any) -> None:
        """Store the decoding settings, and stop at the end of a turn as well as at EOS."""
        super().finish(model, tokenizer)
        ends = turn_end_ids(model, tokenizer)
        model.generation_config.eos_token_id = ends[0] if len(ends) == 1 else ends

    def forward(  # type: ignore[override]
        self, model: Any, tokenizer: Any, frame: pd.DataFrame, max_length: int,
        batch_size: int, precision: str = "fp32",
    ) -> Generations:  # fmt: skip
        """The last answer of every conversation, generated from the turns before it, up to
        ``GENERATION_BATCH`` conversations per call (fewer with a smaller ``batch_size``).

        Conversations are batched by how many images they ask about, then by prompt length,
        and padded on the left; a batch the processor cannot take together is generated one
        conversation at a time, so an error names its row.
        """
        import torch

        model.eval()
        source = frame.attrs.get("source", "data")
        stops = set(turn_end_ids(model, tokenizer))
        settings = {**self.generation_kwargs(tokenizer), "eos_token_id": sorted(stops)}
        requests = []
        for row, stored in frame[CHAT].items():
            chat = _chat_of(stored)
            prompt, _ = prompt_and_answer(chat["messages"])
            requests.append((prompt, images_before(prompt, chat["images"]), f"{source} row {row}"))

        def images_then_length(i: int) -> tuple[int, int]:
            return len(requests[i][1]), len(json.dumps(requests[i][0]))

        order = sorted(range(len(requests)), key=images_then_length)
        size = max(1, min(batch_size, GENERATION_BATCH))
        texts = [""] * len(requests)
        stopped = [False] * len(requests)
        with torch.inference_mode(), autocast(model, precision):
            for start in range(0, len(order), size):
                chunk = order[start : start + size]
                try:
                    groups = [(chunk, prompts_inputs(tokenizer, [requests[i] for i in chunk]))]
                except ValueError:  # e.g. a processor that cannot batch these images
                    groups = [([i], prompts_inputs(tokenizer, [requests[i]])) for i in chunk]
                for rows, inputs in groups:
                    inputs = {k: v.to(model.device) for k, v in inputs.items()}
                    width = inputs["input_ids"].shape[1]
                    generated = model.generate(**inputs, **settings)[:, width:]
                    for index, answer in zip(rows, generated, strict=True):
                        texts[index] = tokenizer.decode(answer, skip_special_tokens=True).strip()
                        stopped[index] = bool(stops & set(answer.tolist()))
        return Generations(texts, stopped)

    def predictions(self, outputs: list[str], frame: pd.DataFrame) -> list[dict[str, Any]]:  # type: ignore[override]
        records = []
        for i, (row, stored) in enumerate(frame[CHAT].items()):
            if i >= len(outputs):
                break
            chat = _chat_of(stored)
            prompt, answer = prompt_and_answer(chat["messages"])
            user = next((message_text(m) for m in reversed(prompt) if m["role"] == "user"), "")
            record: dict[str, Any] = {"path": self.file_name(frame[PATH][row], row),
                                      "prompt": user, "output": outputs[i]}  # fmt: skip
            if LABEL in frame.columns and answer is not None:
                record["reference"] = answer
                record["character_errors"] = character_errors(outputs[i], answer)
            records.append(record)
        return records

    def learning_warning(
        self, scores: dict[str, Any], examples: int, before: dict[str, Any] | None = None
    ) -> str | None:
        warning = super().learning_warning(scores, examples)
        return None if warning is None else warning.replace("learned to read", "learned to answer")


def _image_source(image: str | bytes) -> str:
    """An image as a content part names it: an absolute path, or a data URI of its bytes."""
    if isinstance(image, bytes):
        return "data:image/png;base64," + base64.b64encode(image).decode()
    return str(Path(image).resolve())


def prompt_inputs(processor: Any, prompt: list[dict[str, Any]], images: list[Any],
                  where: str) -> dict[str, Any]:  # fmt: skip
    """The processor's tensors for ``prompt`` ending in the assistant's turn opening."""
    return prompts_inputs(processor, [(prompt, images, where)])


def prompts_inputs(
    processor: Any, requests: list[tuple[list[dict[str, Any]], list[Any], str]]
) -> dict[str, Any]:
    """The processor's tensors for several prompts (messages, images, where), each ending in
    the assistant's turn opening, padded on the left so every answer starts right after its
    own prompt.

    Raises:
        UserError: when the chat template refuses a conversation (naming its ``where``).
        ValueError: from the processor, when it cannot take these images together.
    """
    from tunelab.data.images import open_rgb

    texts = []
    for prompt, _, where in requests:
        with template_refusal_named(where):
            texts.append(processor.apply_chat_template(prompt, tokenize=False,
                                                       add_generation_prompt=True))  # fmt: skip
    opened = [[open_rgb(image) for image in images] for _, images, _ in requests]
    padding = {"padding": True, "padding_side": "left"} if len(requests) > 1 else {}
    return dict(processor(text=texts, images=opened if any(opened) else None,
                          return_tensors="pt", **padding))  # fmt: skip


def _placeholder_growth(processor: Any, image: Any) -> int:
    """How many tokens the processor adds where one image's placeholder stands (0 for a
    processor without an image token)."""
    token = getattr(processor, "image_token", None)
    if token is None:
        return 0
    expanded = processor(text=[str(token)], images=[[open_rgb(image)]])["input_ids"][0]
    plain = processor.tokenizer([str(token)])["input_ids"][0]
    return max(len(expanded) - len(plain), 0)


def turn_end_ids(model: Any, processor: Any) -> list[int]:
    """EOS and the chat template's end-of-turn token, where the tokenizer has one."""
    tokenizer = processor.tokenizer
    ends = model.generation_config.eos_token_id
    found = set(ends if isinstance(ends, list) else [] if ends is None else [ends])
    for marker in ("<|im_end|>", "<end_of_utterance>", "<|eot_id|>", "<end_of_turn>"):
        token = tokenizer.convert_tokens_to_ids(marker)
        if isinstance(token, int) and token != tokenizer.unk_token_id and token >= 0:
            found.add(token)
    if tokenizer.eos_token_id is not None:
        found.add(tokenizer.eos_token_id)
    return sorted(found)


def _vision_tower(model: Any) -> Any:
    """The image encoder of a vision-language model, wherever its family keeps it."""
    inner = getattr(model, "model", model)
    for name in ("vision_model", "vision_tower", "visual", "vision_encoder"):
        tower = getattr(inner, name, None) or getattr(model, name, None)
        if tower is not None:
            return tower
    return None


def _conversation_rows(found: Any, rows: list[Any]) -> None:
    """Replace, in place, the doctor's image positions (``row``, ``rows``) in ``found`` with
    the rows of the conversations the images belong to."""
    if isinstance(found, dict):
        for key, value in found.items():
            if key == "row" and isinstance(value, int):
                found[key] = int(rows[value])
            elif key in ("rows", "empty_paths") and isinstance(value, list):
                found[key] = [int(rows[v]) for v in value]
            else:
                _conversation_rows(value, rows)
    elif isinstance(found, list):
        for value in found:
            _conversation_rows(value, rows)


def _present(value: Any) -> bool:
    if isinstance(value, (list, dict, np.ndarray)):
        return True
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _plain(value: Any) -> Any:
    """A row from pandas as plain JSON values (arrays become lists)."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _has_items(value: Any) -> bool:
    return isinstance(value, (list, np.ndarray)) and len(value) > 0


def _has_image_part(messages: Any) -> bool:
    if not isinstance(messages, (list, np.ndarray)):
        return False
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, (list, np.ndarray)) and any(
            isinstance(part, dict) and part.get("type") in ("image", "image_url")
            for part in content
        ):
            return True
    return False
