"""Batched, length-sorted forward passes over tokenized inputs."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from tunelab.allocator import keep_freed_memory
from tunelab.data.corpus import joined_words


def resolve_precision(requested: str) -> str:
    """Pick ``bf16``, ``fp16`` or ``fp32`` for this machine.

    ``auto`` means bf16 on GPUs that have it (fp16 on older ones); on a CPU, bf16 where it has
    bf16 instructions and a timed training-step probe (cached per machine) finds bf16 autocast
    faster than fp32, else fp32.
    """
    import torch

    from tunelab.models.flops import cpu_trains_faster_in_bf16

    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "fp32"
    return "bf16" if cpu_trains_faster_in_bf16() else "fp32"


def autocast(model: Any, precision: str) -> Any:
    """A context that runs ``model``'s forward pass in ``precision`` (no-op for fp32)."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=model.device.type, dtype=dtype)


def forward_in_batches(
    model: Any,
    tokenizer: Any,
    features: dict[str, list],
    batch_size: int = 64,
    precision: str = "fp32",
    ragged: bool = False,
) -> Any:
    """Run ``model`` over pre-tokenized rows and return its logits in the original row order.

    Rows are sorted by length so each batch pads to a similar length; dynamic padding
    then wastes little compute.

    Args:
        ragged: per-token logits: return a list of ``(row length, labels)`` arrays with the
            padding removed, instead of one stacked array.
    """
    import torch

    if model.device.type == "cpu":
        keep_freed_memory()  # batches of other lengths reuse the last one's memory
    ids = features["input_ids"]
    order = np.argsort([len(row) for row in ids], kind="stable")[::-1]
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in features]
    outputs: list[np.ndarray | None] = [None] * len(ids)
    model.eval()
    with torch.inference_mode(), autocast(model, precision):
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = tokenizer.pad(
                [{name: features[name][i] for name in names} for i in chunk], return_tensors="pt"
            )
            batch = {key: value.to(model.device) for key, value in batch.items()}
            logits = model(**batch).logits.float().cpu().numpy()
            for row, index in enumerate(chunk):
                if ragged:  # drop the padding positions, wherever the tokenizer puts them
                    keep = batch["attention_mask"][row].cpu().numpy().astype(bool)
                    outputs[index] = logits[row][keep]
                else:
                    outputs[index] = logits[row]
    if ragged:
        return outputs
    return np.stack(outputs) if outputs else np.zeros((0, model.config.num_labels), np.float32)


class Generations(list[str]):
    """Generated texts, in row order, and for each whether it ended with a stop token (EOS or
    end of turn) before the length limit; ``stopped`` is empty where nobody measured it."""

    def __init__(self, texts: list[str], stopped: list[bool] | None = None) -> None:
        super().__init__(texts)
        self.stopped = stopped or []


def generate_in_batches(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    batch_size: int,
    precision: str,
    generation_kwargs: dict[str, Any],
    decoder_only: bool,
) -> Generations:
    """Generate for token-id prompts in length-sorted batches; return only the new text, and
    for every row whether it ended with one of ``generation_kwargs["eos_token_id"]``.

    Decoder-only prompts are padded on the left, so every row's answer starts right after
    its own last token.
    """
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    backend = getattr(tokenizer, "backend_tokenizer", None)
    wordpiece = type(getattr(backend, "decoder", None)).__name__ == "WordPiece"
    order = np.argsort([len(p) for p in prompts], kind="stable")[::-1]
    outputs: list[str] = [""] * len(prompts)
    stopped = [False] * len(prompts)
    stops = generation_kwargs.get("eos_token_id")
    stops = set(stops if isinstance(stops, list) else [] if stops is None else [stops])
    model.eval()
    with torch.inference_mode(), autocast(model, precision):
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(prompts[i]) for i in chunk)
            ids, mask = [], []
            for i in chunk:
                fill = [pad] * (width - len(prompts[i]))
                ones = [1] * len(prompts[i])
                ids.append(fill + prompts[i] if decoder_only else prompts[i] + fill)
                mask.append([0] * len(fill) + ones if decoder_only else ones + [0] * len(fill))
            input_ids = torch.tensor(ids, device=model.device)
            attention_mask = torch.tensor(mask, device=model.device)
            generated = model.generate(
                input_ids=input_ids, attention_mask=attention_mask, **generation_kwargs
            )
            if decoder_only:
                generated = generated[:, width:]
            texts = tokenizer.batch_decode(generated, skip_special_tokens=True)
            if wordpiece:  # WordPiece decoders put a space between every two CJK characters
                texts = [joined_words(text) for text in texts]
            for row, index in enumerate(chunk):
                outputs[index] = texts[row].strip()
                # generation stops a row at its first stop token (padding follows it); an
                # encoder-decoder's output starts with its decoder start token (BART: EOS)
                new = generated[row].tolist()[0 if decoder_only else 1 :]
                stopped[index] = bool(stops & set(new))
    return Generations(outputs, stopped)
