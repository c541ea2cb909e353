"""Small randomly initialised BERT models with a character vocabulary built from data.

Used when no pretrained model is at hand (``model.name: scratch-bert``) and, at tiny
sizes, by the unit tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from tunelab.errors import UserError

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def character_vocab(texts: Iterable[str], min_count: int = 1) -> list[str]:
    """A WordPiece vocabulary of single characters seen at least ``min_count`` times.

    Chinese characters are split off as words by BERT's pre-tokenizer, so they need only
    their own entry; other characters also get a ``##`` continuation entry so that words
    in Latin script or digits are spelled out character by character instead of [UNK].
    """
    counts = Counter(char.lower() for text in texts for char in text if not char.isspace())
    vocab = list(SPECIAL_TOKENS)
    kept = sorted(char for char, count in counts.items() if count >= min_count)
    vocab.extend(kept)
    vocab.extend(f"##{char}" for char in kept if not _is_cjk(char))
    return vocab


def character_tokenizer(texts: Iterable[str], min_count: int = 1, model_max_length: int = 512):
    """A fast BERT tokenizer over :func:`character_vocab` of ``texts``."""
    from transformers import BertTokenizer

    vocab = character_vocab(texts, min_count)
    return BertTokenizer(
        vocab={token: index for index, token in enumerate(vocab)},
        do_lower_case=True,
        tokenize_chinese_chars=True,
        model_max_length=model_max_length,
    )


def save_scratch_bert(
    texts: Iterable[str],
    out_dir: Path,
    layers: int = 2,
    hidden: int = 128,
    heads: int = 2,
    min_count: int = 1,
    max_positions: int = 512,
    seed: int = 0,
) -> Path:
    """Write a randomly initialised BERT masked-LM and its character tokenizer to ``out_dir``.

    The folder is an ordinary Hugging Face model folder, so every loader treats it like a
    downloaded checkpoint.
    """
    import torch
    from transformers import BertConfig, BertForMaskedLM

    if hidden % heads:
        raise UserError(
            f"model.scratch.hidden ({hidden}) must be a multiple of model.scratch.heads ({heads})"
        )
    tokenizer = character_tokenizer(texts, min_count=min_count, model_max_length=max_positions)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden * 4,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = BertForMaskedLM(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
