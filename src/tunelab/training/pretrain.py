"""Masked- and causal-LM pretraining: from scratch (tokenizer first) or continued from a model.

Text is packed into full ``block_size`` rows (no padding), a share of the documents is
held out for perplexity, and the result is an ordinary Hugging Face model folder with a
model card.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from tunelab import collector
from tunelab.config import PretrainConfig, as_config, commented_yaml
from tunelab.data.corpus import joined_words, read_documents
from tunelab.errors import UserError
from tunelab.inference import resolve_precision
from tunelab.models.load import from_pretrained, resolve_model_source
from tunelab.models.scratch import new_bert_mlm, new_llama_clm, new_modernbert_mlm
from tunelab.models.tokenizer_training import byte_level_bpe_tokenizer, character_tokenizer
from tunelab.outputs import atomic_folder, claim_output, write_json, write_text
from tunelab.training.learning_rate import default_learning_rate
from tunelab.training.model_card import generate_samples, write_model_card
from tunelab.training.trainer import last_checkpoint, training_arguments

log = logging.getLogger("tunelab")

SIZES = {
    "tiny": {"layers": 2, "hidden": 128, "heads": 2},
    "mini": {"layers": 4, "hidden": 256, "heads": 4},
    "small": {"layers": 6, "hidden": 384, "heads": 6},
}


def held_out_split(documents: list[str], share: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded split of whole documents into (train, held-out)."""
    order = np.random.default_rng(seed).permutation(len(documents))
    size = round(share * len(documents)) if share > 0 else 0
    if share > 0 and size == 0 and len(documents) > 1:
        size = 1
    held = {int(i) for i in order[:size]}
    train = [d for i, d in enumerate(documents) if i not in held]
    return train, [documents[i] for i in sorted(held)]


def pack_blocks(
    documents: list[str], tokenizer: Any, block_size: int, objective: str, with_offsets: bool
) -> dict[str, list]:
    """Tokenize documents, join them end to end and cut the stream into full blocks.

    MLM documents carry the tokenizer's own [CLS]/[SEP]; CLM documents end with EOS so the
    model learns where a text stops. The last partial block is dropped.
    """
    encoded = tokenizer(
        documents,
        add_special_tokens=objective == "mlm",
        return_attention_mask=False,
        return_token_type_ids=False,
        return_offsets_mapping=with_offsets,
        verbose=False,
    )
    ids: list[int] = []
    offsets: list[tuple[int, int]] = []
    for i, row in enumerate(encoded["input_ids"]):
        ids.extend(row)
        if with_offsets:
            offsets.extend(tuple(o) for o in encoded["offset_mapping"][i])
        if objective == "clm":
            ids.append(tokenizer.eos_token_id)
            if with_offsets:
                offsets.append((0, 0))
    count = len(ids) // block_size
    blocks: dict[str, list] = {
        "input_ids": [ids[i * block_size : (i + 1) * block_size] for i in range(count)]
    }
    if with_offsets:
        blocks["offset_mapping"] = [
            offsets[i * block_size : (i + 1) * block_size] for i in range(count)
        ]
    return blocks


def _tokenizer_and_model(config: PretrainConfig, train_docs: list[str]) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer, set_seed

    arch = config.architecture
    set_seed(config.seed)
    if config.from_model:
        tokenizer = from_pretrained(AutoTokenizer, config.from_model)
        loader = AutoModelForMaskedLM if config.objective == "mlm" else AutoModelForCausalLM
        return tokenizer, from_pretrained(loader, config.from_model)
    if config.objective == "mlm":
        tokenizer = character_tokenizer(train_docs, config.min_char_count, arch.max_positions)
        builder = new_modernbert_mlm if arch.encoder == "modernbert" else new_bert_mlm
        model = builder(
            tokenizer, arch.layers, arch.hidden, arch.heads, arch.intermediate, arch.max_positions
        )
    else:
        tokenizer = byte_level_bpe_tokenizer(train_docs, config.vocab_size, arch.max_positions)
        model = new_llama_clm(
            tokenizer, arch.layers, arch.hidden, arch.heads, arch.intermediate, arch.max_positions
        )
    return tokenizer, model


def head_on_masked_positions_only(model: Any) -> bool:
    """Let a ModernBERT masked LM run its vocabulary head on the masked positions alone.

    The loss is the same (the other positions carry no label), and the head over the whole
    vocabulary at every position is a large share of a small model's compute. The switch is
    set on the model object, not its config, so the saved model still predicts every
    position (fill-mask). Returns whether the model has the switch (BERT has not).
    """
    if not isinstance(getattr(model, "sparse_prediction", None), bool):
        return False
    model.sparse_prediction = True
    return True


