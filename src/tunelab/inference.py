"""Batched, length-sorted forward passes over tokenized inputs."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import numpy as np

from tunelab.allocator import freed_memory_kept
from tunelab.data.corpus import joined_words
from tunelab.errors import UserError

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 30.0  # a long generation says how far it is at most this often
# A decoder-only batch on a CPU holds at most this many tokens of prompt and answer room: 26
# glaive chats of up to 1,700 tokens in one batch took 132.6 s to answer, in length-sorted
# batches of 8 52.9 s (16: 68.9 s, 4: 72.8 s), as each step attends over the batch's
# longest context and runs until its slowest row stops; batches of short prompts keep
# their rows (64 rows of 100 tokens with 128 to write: 14,592)
CPU_GENERATION_TOKENS = 16384

PRECISIONS = ("auto", "checked", "bf16", "fp16", "fp32")
# A row is recomputed in fp32 when its decision margin is under this many times the largest
# logit change that bf16 made on the calibration rows (a margin's two logits can each move
# by that much, so 2 would be just enough; the rest is room for rows that drift more: on
# 1,744 SST-2 sentences the largest drift was 1.5-1.7 times the 64 calibration rows' largest;
# on unseen SMS spam 3.8 times, on unseen take-away reviews 1.5 times).
CHECK_SAFETY = 8.0
CHECK_FLOOR = 1e-3  # the least margin trusted, whatever the calibration measured
CHECK_ROWS = 64  # rows run in both precisions to measure the drift
CHECK_BATCH = 16  # their batch size: rows of all lengths, so small batches pad little
# Above this share of calibration rows close to a flip, every row runs in fp32 instead: the
# half-precision pass costs about half an fp32 one on CPUs with bf16 units, so re-running more
# than half the rows costs more than it saves (a tagger on tweets re-ran 61% of its windows).
CHECK_BREAK_EVEN = 0.5
_ROWS_NAME: ContextVar[str] = ContextVar("tunelab_rows_name", default="")


@contextlib.contextmanager
def naming_rows(name: str) -> Iterator[None]:
    """Inside, prediction's log lines say which rows they are about (``name``: a split)."""
    token = _ROWS_NAME.set(name)
    try:
        yield
    finally:
        _ROWS_NAME.reset(token)


def resolve_precision(requested: str) -> str:
    """Pick ``bf16``, ``fp16`` or ``fp32`` for this machine.

    ``auto`` means bf16 on GPUs that have it (fp16 on older ones); on a CPU, bf16 where it has
    bf16 instructions and a timed training-step probe (cached per machine) finds bf16 autocast
    faster than fp32, else fp32.
    """
    import torch

    from tunelab.models.flops import cpu_trains_faster_in_bf16

    if requested not in PRECISIONS:
        raise UserError(f"precision {requested!r} is not one of {', '.join(PRECISIONS)}: "
                        "pick one of them (auto: the fastest this machine has)")  # fmt: skip
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "fp32"
    return "bf16" if cpu_trains_faster_in_bf16() else "fp32"


def resolve_prediction_precision(requested: str, rows: int | None = None) -> str:
    """Pick the precision of a prediction pass: ``auto`` is ``checked`` (bf16 with the close
    calls recomputed in fp32: fp32's labels, faster) where bf16 is the faster choice on this
    machine, else fp32; other values as :func:`resolve_precision` reads them.

    ``rows``, when known: ``auto`` over at most :data:`CHECK_ROWS` rows is fp32 at once (a
    checked pass would run them all in fp32 anyway), without probing the machine.
    """
    if requested == "auto" and rows is not None and rows <= CHECK_ROWS:
        return "fp32"
    resolved = resolve_precision(requested)
    if requested == "auto":
        return "fp32" if resolved == "fp32" else "checked"
    return resolved


def top_two_gap(logits: np.ndarray) -> float:
    """How far an arg-max decision is from flipping: the least gap between a row's best and
    second-best logit (over all positions of a per-token row)."""
    if logits.shape[-1] < 2:
        return float("inf")
    top = np.partition(logits, -2, axis=-1)
    return float((top[..., -1] - top[..., -2]).min()) if top.size else float("inf")


