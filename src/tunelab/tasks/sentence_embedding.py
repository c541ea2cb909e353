"""Sentence embeddings: bi-encoders for search, retrieval-augmented generation, deduplication.

Built on the ``sentence-transformers`` library: its model (transformer, pooling, and the
checkpoint's own normalisation), its losses and its trainer. Data comes in three shapes,
told apart by the columns: (anchor, positive) pairs, (anchor, positive, negative) triplets,
and scored pairs (sentence1, sentence2, score). Pairs and triplets train with in-batch
negatives and are scored by retrieval (each held-out anchor searches the held-out corpus of
positives); scored pairs train with CoSENT and are scored by rank correlation.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data.doctor import diagnose, doctor_summary
from tunelab.errors import UserError
from tunelab.evaluation import report_embedding
from tunelab.evaluation.retrieval import (
    CUT,
    RECALL_AT,
    cosine_matrix,
    retrieval_scores,
    similarity_scores,
    top_documents,
)
from tunelab.models.bm25 import METHOD as BM25_METHOD
from tunelab.models.bm25 import bm25_top_documents
from tunelab.models.sentence_encoder import (
    SentenceTransformerLoader,
    encoder_trainer_class,
    fold_adapters,
    load_sentence_transformer,
)
from tunelab.tasks.base import DataFit, StandardColumn
from tunelab.tasks.sentence_onnx import SENTENCE_GRAPH

log = logging.getLogger("tunelab")

ANCHOR, POSITIVE, NEGATIVE, SCORE = "anchor", "positive", "negative", "score"
# columns tried, in order, when an option is left at its default
ANCHOR_NAMES = ("anchor", "query", "sentence1", "question", "text", "sentence_a")
POSITIVE_NAMES = ("positive", "document", "passage", "sentence2", "answer", "pos", "sentence_b")
# names only retrieval data uses (a pair of sentences may as well be classified)
SEARCH_NAMES = ("anchor", "query", "positive", "document", "passage", "pos")
NEGATIVE_NAMES = ("negative", "neg", "hard_negative")
SCORE_NAMES = ("score", "similarity", "label")
SHOWN_RETRIEVED = 3  # documents per query kept in predictions.jsonl


@dataclass
class EmbeddingOutputs:
    """What the model (or BM25) gives for held-out rows.

    Retrieval: the unique anchors as queries, the unique positives and negatives as the
    corpus, each query's relevant documents and its first documents, best first. Scored
    pairs: one similarity per row. Unlabelled rows: one vector per row.
    """

    queries: list[str]
    corpus: list[str]
    relevant: list[set[int]]
    ranked: np.ndarray  # (queries, CUT) corpus indices
    similarities: np.ndarray | None = None  # scored pairs: one per row
    vectors: np.ndarray | None = None  # prediction without labels


def _pick(
    columns: Sequence[Any],
    requested: str | None,
    default: str | None,
    candidates: Sequence[str],
    taken: set[str],
) -> str | None:
    """The column named by an option; when the option keeps its default, that column if the
    file has it, else the first present candidate not already used; None for an option set
    to null (no such column)."""
    names = [str(c) for c in columns]
    if requested is None:
        return None
    if requested not in ("auto", default):
        return requested
    if requested in names and requested not in taken:
        return requested
    lowered = {name.lower(): name for name in names if name not in taken}
    return next((lowered[c] for c in candidates if c in lowered), None)


class SentenceEmbedding:
    """Map a text to a vector so that texts that belong together lie close."""

    name = "sentence-embedding"
    text_pair_column: str | None = None  # any single text embeds; pairs live in the rows
    problem_type = "embedding"
    greater_is_better = True
    evaluated_splits = ("validation", "test")
    explains = None  # attributions of a vector are not offered
    exportable = ("onnx",)
    onnx_graph = SENTENCE_GRAPH  # transformer, pooling and normalisation: one graph
    embeds = True
    search_batch_sizes = (32, 64, 128)  # in-batch negatives: bigger batches, harder task
    report_sections = staticmethod(report_embedding.sections)
    scored_before_training = True  # a pretrained encoder already embeds: show the gain
    baseline_method = BM25_METHOD
    model_kind = "encoder"
    trains_few_shot = False  # few-shot is a classifier's recipe
    takes_virtual_tokens = False  # pooling would average the virtual tokens in: LoRA or IA3
    packs_rows = False
    batch_tokens_from_rows = False
    doctor_checks = None  # the doctor runs training's diagnose of the pairs
    input_kind = "text"

    def __init__(
        self,
        anchor_column: str = "text",
        positive_column: str | None = "auto",
        negative_column: str | None = "auto",
        score_column: str | None = "auto",
        shape: str = "",
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.anchor_column = anchor_column
        self.positive_column = positive_column
        self.negative_column = negative_column
        self.score_column = score_column
        self.shape = shape  # pairs, triplets or scored; read from the training data
        self.settings: dict[str, Any] = {
            "loss": "auto",
            "mini_batch_size": 16,
            "hard_negatives": 0,
            "pooling": "auto",
            **(settings or {}),
        }
        self.max_length = 256  # set by encode

    @classmethod
    def from_run_config(cls, config: Any) -> SentenceEmbedding:
        """Build from a :class:`tunelab.config.RunConfig`."""
        if importlib.util.find_spec("sentence_transformers") is None:
            raise UserError(
                "task sentence-embedding needs the sentence-transformers package: "
                "pip install 'tunelab[embeddings]'"
            )
        options = config.embedding
        return cls(
            config.data.text_column,
            options.positive_column,
            options.negative_column,
            options.score_column,
            settings=options.model_dump(
                include={"loss", "mini_batch_size", "hard_negatives", "pooling"}
            ),
        )

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], model_config: Any) -> SentenceEmbedding:
        """Rebuild from the metadata a trained model carries in its ``config.json``."""
        return cls(
            meta.get("anchor_column", "text"),
            meta.get("positive_column", "auto"),
            meta.get("negative_column", "auto"),
            meta.get("score_column", "auto"),
            meta.get("shape", "pairs"),
            meta.get("settings"),
        )

    # Shared code reads the standardized frame; a user's --text-column names their column.
    text_column = StandardColumn(ANCHOR, "anchor_column")

    @property
    def label_column(self) -> str:
        return SCORE if self.shape == "scored" else POSITIVE

    @label_column.setter
    def label_column(self, value: str) -> None:
        if self.shape == "scored":
            self.score_column = value
        else:
            self.positive_column = value

    @staticmethod
    def main_metric_of(metadata: dict[str, Any]) -> str:
        return "spearman" if metadata.get("shape") == "scored" else "ndcg@10"

    @property
    def main_metric(self) -> str:
        return self.main_metric_of({"shape": self.shape})

    @property
    def labels(self) -> list[str]:
        """None: the model writes vectors."""
        return []

    def metadata(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "anchor_column": self.anchor_column,
            "positive_column": self.positive_column,
            "negative_column": self.negative_column,
            "score_column": self.score_column,
            "shape": self.shape,
            "settings": self.settings,
        }

    # -- columns -------------------------------------------------------------------------

    def required_columns(self, with_labels: bool = True) -> dict[str, str]:
        columns = {ANCHOR: "data.text_column"}
        if with_labels:
            columns[POSITIVE] = "embedding.positive_column"
            if self.shape == "triplets":
                columns[NEGATIVE] = "embedding.negative_column"
            if self.shape == "scored":
                columns[SCORE] = "embedding.score_column"
        return columns

    def recognise(self, frame: pd.DataFrame, given: frozenset[str]) -> DataFit | None:
        """An anchor column and a positive column by the names standardize looks for:
        strength 2 for search names (anchor/positive, query/document or passage), 1 for
        sentence pairs (sentence1/sentence2, question/answer), which classification reads too;
        none when the score column holds words (labels such as 'entailment'), or when the
        user named a label column (``--label-column`` is a classifier's; scores are
        ``embedding.score_column``)."""
        if "data.label_column" in given:
            return None
        anchor = _pick(frame.columns, self.anchor_column, "text", ANCHOR_NAMES, set())
        if anchor is None or anchor not in frame.columns:
            return None
        positive = _pick(frame.columns, self.positive_column, "auto", POSITIVE_NAMES, {anchor})
        if positive is None or positive not in frame.columns:
            return None
        score = _pick(frame.columns, self.score_column, "auto", SCORE_NAMES, {anchor, positive})
        if score in frame.columns and "embedding.score_column" not in given:
            values = frame[score].dropna().astype(str).str.strip()
            if pd.to_numeric(values[values != ""], errors="coerce").isna().any():
                return None  # words, not similarities: a pair classifier's labels
        searching = anchor.lower() in SEARCH_NAMES or positive.lower() in SEARCH_NAMES
        return DataFit(2 if searching else 1, f"'{anchor}'/'{positive}' pairs")

    def standardize(self, frame: pd.DataFrame, with_labels: bool = True) -> pd.DataFrame:
        """The rows as anchor, positive[, negative][, score] columns, found by name.

        Raises:
            UserError: naming the file and the option when a column is missing, the file has
                one text column, or a score is not a number.
        """
        source = frame.attrs.get("source", "data")
        existing = ", ".join(map(str, frame.columns))
        anchor = _pick(frame.columns, self.anchor_column, "text", ANCHOR_NAMES, set())
        if anchor is None or anchor not in frame.columns:
            raise UserError(
                f"{source} has no anchor column '{self.anchor_column}' (columns: {existing}); "
                "name the query/anchor column with --text-column (data.text_column)"
            )
        shaped = pd.DataFrame({ANCHOR: frame[anchor]}, index=frame.index)
        shaped.attrs = {**frame.attrs, "columns": {ANCHOR: anchor}}
        if with_labels:
            self._standardize_targets(frame, anchor, shaped)
        return shaped

    def _standardize_targets(self, frame: pd.DataFrame, anchor: str, shaped: pd.DataFrame) -> None:
        source = frame.attrs.get("source", "data")
        existing = ", ".join(map(str, frame.columns))
        positive = _pick(frame.columns, self.positive_column, "auto", POSITIVE_NAMES, {anchor})
        if positive is None or positive not in frame.columns:
            if positive is None and len(frame.columns) < 2:
                raise UserError(
                    f"{source} has one column ({existing}); sentence-embedding learns from "
                    "pairs: give anchor,positive (or query,document) columns, anchor,positive,"
                    "negative triplets, or sentence1,sentence2,score"
                )
            raise UserError(
                f"{source} has no positive column '{self.positive_column}' (columns: "
                f"{existing}); name the text each anchor should find with "
                "--set embedding.positive_column=NAME"
            )
        taken = {anchor, positive}
        score = _pick(frame.columns, self.score_column, "auto", SCORE_NAMES, taken)
        if score is not None and score not in frame.columns:
            raise UserError(
                f"{source} has no score column '{score}' (columns: {existing}); "
                "fix embedding.score_column or set it to null"
            )
        negative = _pick(frame.columns, self.negative_column, "auto", NEGATIVE_NAMES, taken)
        if negative is not None and negative not in frame.columns:
            raise UserError(
                f"{source} has no negative column '{negative}' (columns: {existing});"
                " fix embedding.negative_column or set it to null"
            )
        shaped[POSITIVE] = frame[positive]
        named = {POSITIVE: positive, NEGATIVE: negative, SCORE: score}
        shaped.attrs["columns"].update({k: v for k, v in named.items() if v is not None})
        if score is not None:
            numbers = pd.to_numeric(frame[score], errors="coerce")
            bad = numbers.isna() & frame[score].notna()
            if bad.any():
                row = bad.idxmax()
                raise UserError(
                    f"{source} row {row}: score {frame[score][row]!r} in column '{score}' is not "
                    "a number; scored pairs need a numeric similarity"
                )
            shaped[SCORE] = numbers
            shape = "scored"
        elif negative is not None:
            shaped[NEGATIVE] = frame[negative]
            shape = "triplets"
        else:
            shape = "pairs"
        if not self.shape:
            self.shape = shape
            found = {"anchor": anchor, "positive": positive, "negative": negative, "score": score}
            log.info(
                "sentence-embedding: %s from columns %s",
                shape,
                ", ".join(f"{k}={v}" for k, v in found.items() if v),
            )
        elif shape != self.shape and shape != "pairs":  # held-out pairs may leave negatives out
            raise UserError(
                f"{source} holds {shape} but the training data holds {self.shape}; give every "
                "file the same columns"
            )

    # -- data checks ---------------------------------------------------------------------

    def diagnose(
        self, frames: dict[str, pd.DataFrame], find_label_errors: bool, seed: int
    ) -> dict[str, Any]:
        """Duplicates, leakage and text quality of the anchors; positives equal to anchors."""
        report = diagnose(frames, ANCHOR, None, find_label_errors=False, seed=seed)
        report["pairs"] = {
            split: {
                "shape": self.shape,
                "same_as_anchor": int(
                    (
                        frame[ANCHOR].astype(str).str.strip()
                        == frame[POSITIVE].astype(str).str.strip()
                    ).sum()
                ),
                "distinct_positives": int(frame[POSITIVE].astype(str).nunique()),
            }
            for split, frame in frames.items()
            if POSITIVE in frame.columns
        }
        return report

    def doctor_lines(self, report: dict[str, Any]) -> list[str]:
        lines = doctor_summary(report)
        for split, pairs in report.get("pairs", {}).items():
            if pairs["same_as_anchor"]:
                lines.append(
                    f"{split}: {pairs['same_as_anchor']} pairs whose positive equals "
                    "the anchor teach nothing"
                )
        return lines

    def clean(
        self, frame: pd.DataFrame, clean: Any, is_training: bool
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Drop exact duplicate training rows (they weigh a pair twice)."""
        if not (is_training and clean.drop_duplicates):
            return frame, {}
        duplicated = frame.astype(str).duplicated()
        kept = frame[~duplicated]
        kept.attrs = dict(frame.attrs)
        return kept, {"duplicates": int(duplicated.sum())}

    def fit_labels(self, train: pd.DataFrame) -> None:
        return None

    def check_labels(self, frame: pd.DataFrame) -> None:
        return None

    def targets(self, frame: pd.DataFrame) -> list[Any]:
        """The positives (pairs, triplets) or the scores (scored pairs) of the rows."""
        if self.shape == "scored":
            return frame[SCORE].astype(float).tolist()
        return frame[POSITIVE].astype(str).tolist()

    def clean_text(self, text: str) -> str:
        return text  # texts reach the encoder as written

    # -- model and features --------------------------------------------------------------

    def processor_class(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer

    def auto_model_class(self) -> Any:
        return SentenceTransformerLoader

    def build_model(self, source: str, **load_kwargs: Any) -> Any:
        return load_sentence_transformer(source, self.settings["pooling"], **load_kwargs)

    def finish(self, model: Any, tokenizer: Any) -> None:
        """Fold LoRA/IA3 adapters into the transformer's weights, so the saved folder is a
        plain sentence-transformers model that loads without PEFT (and exports to ONNX)."""
        fold_adapters(model)

    def _texts(self, frame: pd.DataFrame) -> list[str]:
        columns = [c for c in (ANCHOR, POSITIVE, NEGATIVE) if c in frame.columns]
        return [str(t) for c in columns for t in frame[c]]

    def token_lengths(self, frame: pd.DataFrame, tokenizer: Any) -> np.ndarray:
        """Token counts of every anchor, positive and negative (each is encoded alone)."""
        encoded = tokenizer(self._texts(frame), truncation=False, verbose=False)
        return np.array([len(ids) for ids in encoded["input_ids"]])

    def encode(self, frame: pd.DataFrame, tokenizer: Any, max_length: int) -> Any:
        """The text columns in the order the loss reads them (the trainer tokenizes)."""
        from datasets import Dataset

        self.max_length = max_length
        columns = {
            c: frame[c].astype(str).tolist()
            for c in (ANCHOR, POSITIVE, NEGATIVE)
            if c in frame.columns
        }
        if SCORE in frame.columns:
            columns[SCORE] = frame[SCORE].astype(float).tolist()
        return Dataset.from_dict(columns)

    def loss_function(
        self, train: pd.DataFrame, class_weights: str = "auto", label_smoothing: float = 0.0
    ) -> tuple[Any, dict[str, Any]]:
        """The sentence-transformers loss for the data's shape (a factory of the model).

        Raises:
            UserError: if ``embedding.loss`` does not fit the data's shape.
        """
        from sentence_transformers.sentence_transformer import losses

        chosen = self.settings["loss"]
        scored = self.shape == "scored"
        if chosen == "auto":
            chosen = "cosent" if scored else "mnrl"
        if scored != (chosen in ("cosent", "angle")):
            needs = "scored pairs" if chosen in ("cosent", "angle") else "pairs or triplets"
            raise UserError(
                f"embedding.loss={chosen} needs {needs}, but the training data holds "
                f"{self.shape}; leave embedding.loss=auto"
            )
        factories = {
            "mnrl": losses.MultipleNegativesRankingLoss,
            "cosent": losses.CoSENTLoss,
            "angle": losses.AnglELoss,
        }
        if chosen == "cached-mnrl":
            size = self.settings["mini_batch_size"]

            def factory(model: Any) -> Any:
                return losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=size)
        else:
            factory = factories[chosen]
        return factory, {"loss": chosen, "shape": self.shape}

    def collator(self, tokenizer: Any) -> Any:
        return None  # the sentence-transformers trainer tokenizes with the model's own modules

    def trainer_setup(
        self, model: Any, tokenizer: Any, loss: Any, train: Any, validation: Any
    ) -> Any:
        """The sentence-transformers trainer, its loss and a retrieval evaluator."""
        from sentence_transformers import SentenceTransformerTrainingArguments

        from tunelab.tasks.base import TrainerSetup

        model.max_seq_length = self.max_length
        inputs: dict[str, Any] = {"loss": loss}
        if validation is not None:
            inputs["evaluator"] = task_evaluator(self, validation.to_pandas())
            inputs["eval_dataset"] = None  # the evaluator scores; no second pass for a loss
        if self.settings["hard_negatives"] and self.shape == "pairs":
            inputs["train_dataset"] = self._mine_negatives(model, train)
        arguments = {"train_sampling_strategy": "random"}
        if self.shape != "scored":  # a copy of a row's positive in its batch is a false negative
            arguments["batch_sampler"] = "no_duplicates"
        return TrainerSetup(
            encoder_trainer_class(), SentenceTransformerTrainingArguments, arguments, inputs
        )

    def _mine_negatives(self, model: Any, train: Any) -> Any:
        from sentence_transformers.util import mine_hard_negatives

        count = self.settings["hard_negatives"]
        mined = mine_hard_negatives(
            train,
            model,
            anchor_column_name=ANCHOR,
            positive_column_name=POSITIVE,
            num_negatives=count,
            range_min=0,
            sampling_strategy="top",
            output_format="triplet",
            batch_size=64,
            verbose=False,
        )
        log.info("mined %d hard-negative triplets from %d pairs", len(mined), len(train))
        return mined.rename_columns(
            dict(zip(mined.column_names, (ANCHOR, POSITIVE, NEGATIVE), strict=False))
        )

    # -- outputs and scores --------------------------------------------------------------

    def embed(self, model: Any, texts: list[str], batch_size: int, precision: str = "fp32") -> Any:
        """One vector per text (float32), in the model's own space (normalised if it is)."""
        import torch

        model.max_seq_length = self.max_length
        context: Any = torch.autocast(
            model.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"
        )
        with torch.inference_mode(), context:
            vectors = model.encode(
                texts,
                batch_size=batch_size,
                convert_to_numpy=False,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        return vectors.float().cpu().numpy()

    def forward(
        self,
        model: Any,
        tokenizer: Any,
        frame: pd.DataFrame,
        max_length: int,
        batch_size: int,
        precision: str = "fp32",
    ) -> EmbeddingOutputs:
        """Vectors of unlabelled rows; retrieval rankings or pair similarities of labelled."""
        self.max_length = max_length
        model.eval()
        if POSITIVE not in frame.columns:
            texts = frame[ANCHOR].astype(str).tolist()
            return EmbeddingOutputs(
                texts,
                [],
                [],
                np.zeros((0, 0), dtype=int),
                vectors=self.embed(model, texts, batch_size, precision),
            )
        if self.shape == "scored":
            first = self.embed(model, frame[ANCHOR].astype(str).tolist(), batch_size, precision)
            second = self.embed(model, frame[POSITIVE].astype(str).tolist(), batch_size, precision)
            similarities = (cosine_matrix(first, second) * np.eye(len(frame))).sum(axis=1)
            return EmbeddingOutputs([], [], [], np.zeros((0, 0), dtype=int), similarities)
        queries, corpus, relevant = retrieval_set(frame)
        query_vectors = self.embed(model, queries, batch_size, precision)
        corpus_vectors = self.embed(model, corpus, batch_size, precision)
        ranked = top_documents(query_vectors, corpus_vectors)
        return EmbeddingOutputs(queries, corpus, relevant, ranked)

    def baseline_outputs(
        self, splits: dict[str, pd.DataFrame], seed: int = 0
    ) -> dict[str, EmbeddingOutputs]:
        """BM25 over each held-out corpus (retrieval); scored pairs have no baseline."""
        if self.shape == "scored":
            return {}
        if importlib.util.find_spec("rank_bm25") is None:
            log.info("no BM25 baseline: pip install 'tunelab[embeddings]' adds rank-bm25")
            return {}
        outputs: dict[str, EmbeddingOutputs] = {}
        for split in ("validation", "test"):
            if split in splits and len(splits[split]):
                queries, corpus, relevant = retrieval_set(splits[split])
                ranked = bm25_top_documents(queries, corpus, CUT)
                outputs[split] = EmbeddingOutputs(queries, corpus, relevant, ranked)
        return outputs

    def evaluate_outputs(self, outputs: EmbeddingOutputs, frame: pd.DataFrame) -> dict[str, Any]:
        if outputs.similarities is not None:
            gold = frame[SCORE].astype(float).to_numpy()
            return {"examples": len(frame), **similarity_scores(outputs.similarities, gold)}
        return {
            "examples": len(outputs.queries),
            "corpus": len(outputs.corpus),
            **retrieval_scores(outputs.ranked, outputs.relevant),
        }

    def predictions(self, outputs: EmbeddingOutputs, frame: pd.DataFrame) -> list[dict[str, Any]]:
        if outputs.vectors is not None:
            return [
                {"text": text, "embedding": [round(float(v), 6) for v in vector]}
                for text, vector in zip(outputs.queries, outputs.vectors, strict=True)
            ]
        if outputs.similarities is not None:
            return [
                {"text": a, "text_pair": b, "similarity": round(float(s), 6), "gold": float(g)}
                for a, b, s, g in zip(
                    frame[ANCHOR].astype(str),
                    frame[POSITIVE].astype(str),
                    outputs.similarities,
                    frame[SCORE],
                    strict=True,
                )
            ]
        records = []
        for query, relevant, ranked in zip(
            outputs.queries, outputs.relevant, outputs.ranked, strict=True
        ):
            hits = [int(doc) in relevant for doc in ranked]
            records.append(
                {
                    "text": query,
                    "gold": [outputs.corpus[i] for i in sorted(relevant)],
                    "retrieved": [outputs.corpus[int(i)] for i in ranked[:SHOWN_RETRIEVED]],
                    "rank": hits.index(True) + 1
                    if any(hits)
                    else None,  # None: beyond the first 10
                }
            )
        return records

    def learning_warning(
        self, scores: dict[str, Any], examples: int, before: dict[str, Any] | None = None
    ) -> str | None:
        """A sentence when retrieval is no better than drawing documents at random, or the
        similarities do not follow the scores."""
        if "spearman" in scores:
            if scores["spearman"] < 0.1:
                return (
                    f"the similarities do not follow the gold scores (Spearman "
                    f"{scores['spearman']:.3f}); try a pretrained model (--model) or more "
                    "epochs"
                )
            return None
        corpus = int(scores.get("corpus") or 0)
        if not corpus or "recall@10" not in scores:
            return None
        chance = min(1.0, CUT / corpus)
        margin = max(0.02, 1.0 / math.sqrt(max(examples, 1)))
        if scores["recall@10"] < chance + margin and chance < 1.0:
            return (
                f"recall@10 {scores['recall@10']:.3f} is no better than drawing 10 of the "
                f"{corpus} documents at random ({chance:.3f}); the model learned no useful "
                "similarity: try a pretrained model (--model), more epochs or a higher "
                "training.learning_rate"
            )
        return None

    def preprocess_logits(self, logits: Any, labels: Any) -> Any:
        return logits

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        return {}  # the retrieval evaluator scores during training

    def calibrate(self, outputs: Any, frame: pd.DataFrame) -> dict[str, Any]:
        return {}


def retrieval_set(frame: pd.DataFrame) -> tuple[list[str], list[str], list[set[int]]]:
    """The unique anchors as queries, the unique positives and negatives as the corpus, and
    each query's relevant documents (every positive it is paired with)."""
    corpus_index: dict[str, int] = {}
    for column in (POSITIVE, NEGATIVE):
        if column in frame.columns:
            for text in frame[column].astype(str):
                corpus_index.setdefault(text, len(corpus_index))
    relevant: dict[str, set[int]] = {}
    for query, positive in zip(frame[ANCHOR].astype(str), frame[POSITIVE].astype(str), strict=True):
        relevant.setdefault(query, set()).add(corpus_index[positive])
    return list(relevant), list(corpus_index), list(relevant.values())


def task_evaluator(task: SentenceEmbedding, frame: pd.DataFrame) -> Any:
    """A sentence-transformers evaluator that scores retrieval (or similarity) on ``frame``
    during training, so the best checkpoint is the one that retrieves best, not the one
    with the lowest loss."""
    from sentence_transformers.base.evaluation import SentenceEvaluator

    class TaskEvaluator(SentenceEvaluator):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.greater_is_better = True
            self.primary_metric = task.main_metric

        def __call__(
            self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1
        ) -> dict[str, float]:
            outputs = task.forward(model, None, frame, task.max_length, 64)
            scores = task.evaluate_outputs(outputs, frame)
            return {k: float(v) for k, v in scores.items() if k not in ("examples", "corpus")}

    return TaskEvaluator()


__all__ = ["RECALL_AT", "EmbeddingOutputs", "SentenceEmbedding", "retrieval_set"]
