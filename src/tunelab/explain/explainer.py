"""Explain a trained model's predictions: which tokens moved the score, and where it attended.

One explanation per text, as a JSON-able dict:
- ``text`` (as the model read it, after the run's text cleaning), ``tokens``, ``offsets``
  (each token's ``[start, end)`` in ``text``; ``None`` for special tokens) and ``special``;
- ``target`` (the explained label), ``predicted`` (the model's own choice), ``probability``
  (of ``target``), ``attributions`` (one per token; they add up to the probability at the
  text minus the probability at the baseline, up to ``delta``), ``delta``;
- for token classification, ``targets``: one such record per explained token, with its
  ``token_index`` (the top-level fields repeat the first);
- ``attention``: ``{layer, head, heads, layers, matrix}`` (``head`` ``None``: mean of heads).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.data.load import read_table, require_columns
from tunelab.errors import UserError
from tunelab.explain.attention import attention_map, eager_attention
from tunelab.explain.attributions import (
    baseline_ids,
    baseline_token,
    integrated_gradients,
    require_captum,
)
from tunelab.explain.occlusion import explain_files
from tunelab.models.trained import load_trained
from tunelab.tasks import TASKS
from tunelab.tasks.token_inputs import join_tokens, pre_tokenize
from tunelab.tasks.typed_rows import text_frame

log = logging.getLogger(__name__)

# Tokens of one text explained at most when every predicted entity token is explained.
MAX_TOKEN_TARGETS = 16


def explain(
    model_dir: str | Path,
    texts: list[str],
    steps: int = 32,
    target: str | None = None,
    layer: int = -1,
    head: int | None = None,
    parts: int | None = None,
) -> list[dict[str, Any]]:
    """Explain a trained model's predictions for ``texts`` (see :func:`explain_loaded`); for
    an image or audio classifier, ``texts`` are file paths, explained by occlusion in
    ``parts`` cells a side or segments (:func:`tunelab.explain.occlusion.explain_files`).

    Args:
        model_dir: a run folder or its ``model/`` folder (full weights or a PEFT adapter).
    """
    model, tokenizer, task, max_length = load_trained(model_dir)
    if task.explains == "occlusion":
        frame = media_frame(task, texts)
        return explain_files(model, tokenizer, task, frame, target, parts)
    require_captum()
    return explain_loaded(model, tokenizer, task, texts, steps, target, layer, head, max_length)


def media_frame(
    task: Any, paths: list[str] | None = None, input: str | Path | None = None,
    limit: int | None = None,
) -> pd.DataFrame:  # fmt: skip
    """The files an image or audio model explains: ``paths`` given one by one, or the first
    ``limit`` of ``input`` (a folder, a pattern, a table of paths or one file)."""
    if input is None:
        return text_frame(task, list(paths or []))
    frame = task.standardize(read_table(input, media=task.input_kind).fillna(""),
                             with_labels=False)  # fmt: skip
    return frame if limit is None else frame.iloc[:limit]


def explain_loaded(
    model: Any,
    tokenizer: Any,
    task: Any,
    texts: list[str],
    steps: int = 32,
    target: str | None = None,
    layer: int = -1,
    head: int | None = None,
    max_length: int = 512,
) -> list[dict[str, Any]]:
    """Token attributions (integrated gradients) and an attention map for each text.

    Args:
        model, tokenizer, task: as :func:`tunelab.api.load_trained` returns them.
        texts: the texts to explain.
        steps: integration steps (32 keeps ``delta`` small on the starters; raise if not).
        target: the label to explain instead of the predicted one. For token
            classification: a tag (explain the tokens predicted as it, or the token most
            likely to be it) or a token index (as in ``tokens``).
        layer: the attention layer shown (negative counts from the last).
        head: the attention head shown; ``None`` shows the mean of all heads.
        max_length: token limit; longer texts are cut.

    Returns:
        One explanation dict per text (see the module docstring).

    Raises:
        UserError: for a generation model, a sentence-pair model, a missing Captum, an
            unknown ``target``, or ``layer``/``head`` out of range.
    """
    import torch

    if task.explains is None:
        explained = " and ".join(name for name, kind in TASKS.items() if kind().explains)
        raise UserError(
            f"explanations exist for {explained} models, not for {task.name} models; for "
            "generation, compare outputs with tunelab predict, or read the samples in the "
            "run's report.html"
        )
    if task.text_pair_column:
        raise UserError(
            "this model classifies text pairs; explanations take single texts, so explain a "
            "single-text model"
        )
    if steps < 2:
        raise UserError(f"--steps {steps} is too few; give at least 2 (32 is a good default)")
    require_captum()
    model.eval()
    token_id, token_text = baseline_token(tokenizer)
    device = next(model.parameters()).device  # a model fresh from training may be on a GPU
    results = []
    with eager_attention(model), torch.enable_grad():
        for text in texts:
            inputs, record = _encode(task, tokenizer, text, max_length)
            inputs = {name: value.to(device) for name, value in inputs.items()}
            with torch.no_grad():
                outputs = model(**inputs, output_attentions=True)
            record["attention"] = attention_map(
                getattr(outputs, "attentions", None), layer, head, len(record["tokens"])
            )
            special = torch.tensor([record["special"]], device=device)
            baseline = baseline_ids(inputs["input_ids"], special, token_id)
            if task.explains == "text":
                record.update(_explain_text(model, task, inputs, baseline, outputs, target, steps))
            else:
                record.update(_explain_tokens(model, task, inputs, baseline, outputs, record,
                                              target, steps))  # fmt: skip
            record["baseline_token"] = token_text
            record["steps"] = steps
            results.append(record)
    return results


def _encode(task: Any, tokenizer: Any, text: str, max_length: int) -> tuple[dict, dict]:
    """Model inputs for one text, read the way the task reads it, and the token record."""
    fast = bool(getattr(tokenizer, "is_fast", False))
    options = {"truncation": True, "max_length": max_length, "return_tensors": "pt",
               "return_special_tokens_mask": True}  # fmt: skip
    if task.explains == "tokens":
        # the words the tagger was trained on, each tokenized on its own
        words, starts = pre_tokenize(text)
        encoded = tokenizer([words], is_split_into_words=True, return_offsets_mapping=fast,
                            **options)  # fmt: skip
        length = encoded["input_ids"].shape[-1]
        # a slow tokenizer gives no word ids: then every ordinary token counts as a word
        word_ids = encoded.word_ids(0) if fast else None
        base = [None if w is None else starts[w] for w in (word_ids or [None] * length)]
    else:
        text = task.clean_text(text)
        encoded = tokenizer(text, return_offsets_mapping=fast, **options)
        word_ids = None
        base = [0] * encoded["input_ids"].shape[-1]
    special = [bool(s) for s in encoded.pop("special_tokens_mask")[0].tolist()]
    spans = encoded.pop("offset_mapping", None)
    offsets: list[list[int] | None] = []
    for i, is_special in enumerate(special):
        if spans is None or is_special or base[i] is None:
            offsets.append(None)
        else:
            start, end = (int(v) for v in spans[0][i])
            offsets.append([base[i] + start, base[i] + end])
    ids = encoded["input_ids"][0].tolist()
    record = {
        "text": text,
        "task": task.name,
        "tokens": tokenizer.convert_ids_to_tokens(ids),
        "offsets": offsets,
        "special": special,
    }
    if word_ids is not None:
        record["word_ids"] = word_ids
    return dict(encoded), record


def _labels(model: Any) -> list[str]:
    id2label = model.config.id2label
    return [str(id2label[i]) for i in sorted(id2label)]


def _explain_text(
    model: Any, task: Any, inputs: dict, baseline: Any, outputs: Any, target: str | None,
    steps: int,
) -> dict[str, Any]:  # fmt: skip
    """The explained label of a text classifier and its attributions."""
    import torch

    logits = outputs.logits[0].float()
    if task.problem_type == "regression":
        if target not in (None, "value"):
            raise UserError(f"--target {target!r} does not apply: this model predicts a number")
        attributions, delta = integrated_gradients(
            model, inputs, baseline, lambda out: out[:, 0].float(), steps
        )
        value = round(float(logits[0]), 6)
        return {"target": "value", "predicted": value, "probability": None, "value": value,
                "attributions": attributions, "delta": delta}  # fmt: skip
    labels = _labels(model)
    multi = task.problem_type == "multi_label"
    probabilities = torch.sigmoid(logits) if multi else torch.softmax(logits, dim=-1)
    predicted = int(probabilities.argmax())
    index = _label_index(target, labels) if target is not None else predicted

    def score(out: Any) -> Any:
        out = out.float()
        return torch.sigmoid(out[:, index]) if multi else torch.softmax(out, dim=-1)[:, index]

    attributions, delta = integrated_gradients(model, inputs, baseline, score, steps)
    return {
        "target": labels[index],
        "predicted": labels[predicted],
        "probability": round(float(probabilities[index]), 6),
        "attributions": attributions,
        "delta": delta,
    }


def _label_index(target: str, labels: list[str]) -> int:
    if target not in labels:
        raise UserError(
            f"--target {target!r} is not a label of this model; give one of: {', '.join(labels)}"
        )
    return labels.index(target)


def _explain_tokens(
    model: Any, task: Any, inputs: dict, baseline: Any, outputs: Any, record: dict,
    target: str | None, steps: int,
) -> dict[str, Any]:  # fmt: skip
    """Attributions for the tagged tokens of one text (each word's first sub-token)."""
    import torch

    labels = _labels(model)
    probabilities = torch.softmax(outputs.logits[0].float(), dim=-1)
    predicted = probabilities.argmax(dim=-1).tolist()
    word_ids = record.get("word_ids") or [None if s else i for i, s in enumerate(record["special"])]
    firsts = [
        i for i, w in enumerate(word_ids) if w is not None and (i == 0 or word_ids[i - 1] != w)
    ]
    positions = _token_targets(target, labels, predicted, probabilities, firsts, record)
    explained = []
    for position, label in positions[:MAX_TOKEN_TARGETS]:

        def score(out: Any, position: int = position, label: int = label) -> Any:
            return torch.softmax(out.float()[:, position], dim=-1)[:, label]

        attributions, delta = integrated_gradients(model, inputs, baseline, score, steps)
        explained.append({
            "token_index": position,
            "token": record["tokens"][position],
            "target": labels[label],
            "predicted": labels[predicted[position]],
            "probability": round(float(probabilities[position, label]), 6),
            "attributions": attributions,
            "delta": delta,
        })  # fmt: skip
    if len(positions) > MAX_TOKEN_TARGETS:
        log.info("explained the first %d of %d tagged tokens", MAX_TOKEN_TARGETS, len(positions))
    first = explained[0] if explained else {}
    return {
        "target": first.get("target"),
        "predicted": [labels[predicted[i]] for i in firsts],
        "probability": first.get("probability"),
        "attributions": first.get("attributions"),
        "delta": first.get("delta"),
        "token_index": first.get("token_index"),
        "targets": explained,
    }


def _token_targets(
    target: str | None, labels: list[str], predicted: list[int], probabilities: Any,
    firsts: list[int], record: dict,
) -> list[tuple[int, int]]:  # fmt: skip
    """(token position, tag id) pairs to explain."""
    if target is not None and target.lstrip("-").isdigit():
        position = int(target)
        if not 0 <= position < len(record["tokens"]) or record["special"][position]:
            ordinary = [i for i, s in enumerate(record["special"]) if not s]
            raise UserError(
                f"--target {position} is not a token of this text; give a token index from "
                f"{ordinary[0]} to {ordinary[-1]} (see tokens in the JSON)"
                if ordinary
                else "--target: this text has no tokens to explain"
            )
        return [(position, predicted[position])]
    if target is not None:
        label = _label_index(target, labels)
        tagged = [(i, label) for i in firsts if predicted[i] == label]
        if tagged or not firsts:
            return tagged
        # nothing is tagged so: explain the token closest to being it
        return [(max(firsts, key=lambda i: float(probabilities[i, label])), label)]
    outside = labels.index("O") if "O" in labels else None
    return [(i, predicted[i]) for i in firsts if predicted[i] != outside]


def texts_from_file(
    path: str | Path, text_column: str = "text", encoding: str | None = None,
    limit: int | None = None,
) -> list[str]:  # fmt: skip
    """The texts of a data file (a text column; CoNLL/token-list rows are joined back).

    Raises:
        UserError: if the file has neither the text column nor a ``tokens`` column.
    """

    frame = read_table(path, encoding=encoding, max_rows=limit)
    if text_column not in frame.columns and "tokens" in frame.columns:
        return [join_tokens(list(tokens))[0] for tokens in frame["tokens"]]
    require_columns(frame, [text_column], {text_column: "--text-column"})
    return frame[text_column].fillna("").astype(str).tolist()


def top_tokens(
    explanation: dict[str, Any], attributions: list[float] | None = None, k: int = 5
) -> list[tuple[str, float]]:
    """The ``k`` ordinary tokens that raised the explained score most, with their values."""
    values = explanation["attributions"] if attributions is None else attributions
    ranked = sorted(
        (i for i, special in enumerate(explanation["special"]) if not special),
        key=lambda i: -values[i],
    )
    return [(explanation["tokens"][i], values[i]) for i in ranked[:k] if values[i] > 0]
