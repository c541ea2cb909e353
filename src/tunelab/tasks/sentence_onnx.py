"""ONNX export of a sentence encoder: the whole sentence-transformers pipeline (transformer,
pooling, and normalisation where the model has it) as one graph that outputs the sentence
embedding, and that graph run behind the ``encode`` the task calls on a
``SentenceTransformer``, so the task's ``embed`` and ``forward`` serve it unchanged."""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.tasks.base import OnnxGraph

OUTPUT = "sentence_embedding"  # the key sentence-transformers writes the vectors under


def sentence_module(model: Any) -> Any:
    """A module over a ``SentenceTransformer`` whose forward takes the tokenizer's tensors by
    name and returns the sentence embeddings: every module of the pipeline is traced, so
    pooling and normalisation are in the graph, not re-implemented beside it."""
    import torch

    class SentenceOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                features["token_type_ids"] = token_type_ids
            return self.model(features)[OUTPUT]

    return SentenceOnly()


class ExportedEncoder:
    """The exported graph with the part of ``SentenceTransformer``'s interface the task uses:
    ``encode``, ``max_seq_length``, ``device`` and ``eval``."""

    def __init__(self, graph: Any, tokenizer: Any) -> None:
        self.graph = graph
        self.tokenizer = tokenizer
        self.max_seq_length = 512  # the task sets its token limit before encoding
        self.device = graph.device

    def eval(self) -> ExportedEncoder:
        """No training mode to leave; here for the task's ``forward``."""
        return self

    def encode(self, texts: list[str], batch_size: int = 32, **_: Any) -> Any:
        """One vector per text (a float32 tensor, in the order given); texts are batched by
        length, as sentence-transformers batches them, so little of a batch is padding."""
        import torch

        order = np.argsort([-len(text) for text in texts], kind="stable")
        parts = []
        for start in range(0, len(texts), batch_size):
            chunk = [texts[i] for i in order[start : start + batch_size]]
            batch = self.tokenizer(
                chunk, padding=True, truncation=True, max_length=self.max_seq_length,
                return_tensors="pt",
            )  # fmt: skip
            parts.append(getattr(self.graph(**batch), OUTPUT))
        if not parts:
            return torch.zeros((0, 0), dtype=torch.float32)
        vectors = torch.cat(parts)
        return vectors[torch.from_numpy(np.argsort(order, kind="stable"))]


# the parity check compares the vectors of the sample texts
SENTENCE_GRAPH = OnnxGraph(
    sentence_module, OUTPUT, ExportedEncoder, lambda outputs: outputs.vectors, "embedding"
)