def autocast(model: Any, precision: str) -> Any:
    """A context that runs ``model``'s forward pass in ``precision`` (no-op for fp32, and for
    ``checked`` where a task has no decision margin to check and so runs exact)."""
    import torch

    if precision in ("fp32", "checked"):
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
    margin: Callable[[np.ndarray], float] | None = None,
    unit: str = "rows",
) -> Any:
    """Run ``model`` over pre-tokenized rows and return its logits in the original row order.

    Rows are sorted by length so each batch pads to a similar length; dynamic padding
    then wastes little compute.

    Args:
        precision: ``fp32``, ``bf16``, ``fp16`` (autocast), or ``checked``: bf16, then fp32
            again for the rows whose decision ``margin`` is too close to trust (without a
            ``margin``, fp32).
        ragged: per-token logits: return a list of ``(row length, labels)`` arrays with the
            padding removed, instead of one stacked array.
        margin: how far one row's logits are from changing its decision (for ``checked``).
        unit: what the log line calls the inputs (``windows`` where long rows were cut).
    """
    import torch

    if precision == "checked":
        if margin is not None:
            return checked_forward(model, tokenizer, features, batch_size, margin, ragged, unit)
        precision = "fp32"
    ids = features["input_ids"]
    order = np.argsort([len(row) for row in ids], kind="stable")[::-1]
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in features]
    outputs: list[np.ndarray | None] = [None] * len(ids)
    model.eval()
    # on the CPU, batches of other lengths reuse the last one's memory (tunelab/allocator.py)
    kept = freed_memory_kept() if model.device.type == "cpu" else contextlib.nullcontext()
    with kept, torch.inference_mode(), autocast(model, precision):
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


def checked_forward(
    model: Any,
    tokenizer: Any,
    features: dict[str, list],
    batch_size: int,
    margin: Callable[[np.ndarray], float],
    ragged: bool = False,
    unit: str = "rows",
) -> Any:
    """Logits from a half-precision pass whose decisions are fp32's.

    :data:`CHECK_ROWS` rows spread over all lengths run in fp32 and in a bf16 copy of
    ``model`` (fp16 on GPUs without bf16), to measure how far half precision moves the logits
    here; then the copy runs the other rows, and every row whose ``margin`` is within
    :data:`CHECK_SAFETY` times that drift of a different decision runs again in fp32. Where
    more than :data:`CHECK_BREAK_EVEN` of the calibration rows were that close, the other
    rows run in fp32 alone: checking would cost more than it saves. The copy costs half the
    weights' memory for the length of the call.

    Returns what :func:`forward_in_batches` returns; the fp32 logits for the rows run twice.
    """
    import copy

    import torch

    lengths = [len(row) for row in features["input_ids"]]
    if len(lengths) <= CHECK_ROWS:  # all of them would measure the drift: fp32 alone is less
        return forward_in_batches(model, tokenizer, features, batch_size, "fp32", ragged)
    half = torch.bfloat16
    if model.device.type == "cuda" and not torch.cuda.is_bf16_supported():
        half = torch.float16

    def rows(indices: list[int]) -> dict[str, list]:
        return {name: [values[i] for i in indices] for name, values in features.items()}

    if all(weight.dtype == torch.float32 for weight in model.parameters()):
        # half-precision weights, not autocast: layer norms and softmax in bf16 too, and no
        # casts around each product (12% faster on a MiniLM); the drift check covers the rest
        fast_model, fast_precision = copy.deepcopy(model).to(half), "fp32"
    else:  # quantised or already half weights: no copy to make, autocast what is fp32
        fast_model, fast_precision = model, "bf16" if half == torch.bfloat16 else "fp16"
    by_length = np.argsort(lengths, kind="stable")
    spread = np.linspace(0, len(lengths) - 1, CHECK_ROWS).astype(int)
    probe = sorted({int(by_length[i]) for i in spread})
    rest = sorted(set(range(len(lengths))) - set(probe))
    exact = forward_in_batches(model, tokenizer, rows(probe), CHECK_BATCH, "fp32", ragged)
    fast = forward_in_batches(fast_model, tokenizer, rows(probe), CHECK_BATCH, fast_precision,
                              ragged)  # fmt: skip
    drift = max((float(np.abs(fast[j] - exact[j]).max(initial=0.0))
                 for j in range(len(probe))), default=0.0)  # fmt: skip
    limit = max(CHECK_SAFETY * drift, CHECK_FLOOR)
    # `not >=`, so a row with non-finite half-precision logits (NaN margin) runs again too
    probe_close = sum(not margin(row) >= limit for row in fast)
    outputs: list[Any] = [None] * len(lengths)
    for j, i in enumerate(probe):
        outputs[i] = exact[j]
    name = _ROWS_NAME.get()
    named = f" of the {name} rows" if name else ""
    if probe_close > CHECK_BREAK_EVEN * len(probe):
        # most rows would run twice (a tagger's window is close wherever one token is)
        del fast_model
        again = forward_in_batches(model, tokenizer, rows(rest), batch_size, "fp32", ragged)
        log.info("prediction%s in fp32, all %d %s: %d of the %d spread over all lengths came "
                 "within %.2g of a different decision in %s (drift %.2g), more than the %d%% "
                 "where running them twice is faster", named, len(lengths), unit, probe_close,
                 len(probe), limit, str(half).removeprefix("torch."), drift,
                 round(100 * CHECK_BREAK_EVEN))  # fmt: skip
    else:
        again = forward_in_batches(fast_model, tokenizer, rows(rest), batch_size, fast_precision,
                                   ragged)  # fmt: skip
        del fast_model
        close = [j for j, row in enumerate(again) if not margin(row) >= limit]
        if close:
            exact_close = forward_in_batches(model, tokenizer, rows([rest[j] for j in close]),
                                             batch_size, "fp32", ragged)  # fmt: skip
            for k, j in enumerate(close):
                again[j] = exact_close[k]
        log.info("prediction%s in %s, %d of %d %s in fp32 as well (%d spread over all lengths "
                 "to measure the drift, %.2g; %d within %.2g of a different decision)",
                 named, str(half).removeprefix("torch."), len(probe) + len(close),
                 len(lengths), unit, len(probe), drift, len(close), limit)  # fmt: skip
    for j, i in enumerate(rest):
        outputs[i] = again[j]
    return outputs if ragged else np.stack(outputs)


