"""An ONNX Runtime session that answers like a transformers model, and the export folder's
layout, so the ONNX backend reuses the tasks' own pre- and post-processing unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from tunelab.errors import UserError
from tunelab.models.load import from_pretrained
from tunelab.models.trained import model_folder
from tunelab.serving.model_folder import require_extra
from tunelab.tasks import task_from_model_config

EXPORT_INFO = "export.json"  # written by tunelab export: files, which one to serve, parity
FILES = {"fp32": "model.onnx", "int8": "model_quantized.onnx"}
ONNX_TYPES = {
    "tensor(float)": np.float32,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


class OnnxModel:
    """``model(**batch).logits`` over an ONNX Runtime session, for ``forward_in_batches``
    (``.sentence_embedding`` for a sentence encoder: the graph's outputs by their names).

    It has what the shared inference code reads from a transformers model (``device``,
    ``config``, ``eval()``), so ``task.forward`` runs it exactly as it runs PyTorch; a task
    whose model is no transformers model wraps it with its ``onnx_graph.runner``.
    """

    def __init__(self, path: Path, config: Any, threads: int | None = None) -> None:
        import onnxruntime as ort
        import torch

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [node.name for node in self.session.get_inputs()]
        # each input as the graph declares it: token ids int64, pixel values float32, and
        # an extractor's attention mask int32 where it was traced so (wav2vec2)
        self.input_types = {
            node.name: ONNX_TYPES.get(node.type, np.int64) for node in self.session.get_inputs()
        }
        self.output_names = [node.name for node in self.session.get_outputs()]
        self.config = config
        self.device = torch.device("cpu")

    def eval(self) -> OnnxModel:
        """No training mode to leave; here for the transformers interface."""
        return self

    def __call__(self, **batch: Any) -> SimpleNamespace:
        import torch

        feeds = {
            name: batch[name].cpu().numpy().astype(self.input_types[name])
            for name in self.input_names
        }
        outputs = self.session.run(self.output_names, feeds)
        return SimpleNamespace(
            **{
                name: torch.from_numpy(v)
                for name, v in zip(self.output_names, outputs, strict=True)
            }
        )


def onnx_folder(path: str | Path) -> Path:
    """The ONNX export folder for ``path``: the folder itself, or ``<model folder>/onnx``.

    Raises:
        UserError: if there is no export yet (and says how to make one).
    """
    path = Path(path)
    if (path / EXPORT_INFO).is_file():
        return path
    folder = model_folder(path) / "onnx"
    if not (folder / EXPORT_INFO).is_file():
        raise UserError(
            f"{path} has no ONNX export ({folder / EXPORT_INFO} is missing); run "
            f"tunelab export {path} --format onnx first"
        )
    return folder


def load_onnx(
    path: str | Path, variant: str | None = None, threads: int | None = None
) -> tuple[Any, Any, Any, int]:
    """Load an ONNX export like :func:`tunelab.api.load_trained` loads a PyTorch model.

    Args:
        path: the export folder, a model folder holding ``onnx/``, or its run folder.
        variant: ``fp32`` or ``int8``; default: the one the export chose to serve.
        threads: ONNX Runtime intra-op threads (default: its own choice).

    Returns:
        model (an :class:`OnnxModel`, or what the task's ``onnx_graph.runner`` makes of it),
        tokenizer, task and the token limit the model was trained with.
    """
    require_extra("onnx")
    from transformers import AutoConfig

    folder = onnx_folder(path)
    info = json.loads((folder / EXPORT_INFO).read_text(encoding="utf-8"))
    variant = variant or info["serve"]
    if variant not in info["files"]:
        raise UserError(
            f"{folder} has no {variant} model (it has {', '.join(info['files'])}); export "
            f"again with the matching --quantize option"
        )
    model_config = from_pretrained(AutoConfig, str(folder))
    task = task_from_model_config(model_config)
    tokenizer = from_pretrained(task.processor_class(), str(folder))  # an image processor too
    graph = OnnxModel(folder / info["files"][variant], model_config, threads)
    model = task.onnx_graph.runner(graph, tokenizer) if task.onnx_graph else graph
    max_length = int(model_config.tunelab.get("max_length") or 512)
    return model, tokenizer, task, max_length
