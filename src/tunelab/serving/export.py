"""Export a trained classifier (of texts, images or audio), tagger or sentence encoder to ONNX
(optionally int8) and check it against PyTorch on sample inputs; what the graph computes is
the task's ``onnx_graph``."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import random
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.api import load_trained, text_frame
from tunelab.errors import UserError
from tunelab.models.adapters import is_adapter_folder, merged_model
from tunelab.models.trained import model_folder
from tunelab.outputs import atomic_folder, write_json
from tunelab.serving.model_folder import require_extra
from tunelab.serving.onnx_model import EXPORT_INFO, FILES, OnnxModel
from tunelab.tasks import TASKS
from tunelab.tasks.base import OnnxGraph

log = logging.getLogger("tunelab")

DECISIONS = ("label", "labels", "tags")  # the record keys that hold what the model decided
EXTERNAL_DATA_BYTES = 1 << 30  # ONNX protobufs stop at 2 GB; larger weights go beside them


def export_onnx(
    model_dir: str | Path,
    output: str | Path | None = None,
    quantize: str | None = None,
    samples: int = 256,
) -> dict[str, Any]:
    """Write an ONNX model (and an int8 one) that ``tunelab serve --backend onnx`` serves.

    The folder also gets the tokenizer, ``config.json`` (labels, tunelab metadata), the model
    card and ``export.json``, which records the parity check: on up to ``samples`` texts (the
    run's test predictions if present, else generated ones) the share of rows whose predicted
    labels agree with PyTorch and the largest absolute logit difference (for a sentence
    encoder, whose graph outputs the sentence embedding: the largest absolute difference of
    the vectors).

    Args:
        model_dir: a run folder or its ``model/`` folder.
        output: the export folder (default ``<model folder>/onnx``).
        quantize: ``None`` or ``"int8"`` (ONNX Runtime dynamic quantization, written beside
            the fp32 model and chosen for serving).

    Returns:
        ``{"output": folder, "files": {...}, "serve": variant, "parity": {variant: {...}}}``.

    Raises:
        UserError: for generation models, an unknown ``quantize`` or a missing ``onnx``
            extra.
    """
    if quantize not in (None, "int8"):
        raise UserError(f"--quantize {quantize} is not supported; use int8 or leave it out")
    require_extra("onnx")

    folder = model_folder(model_dir)
    model, tokenizer, task, max_length = load_trained(folder, device="cpu")  # ONNX Runtime: CPU
    graph = task.onnx_graph
    if "onnx" not in task.exportable or graph is None:
        covered = ", ".join(name for name, kind in TASKS.items() if "onnx" in kind().exportable)
        why = (
            f"whose inputs are {task.input_kind} files, not covered yet"
            if task.input_kind != "text"
            else "which generates text token by token"
        )
        raise UserError(
            f"ONNX export covers {covered} models; this is a {task.name} model, {why}: serve it "
            "with tunelab serve --backend torch or run tunelab predict"
        )
    if is_adapter_folder(folder):
        model = merged_model(model)  # one plain graph, no PEFT wrappers
    model.eval()
    frame, sample_source = _sample_frame(folder, task, tokenizer, samples)
    target = Path(output) if output is not None else folder / "onnx"
    started = time.time()
    large = sum(p.numel() * p.element_size() for p in model.parameters()) > EXTERNAL_DATA_BYTES
    log.info("exporting %s to ONNX with torch.export (dynamo); this takes a minute", folder)
    with atomic_folder(target) as tmp:
        _export_graph(
            graph, model, tokenizer, frame, task.text_column, max_length, tmp / FILES["fp32"],
            large,
        )  # fmt: skip
        files = {"fp32": FILES["fp32"]}
        if quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            # its advice to pre-process first fails on dynamo graphs (symbolic shapes)
            with _quiet():
                quantize_dynamic(
                    tmp / FILES["fp32"], tmp / FILES["int8"], weight_type=QuantType.QInt8,
                    use_external_data_format=large,
                )  # fmt: skip
            files["int8"] = FILES["int8"]
        model.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name in ("README.md", "tunelab.yaml"):
            if (folder / name).is_file():
                shutil.copy(folder / name, tmp / name)
        reference = task.forward(model, tokenizer, frame, max_length, 64)
        parity = {}
        for variant, name in files.items():
            exported = graph.runner(OnnxModel(tmp / name, model.config), tokenizer)
            outputs = task.forward(exported, tokenizer, frame, max_length, 64)
            parity[variant] = _parity(task, frame, reference, outputs)
        info = {
            "format": "onnx",
            "task": task.name,
            "files": files,
            "serve": "int8" if quantize == "int8" else "fp32",
            "sizes_mb": {v: round((tmp / n).stat().st_size / 2**20, 2) for v, n in files.items()},
            "samples": {"rows": len(frame), "source": sample_source},
            "parity": parity,
            "seconds": round(time.time() - started, 1),
        }
        write_json(tmp / EXPORT_INFO, info)
    return {"output": str(target), **info}


def _export_graph(
    graph: OnnxGraph, model: Any, tokenizer: Any, frame: pd.DataFrame, text_column: str,
    max_length: int, path: Path, large: bool,
) -> None:  # fmt: skip
    """Trace the model with the dynamo exporter; the dimensions the task's example names
    (batch, sequence length) stay dynamic.

    The TorchScript exporter bakes the attention-mask shortcuts of transformers 5 into the
    graph (logits off by 1e-2 on BERT); ``torch.export`` keeps them exact.
    """
    import torch

    inputs, dynamic = graph.example(tokenizer, frame, text_column, max_length)
    # an axis named None keeps its size (a spectrogram's frames)
    dims = {name: torch.export.Dim(name) for axes in dynamic.values() for name in axes if name}
    names = list(inputs)
    with _quiet():
        torch.onnx.export(
            graph.module(model).eval(),
            tuple(inputs[name] for name in names),
            str(path),
            input_names=names,
            output_names=[graph.output],
            dynamic_shapes={
                name: {i: dims[axis] for i, axis in enumerate(dynamic[name]) if axis}
                for name in names
            },
            dynamo=True,
            external_data=large,
            verbose=False,
        )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' warnings about optional packages and deprecated internals."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def _sample_frame(
    folder: Path, task: Any, tokenizer: Any, samples: int
) -> tuple[pd.DataFrame, str]:
    """Texts to compare PyTorch and ONNX on: the run's test predictions, else generated."""

    if task.input_kind in ("image", "audio"):
        return _sample_media(folder, task, samples)
    pair_model = bool(task.text_pair_column)
    predictions = folder.parent / "predictions.jsonl"
    if folder.name == "model" and predictions.is_file():
        with predictions.open(encoding="utf-8") as lines:
            records = [json.loads(line) for _, line in zip(range(samples), lines, strict=False)]
        if records and "text" in records[0] and (not pair_model or "text_pair" in records[0]):
            pairs = [r["text_pair"] for r in records] if pair_model else None
            return text_frame(task, [r["text"] for r in records], pairs), str(predictions)
    # random strings of the model's own vocabulary: every token is one the model knows
    rng = random.Random(0)
    special = set(tokenizer.all_special_ids)
    vocabulary = [i for i in range(len(tokenizer)) if i not in special]

    def text() -> str:
        return tokenizer.decode(rng.choices(vocabulary, k=rng.randint(4, 48))).strip() or "样例"

    texts = [text() for _ in range(samples)]
    pairs = [text() for _ in range(samples)] if pair_model else None
    return text_frame(task, texts, pairs), "generated"


def _sample_media(folder: Path, task: Any, samples: int) -> tuple[pd.DataFrame, str]:
    """Images or clips to compare PyTorch and ONNX on: the run's test files while they are
    still on disk, else generated ones (noise images; tones of random pitch and length)."""
    predictions = folder.parent / "predictions.jsonl"
    if folder.name == "model" and predictions.is_file():
        with predictions.open(encoding="utf-8") as lines:
            records = [json.loads(line) for _, line in zip(range(samples), lines, strict=False)]
        paths = [str(r.get("path")) for r in records if Path(str(r.get("path"))).is_file()]
        if paths:
            # named as rows typed in, not as a data file: the paths lie outside the run folder
            source = f"the run's test {task.nouns}"
            return text_frame(task, paths, source=source), str(predictions)
    rng = np.random.default_rng(0)
    count = min(samples, 32)  # a few dozen generated inputs exercise the graph
    made = _noise_images(rng, count) if task.input_kind == "image" else _tones(rng, count)
    return text_frame(task, made, source="generated"), "generated"


def _noise_images(rng: np.random.Generator, count: int) -> list[bytes]:
    """PNG images of random noise and size."""
    from PIL import Image

    images = []
    for _ in range(count):
        side = int(rng.integers(16, 96))
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        encoded = io.BytesIO()
        Image.fromarray(pixels).save(encoded, format="PNG")
        images.append(encoded.getvalue())
    return images


def _tones(rng: np.random.Generator, count: int, rate: int = 16_000) -> list[bytes]:
    """16 kHz WAV clips of a tone under noise, 0.2-2 s long: lengths differ, as a batch's do."""
    import soundfile as sf

    clips = []
    for _ in range(count):
        seconds = float(rng.uniform(0.2, 2.0))
        time_axis = np.arange(int(seconds * rate)) / rate
        tone = 0.3 * np.sin(2 * np.pi * float(rng.uniform(100, 4000)) * time_axis)
        samples = (tone + rng.normal(0, 0.02, len(time_axis))).astype(np.float32)
        encoded = io.BytesIO()
        sf.write(encoded, samples, rate, format="WAV")
        clips.append(encoded.getvalue())
    return clips


def _parity(task: Any, frame: pd.DataFrame, reference: Any, exported: Any) -> dict[str, Any]:
    """Share of rows whose decisions agree, and the largest absolute difference of what the
    task's ``onnx_graph`` compares (logits; sentence embeddings)."""
    graph = task.onnx_graph
    ref_values, out_values = graph.values(reference), graph.values(exported)
    if isinstance(ref_values, list):  # per-word logits of a tagger: one array per row
        ref = np.concatenate([r.reshape(-1) for r in ref_values]) if ref_values else np.zeros(0)
        out = np.concatenate([r.reshape(-1) for r in out_values]) if out_values else np.zeros(0)
    else:
        ref, out = np.asarray(ref_values), np.asarray(out_values)
    result: dict[str, Any] = {
        "rows": len(frame),
        f"max_abs_{graph.compared}_diff": float(np.abs(ref - out).max()) if ref.size else 0.0,
    }
    ours, theirs = task.predictions(reference, frame), task.predictions(exported, frame)
    keys = [key for key in DECISIONS if ours and key in ours[0]]
    if keys:  # regression has no labels to agree on; its logit difference says it all
        same = [all(a[k] == b[k] for k in keys) for a, b in zip(ours, theirs, strict=True)]
        result["label_agreement"] = float(np.mean(same)) if same else 1.0
    return result
