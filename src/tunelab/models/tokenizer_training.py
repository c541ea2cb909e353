"""Train tokenizers from text: a character WordPiece vocabulary (BERT-style Chinese, as
``bert-base-chinese`` has) and a byte-level BPE with a chat template (Llama-style)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

BERT_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CHAT_TOKENS = {"bos": "<|begin_of_text|>", "eos": "<|endoftext|>", "pad": "<|pad|>"}
TURN_START, TURN_END = "<|im_start|>", "<|im_end|>"
# ChatML turns; the {% generation %} markers let the tokenizer return the assistant-token
# mask that instruction tuning trains on.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}"
    "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}"
    "{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def character_vocab(texts: Iterable[str], min_count: int = 1, lower: bool = True) -> list[str]:
    """A WordPiece vocabulary of single characters seen at least ``min_count`` times
    (lower-cased unless ``lower`` is false: a reader of images must keep the case).

    Chinese characters are split off as words by BERT's pre-tokenizer, so they need only
    their own entry; other characters also get a ``##`` continuation entry so that words
    in Latin script or digits are spelled out character by character instead of [UNK].
    """
    counts = Counter(
        char.lower() if lower else char for text in texts for char in text if not char.isspace()
    )
    kept = sorted(char for char, count in counts.items() if count >= min_count)
    return [*BERT_SPECIAL_TOKENS, *kept, *(f"##{c}" for c in kept if not _is_cjk(c))]


def character_tokenizer(
    texts: Iterable[str], min_count: int = 1, model_max_length: int = 512, lower: bool = True
):
    """A fast BERT tokenizer over :func:`character_vocab` of ``texts``."""
    from transformers import BertTokenizer

    vocab = character_vocab(texts, min_count, lower)
    return BertTokenizer(
        vocab={token: index for index, token in enumerate(vocab)},
        do_lower_case=lower,
        tokenize_chinese_chars=True,
        model_max_length=model_max_length,
    )


def byte_level_bpe_tokenizer(
    texts: Iterable[str], vocab_size: int = 8000, model_max_length: int = 2048
) -> Any:
    """A byte-level BPE tokenizer trained on ``texts``, with ChatML special tokens and template.

    Byte-level means no input is ever unknown: any character falls back to its UTF-8 bytes.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [CHAT_TOKENS["pad"], CHAT_TOKENS["bos"], CHAT_TOKENS["eos"], TURN_START, TURN_END]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )

    def batches() -> Iterator[list[str]]:
        batch: list[str] = []
        for text in texts:
            batch.append(text)
            if len(batch) == 1000:
                yield batch
                batch = []
        if batch:
            yield batch

    backend.train_from_iterator(batches(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=CHAT_TOKENS["bos"],
        eos_token=CHAT_TOKENS["eos"],
        pad_token=CHAT_TOKENS["pad"],
        additional_special_tokens=[TURN_START, TURN_END],
        model_max_length=model_max_length,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
