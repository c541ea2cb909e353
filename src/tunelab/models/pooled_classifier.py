"""A linear classifier on a sentence encoder's own embedding.

A sentence-transformers checkpoint (all-MiniLM-L6-v2 and nearly every other) was trained to
embed a text as the mean of its token states, often normalised: its ``modules.json`` says
so. ``AutoModelForSequenceClassification`` of the same BERT weights reads the [CLS] state
through a pooler that training never touched, and no transformers classification class of
BERT's family can mean-pool. Measured on SST-2 with all-MiniLM-L6-v2, 5 samples of 8/16/32
sentences per class and a logistic-regression head on frozen features: 0.529/0.551/0.573
accuracy through [CLS] and the pooler, 0.603/0.656/0.707 on the checkpoint's own embedding
(``benchmarks/results/few_shot_vs_setfit.json``). So few-shot classification of such a
checkpoint keeps the checkpoint's modules and puts the classifier on top.

The saved folder is a sentence-transformers folder (safetensors throughout): the checkpoint's
modules, then a ``Dense`` module whose outputs are the label scores, so
``SentenceTransformer(folder).encode(texts)`` gives the logits with no tunelab installed;
``config.json`` carries the label names and tunelab's metadata as for any model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

SCORES_MODULE = "label_scores"  # the Dense module's folder inside the saved model


class PooledClassifier(torch.nn.Module):
    """Label scores = a linear layer on the sentence encoder's embedding.

    Called like a transformers classification model (``model(**batch).logits``), so
    training, evaluation, prediction and serving treat it like one.
    """

    def __init__(self, encoder: Any, config: Any) -> None:
        super().__init__()
        self.encoder = encoder  # a sentence_transformers.SentenceTransformer
        self.encoder[0].auto_model.config = config  # labels and metadata live in one place
        # sentence-transformers 6.x renamed it (the old name warns); 5.x has only the old one
        dimension = getattr(encoder, "get_embedding_dimension", None)
        width = (dimension or encoder.get_sentence_embedding_dimension)()
        self.classifier = torch.nn.Linear(width, config.num_labels)

    @property
    def config(self) -> Any:
        return self.encoder[0].auto_model.config

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device  # the classifier is an Identity while few-shot tunes

    def embed(self, **batch: Any) -> torch.Tensor:
        """The checkpoint's sentence embedding of a tokenized batch."""
        names = ("input_ids", "attention_mask", "token_type_ids")
        features = {name: batch[name] for name in names if batch.get(name) is not None}
        return self.encoder(features)["sentence_embedding"]

    def forward(self, **batch: Any) -> Any:
        from transformers.modeling_outputs import SequenceClassifierOutput

        return SequenceClassifierOutput(logits=self.classifier(self.embed(**batch)))

    def get_input_embeddings(self) -> Any:
        return self.encoder[0].auto_model.get_input_embeddings()

    def save_pretrained(self, folder: str | Path, **_: Any) -> None:
        """A sentence-transformers folder whose last module outputs the label scores."""
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.base.modules import Dense

        scores = Dense(
            self.classifier.in_features,
            self.classifier.out_features,
            activation_function=torch.nn.Identity(),
        )
        scores.linear.load_state_dict(self.classifier.state_dict())
        modules = [*self.encoder, scores]
        names = [*(name for name, _ in self.encoder.named_children()), SCORES_MODULE]
        from collections import OrderedDict

        whole = SentenceTransformer(modules=OrderedDict(zip(names, modules, strict=True)))
        whole.save(str(folder), safe_serialization=True)
        self.config.save_pretrained(folder)

    @classmethod
    def from_pretrained(cls, folder: str | Path, **_: Any) -> PooledClassifier:
        """Load what :meth:`save_pretrained` wrote."""
        from collections import OrderedDict

        from sentence_transformers import SentenceTransformer

        whole = SentenceTransformer(str(folder), local_files_only=True)
        named = list(whole.named_children())
        encoder = SentenceTransformer(modules=OrderedDict(named[:-1]))
        scores = named[-1][1]
        model = cls(encoder, encoder[0].auto_model.config)
        model.classifier.load_state_dict(scores.linear.state_dict())
        return model.eval()