class FewMaskedCounts:
    """Wraps a masked-LM collator so that a batch's masked-position count takes few values.

    With the head on masked positions only, each new count is a new matrix shape, and the
    CPU's bf16 kernels cache one set of kernels per shape (measured over 80 steps of the
    starter's recipe: peak memory 5.9 GB against the plain Trainer's 3.4; 3.2 with this
    wrapper, `benchmarks/pretrain_speed.py`). Unmasking a few positions
    (at most 1/32 of them, restoring their tokens) makes the count a multiple of a power of
    two: a handful of shapes over a whole run.
    """

    def __init__(self, collator: Any, seed: int) -> None:
        import torch

        self.collator = collator
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        batch = self.collator(examples)
        labels, ids = batch["labels"].view(-1), batch["input_ids"].view(-1)
        masked = (labels != -100).nonzero().squeeze(1)
        step = 1 << max(0, (len(masked) // 32).bit_length() - 1)
        extra = len(masked) % step
        if extra:
            undo = masked[torch.randperm(len(masked), generator=self.generator)[:extra]]
            ids[undo] = labels[undo]
            labels[undo] = -100
        return batch


def _check(config: PretrainConfig, tokenizer: Any) -> None:
    if config.objective == "mlm" and tokenizer.mask_token is None:
        raise UserError(
            f"model {config.from_model} has no mask token, so it cannot do masked-LM "
            "pretraining; use --objective clm for causal models"
        )
    if config.whole_word_masking and (config.objective != "mlm" or not tokenizer.is_fast):
        raise UserError(
            "whole_word_masking needs --objective mlm and a fast tokenizer (for word offsets)"
        )


def earlier_stages(from_model: str | None) -> list[dict[str, Any]]:
    """The pretraining figures of the model a run continues, oldest stage first.

    Read from its ``pretrain_metrics.json``; empty for a model tunelab did not pretrain.
    """
    if not from_model:
        return []

    path = Path(resolve_model_source(from_model)) / "pretrain_metrics.json"
    try:
        figures = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    # A hand-edited or foreign file means no history, not a failed run: this is the one
    # check, so the totals and the model card written after training can trust each stage.
    if not _is_stage(figures):
        return []
    stages = figures.pop("earlier_stages", [])
    if not isinstance(stages, list):
        stages = []
    for key in ("samples", "tokens_seen_all_stages"):
        figures.pop(key, None)
    return [stage for stage in [*stages, figures] if _is_stage(stage)]


def _is_stage(record: Any) -> bool:
    """Whether ``record`` has the figures a model card row and the token total read."""

    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    return (
        isinstance(record, dict)
        and isinstance(record.get("steps"), int)
        and isinstance(record.get("tokens_seen"), int)
        and number(record.get("seconds"))
        and (record.get("held_out_perplexity") is None or number(record["held_out_perplexity"]))
    )


def checkpoint_dir(config: PretrainConfig) -> Path:
    """Checkpoints live under ``runs/`` so a model folder never fills with them."""
    return Path("runs") / "pretrain" / config.output.name / "checkpoints"


def pretrain(
    config: PretrainConfig | dict[str, Any] | str | Path,
    overrides: list[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    command: str | None = None,
) -> dict[str, Any]:
    """Pretrain (or continue pretraining) a language model as ``config`` describes.

    Args:
        config: a PretrainConfig, a dict of its keys, or a YAML file path.
        overrides: dotted ``key=value`` strings applied on top.
        resume: continue from the newest checkpoint.
        overwrite: replace an existing model folder at ``config.output``.
        command: the command line that ran this, for the model card.

    Returns:
        The figures written to the model card: sizes, steps, tokens, perplexity.
    """
    config = as_config(config, overrides or [], schema=PretrainConfig)
    output, checkpoints = config.output, checkpoint_dir(config)
    claim_output(
        output, ["config.json"], [checkpoints], resume, overwrite,
        refusal=f"{output} already holds a model; pass --overwrite to replace it or choose "
        "another --output",
    )  # fmt: skip
    documents = read_documents(config.data, config.text_column)
    if config.objective == "clm":
        documents = [joined_words(d) for d in documents]
    split_seed = config.seed if config.held_out_seed is None else config.held_out_seed
    train_docs, held_docs = held_out_split(documents, config.held_out, split_seed)
    started = time.time()
    stages = earlier_stages(config.from_model)  # read before training, not after it
    tokenizer, model = _tokenizer_and_model(config, train_docs)
    _check(config, tokenizer)
    if config.training.fast_dropout and not config.training.torch_compile:
        from tunelab.models.fast_dropout import fast_cpu_dropout

        fast_cpu_dropout(model)  # masks from SFC64 on the CPU; see training.fast_dropout
    collector.loaded()
    wwm = config.whole_word_masking
    train_blocks = pack_blocks(train_docs, tokenizer, config.block_size, config.objective, wwm)
    held_blocks = pack_blocks(held_docs, tokenizer, config.block_size, config.objective, wwm)
    if not train_blocks["input_ids"]:
        raise UserError(
            f"the pretraining text is shorter than one block of {config.block_size} tokens; "
            "give more text or a smaller block_size"
        )
    precision = resolve_precision(config.training.precision)
    trainer = _trainer(config, tokenizer, model, train_blocks, held_blocks, precision)
    result = trainer.train(resume_from_checkpoint=last_checkpoint(checkpoints) if resume else None)
    perplexity = math.exp(trainer.evaluate()["eval_loss"]) if held_blocks["input_ids"] else None
    steps = int(result.global_step)
    batch = config.training.batch_size * config.training.gradient_accumulation_steps
    figures = {
        "objective": config.objective,
        "architecture": type(trainer.model).__name__,
        "parameters": int(trainer.model.num_parameters()),
        "vocab_size": len(tokenizer),
        "documents": {"train": len(train_docs), "held_out": len(held_docs)},
        "characters": sum(len(d.replace(" ", "")) for d in documents),
        "train_tokens": len(train_blocks["input_ids"]) * config.block_size,
        "steps": steps,
        "tokens_seen": steps * batch * config.block_size,
        "held_out_perplexity": perplexity,
        "precision": precision,
        "seconds": round(time.time() - started, 1),
    }
    if stages:
        figures["earlier_stages"] = stages
        figures["tokens_seen_all_stages"] = figures["tokens_seen"] + sum(
            stage["tokens_seen"] for stage in stages
        )
    if config.objective == "clm":
        figures["samples"] = generate_samples(trainer.model, tokenizer)
    _save_model(config, trainer.model, tokenizer, figures, command)
    return figures


def _trainer(
    config: PretrainConfig,
    tokenizer: Any,
    model: Any,
    train_blocks: dict[str, list],
    held_blocks: dict[str, list],
    precision: str,
) -> Any:
    """The HF Trainer over packed blocks, with the masking collator for MLM."""
    from datasets import Dataset
    from transformers import DataCollatorForLanguageModeling, Trainer

    from tunelab.training.progress import plain_progress  # imports transformers

    masked_only = config.objective == "mlm" and head_on_masked_positions_only(model)
    has_held_out = bool(held_blocks["input_ids"])
    if config.training.learning_rate == "auto":  # pretraining: the rate of a model of its size
        config.training.learning_rate, _ = default_learning_rate(
            model.num_parameters(), scratch=config.from_model is None
        )
    args = training_arguments(
        config.training, checkpoint_dir(config), config.seed, precision,
        best_metric="loss" if has_held_out else None, greater_is_better=False,
        remove_unused_columns=False,  # the collator needs offset_mapping for whole words
        prediction_loss_only=True,  # perplexity needs the loss; logits: ~1 GB for the starter
    )  # fmt: skip
    collator = DataCollatorForLanguageModeling(
        tokenizer,
        mlm=config.objective == "mlm",
        mlm_probability=config.mlm_probability,
        whole_word_mask=config.whole_word_masking,
        seed=config.seed,
    )
    if masked_only:
        collator = FewMaskedCounts(collator, config.seed)
    log.info(
        "pretraining %s (%s, %.1fM parameters) on %d blocks of %d tokens, precision %s%s",
        type(model).__name__, config.objective, model.num_parameters() / 1e6,
        len(train_blocks["input_ids"]), config.block_size, precision,
        ", vocabulary head on masked positions only" if masked_only else "",
    )  # fmt: skip
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(train_blocks),
        eval_dataset=Dataset.from_dict(held_blocks) if has_held_out else None,
        processing_class=tokenizer,
        data_collator=collator,
    )
    plain_progress(trainer)  # lines instead of bars when the log is no terminal
    return trainer


def _save_model(
    config: PretrainConfig, model: Any, tokenizer: Any, figures: dict[str, Any], command: str | None
) -> None:
    """The model folder, atomically: weights, tokenizer, config, figures and model card."""
    with atomic_folder(config.output) as folder:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        write_text(folder / "pretrain.yaml", commented_yaml(config) + "\n")
        write_json(folder / "pretrain_metrics.json", figures)
        write_model_card(folder, config.output.name, config, figures, command)