class Generations(list[str]):
    """Generated texts, in row order, and for each whether it ended with a stop token (EOS or
    end of turn) before the length limit; ``stopped`` is empty where nobody measured it."""

    def __init__(self, texts: list[str], stopped: list[bool] | None = None) -> None:
        super().__init__(texts)
        self.stopped = stopped or []


def length_chunks(
    lengths: list[int], order: Any, batch_size: int, budget: int | None, room: int = 0
) -> Iterator[tuple[int, Any]]:
    """Batches of ``order`` (row indices, longest first): ``batch_size`` rows at most, and
    with a ``budget`` of tokens no more rows than fit it at the batch's longest length plus
    ``room`` (the answer's; one row at least). Yields each batch with the rows before it."""
    start = 0
    while start < len(order):
        rows = batch_size
        if budget is not None:
            rows = min(rows, max(1, budget // (lengths[order[start]] + room)))
        yield start, order[start : start + rows]
        start += rows


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
    its own last token. On a CPU their batches hold at most :data:`CPU_GENERATION_TOKENS`
    of prompt and answer room (:func:`length_chunks`).
    """
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    backend = getattr(tokenizer, "backend_tokenizer", None)
    wordpiece = type(getattr(backend, "decoder", None)).__name__ == "WordPiece"
    lengths = [len(p) for p in prompts]
    order = np.argsort(lengths, kind="stable")[::-1]
    outputs: list[str] = [""] * len(prompts)
    stopped = [False] * len(prompts)
    stops = generation_kwargs.get("eos_token_id")
    stops = set(stops if isinstance(stops, list) else [] if stops is None else [stops])
    model.eval()
    budget = CPU_GENERATION_TOKENS if decoder_only and model.device.type == "cpu" else None
    room = int(generation_kwargs.get("max_new_tokens") or 0)
    started = said = time.monotonic()
    with torch.inference_mode(), autocast(model, precision):
        for start, chunk in length_chunks(lengths, order, batch_size, budget, room):
            now = time.monotonic()
            if start and now - said >= PROGRESS_SECONDS:  # longest first: an upper bound
                left = round((now - started) / start * (len(order) - start))
                log.info("generating: %d/%d rows, about %d:%02d left", start, len(order),
                         left // 60, left % 60)  # fmt: skip
                said = now
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
