"""Token classification: named entities, part-of-speech tags, word segmentation.

Rows arrive as token/tag lists (CoNLL, JSONL), or as text with character spans; the model
learns one tag per word on the word's first sub-token; texts longer than the model are
read in overlapping windows (:mod:`tunelab.tasks.token_windows`); predictions come back as
entities with character offsets into the original text.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data.columns import holds_lists
from tunelab.data.doctor import diagnose, leakage_lines, split_findings
from tunelab.data.tag_schemes import (
    ENTITY_SCHEMES,
    broken_positions,
    convert_tags,
    detect_scheme,
    entity_types,
    scheme_tags,
    spans_from_tags,
)
from tunelab.errors import UserError
from tunelab.evaluation import metrics as m
from tunelab.evaluation import report_tagging
from tunelab.evaluation.tagging import sequence_metrics, span_confusion
from tunelab.inference import forward_in_batches, top_two_gap
from tunelab.models.load import load_head_model
from tunelab.models.tag_memory import METHOD as TAG_MEMORY_METHOD
from tunelab.models.tag_memory import TagMemory
from tunelab.tasks.arrow_rows import encoded_dataset
from tunelab.tasks.base import (
    LOGITS_GRAPH,
    ColumnGuess,
    DataFit,
    StandardColumn,
    TrainerSetup,
    standard_trainer_setup,
)
from tunelab.tasks.token_inputs import (
    STARTS,
    TAGS,
    TEXT,
    TOKENS,
    nested_spans_column,
    standardize_rows,
)
from tunelab.tasks.token_windows import IGNORE, build_windows, merge_windows

log = logging.getLogger("tunelab")


class TokenClassification:
    """Tag every token of a text: entities (BIO/BIOES/IO), segmentation (BMES) or plain tags."""

    name = "token-classification"
    text_pair_column: str | None = None  # no pairs: the protocol allows one
    problem_type = "sequence"  # never stratified by label when a file is split
    evaluated_splits = ("validation", "test")
    explains = "tokens"
    exportable = ("onnx",)
    onnx_graph = LOGITS_GRAPH
    embeds = False
    search_batch_sizes = (16, 32, 64)
    report_sections = staticmethod(report_tagging.sections)
    scored_before_training = False  # a new head only guesses before training
    baseline_method = TAG_MEMORY_METHOD
    model_kind = "encoder"
    trains_few_shot = False
    takes_virtual_tokens = False  # a virtual token has no tag to learn or predict
    packs_rows = False
    batch_tokens_from_rows = True
    doctor_checks = "tags"
    input_kind = "text"

    def __init__(
        self,
        source_text_column: str = "text",
        tokens_column: str = "tokens",
        tags_column: str = "tags",
        spans_column: str = "spans",
        scheme: str = "auto",
        repair: bool = True,
        label_all_subtokens: bool = False,
        stride: int = 32,
        labels: list[str] | None = None,
    ) -> None:
        self.source_text_column = source_text_column
        self.tokens_column = tokens_column
        self.tags_column = tags_column
        self.spans_column = spans_column
        self.scheme = scheme
        self.repair = repair
        self.label_all_subtokens = label_all_subtokens
        self.stride = stride
        self.labels: list[str] = list(labels or [])
        self.input_schemes: dict[str, str] = {}  # per file: the scheme its tags were written in

    @classmethod
    def from_run_config(cls, config: Any) -> TokenClassification:
        """Build from a :class:`tunelab.config.RunConfig`."""
        options = config.token_classification
        return cls(
            source_text_column=config.data.text_column,
            tokens_column=config.data.tokens_column,
            tags_column=config.data.tags_column,
            spans_column=config.data.spans_column,
            scheme=options.scheme,
            repair=options.repair,
            label_all_subtokens=options.label_all_subtokens,
            stride=options.stride,
        )

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], model_config: Any) -> TokenClassification:
        """Rebuild from the metadata a trained model carries in its ``config.json``."""
        return cls(
            source_text_column=meta.get("text_column", "text"),
            tokens_column=meta.get("tokens_column", "tokens"),
            tags_column=meta.get("tags_column", "tags"),
            spans_column=meta.get("spans_column", "spans"),
            scheme=meta["scheme"],
            stride=meta.get("stride", 32),
            labels=[model_config.id2label[i] for i in sorted(model_config.id2label)],
        )

    # The shared code reads the standardized frame's columns through these names, while a
    # user's --text-column names the column of their own file.
    text_column = StandardColumn(TEXT, "source_text_column")
    label_column = StandardColumn(TAGS, "tags_column")

    @staticmethod
    def main_metric_of(metadata: dict[str, Any]) -> str:
        """The main metric of a saved model with this ``config.tunelab`` metadata."""
        return {"bmes": "word_f1", "plain": "accuracy"}.get(metadata.get("scheme", ""), "f1")

    @property
    def main_metric(self) -> str:
        return TokenClassification.main_metric_of({"scheme": self.scheme})

    greater_is_better = True

    def required_columns(self, with_labels: bool = True) -> dict[str, str]:
        columns = {TEXT: "data.text_column", TOKENS: "data.tokens_column"}
        if with_labels:
            columns[TAGS] = "data.tags_column"
        return columns

    def metadata(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "text_column": self.source_text_column,
            "tokens_column": self.tokens_column,
            "tags_column": self.tags_column,
            "spans_column": self.spans_column,
            "scheme": self.scheme,
            "stride": self.stride,
        }

    def finish(self, model: Any, tokenizer: Any) -> None:
        """Nothing to add to the model before it is saved."""

    def processor_class(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer

    def auto_model_class(self) -> Any:
        from transformers import AutoModelForTokenClassification

        return AutoModelForTokenClassification

    # -- rows and tags -------------------------------------------------------------------

    def recognise(self, frame: pd.DataFrame, given: frozenset[str]) -> DataFit | None:
        """Token lists with a tag list per row (as CoNLL files read) or texts with character
        spans: the tagger's own shape (strength 2)."""
        tokens, tags, spans = self.tokens_column, self.tags_column, self.spans_column
        if holds_lists(frame, tokens) and holds_lists(frame, tags):
            return DataFit(2, f"a list of tokens ('{tokens}') and of tags ('{tags}') in every row")
        text = self.source_text_column
        if text in frame.columns and holds_lists(frame, spans):
            return DataFit(2, f"character spans ('{spans}') over '{text}'")
        if text in frame.columns and "data.spans_column" not in given:
            nested = nested_spans_column(frame, [text])
            if nested is not None:
                shape = "entity spans by type, {type: {entity: [[start, end]]}}"
                guess = ColumnGuess(
                    "data.spans_column", nested, f"CLUENER's {shape}", "--set data.spans_column=..."
                )
                return DataFit(2, f"{shape} ('{nested}') over '{text}'", (guess,))
        return None

    def standardize(self, frame: pd.DataFrame, with_labels: bool = True) -> pd.DataFrame:
        """Rows as text, tokens, offsets and tags in the model's scheme (see token_inputs).

        Raises:
            UserError: for missing columns, rows that disagree, or (with ``repair`` off)
                broken tag sequences.
        """
        span_scheme = self.scheme if self.scheme in (*ENTITY_SCHEMES, "bmes") else "bio"
        rows = standardize_rows(
            frame, self.source_text_column, self.tokens_column, self.tags_column,
            self.spans_column, with_labels, span_scheme,
        )  # fmt: skip
        if not with_labels or rows.empty:
            return rows
        source = rows.attrs.get("source", "data")
        seen = {tag for tags in rows[TAGS] for tag in tags}
        if self.tokens_column not in frame.columns:
            written = span_scheme  # tags made from spans
        elif seen <= {"O"}:  # no entity at all: fits any entity scheme
            written = self.scheme if self.scheme in ENTITY_SCHEMES else "bio"
        else:
            written = detect_scheme(seen)
        self.input_schemes[source] = written
        if self.scheme == "auto":
            self.scheme = written
        if (written in ENTITY_SCHEMES) != (self.scheme in ENTITY_SCHEMES) or (
            written != self.scheme and self.scheme in ("bmes", "plain")
        ):
            raise UserError(
                f"{source} has {written} tags but the model learns {self.scheme} tags; set "
                f"token_classification.scheme to {written} (or auto)"
            )
        broken = rows[TAGS].map(lambda tags: broken_positions(tags, written))
        bad = broken[broken.map(len) > 0]
        rows.attrs["broken_rows"] = [int(i) for i in bad.index]
        if len(bad) and not self.repair:
            row = bad.index[0]
            position = bad.iloc[0][0]
            raise UserError(
                f"{source} row {row}: tag '{rows[TAGS][row][position]}' at token {position + 1} "
                f"breaks the {written.upper()} scheme ({len(bad)} rows do); fix the tags or set "
                "token_classification.repair=true"
            )
        if len(bad) or written != self.scheme:
            rows[TAGS] = rows[TAGS].map(lambda tags: convert_tags(tags, written, self.scheme))
        return rows

    def fit_labels(self, train: pd.DataFrame) -> None:
        seen = {tag for tags in train[TAGS] for tag in tags}
        if self.scheme in (*ENTITY_SCHEMES, "bmes"):
            self.labels = scheme_tags(entity_types(seen, self.scheme), self.scheme)
        else:
            self.labels = sorted(seen)
        if len(self.labels) < 2:
            raise UserError(
                f"{train.attrs.get('source', 'training data')} has only the tag "
                f"'{next(iter(seen), '')}'; a tagger needs at least two different tags"
            )

    def check_labels(self, frame: pd.DataFrame) -> None:
        known = set(self.labels)
        for row, tags in frame[TAGS].items():
            unknown = [tag for tag in tags if tag not in known]
            if unknown:
                raise UserError(
                    f"{frame.attrs.get('source', 'data')} row {row} has tag '{unknown[0]}' that "
                    f"the training data never has; fix the tag or add training examples of it"
                )

    def tag_ids(self, frame: pd.DataFrame) -> list[list[int]]:
        index = {tag: i for i, tag in enumerate(self.labels)}
        return [[index[tag] for tag in tags] for tags in frame[TAGS]]

    def targets(self, frame: pd.DataFrame) -> list[list[int]]:
        """The tag ids of each row's tokens."""
        return self.tag_ids(frame)

    def clean_text(self, text: str) -> str:
        return text  # words are split as written; the tokenizer sees each one as is

    # -- data checks ---------------------------------------------------------------------

    def diagnose(
        self, frames: dict[str, pd.DataFrame], find_label_errors: bool, seed: int
    ) -> dict[str, Any]:
        """The doctor's text checks (duplicates, leakage, quality) plus tag statistics."""

        report = diagnose(frames, TEXT, None, find_label_errors=False, seed=seed)
        report["tagging"] = {}
        for split, frame in frames.items():
            source = frame.attrs.get("source")
            written = self.input_schemes.get(source, self.scheme)
            tags = Counter(tag for row in frame[TAGS] for tag in row)
            spans = Counter(
                kind for row in frame[TAGS] for _, _, kind in spans_from_tags(row, self.scheme)
            )
            report["tagging"][split] = {
                "scheme_in_file": written,
                "tokens": int(frame[TOKENS].map(len).sum()),
                "tags": dict(tags.most_common()),
                "entities": dict(spans.most_common()) if self.scheme in ENTITY_SCHEMES else {},
                "broken_sequences": {
                    "rows": len(frame.attrs.get("broken_rows", [])),
                    "first_rows": frame.attrs.get("broken_rows", [])[:20],
                    "repaired": self.repair,
                },
                "empty_rows_dropped": len(frame.attrs.get("empty_rows", [])),
                "misaligned_spans": frame.attrs.get("misaligned_spans", 0),
                "nested_spans": frame.attrs.get("nested_spans", 0),
            }
        return report

    def doctor_lines(self, report: dict[str, Any]) -> list[str]:
        lines = []
        for split, s in report.get("tagging", {}).items():
            texts = report.get("splits", {}).get(split)
            found = [", ".join(split_findings(texts)) if texts else "", f"{s['tokens']:,} tokens"]
            if s["entities"]:
                found.append(", ".join(f"{n:,} {k}" for k, n in s["entities"].items()))
            elif s.get("tags"):  # part of speech, segmentation: the tags themselves
                common = ", ".join(f"{k} {n:,}" for k, n in list(s["tags"].items())[:3])
                many = len(s["tags"]) > 1
                found.append(f"{len(s['tags'])} tag{'s, the most frequent' if many else ':'} "
                             f"{common}")  # fmt: skip
            broken = s["broken_sequences"]
            if broken["rows"]:
                rows = ", ".join(map(str, broken["first_rows"][:5]))
                found.append(f"{broken['rows']} rows with broken tag sequences (e.g. rows {rows})")
            if s["misaligned_spans"]:
                n = s["misaligned_spans"]
                found.append(f"{n} span{'s' if n > 1 else ''} widened to token boundaries")
            if s.get("nested_spans"):
                n = s["nested_spans"]
                found.append(f"{n} span{'s' if n > 1 else ''} inside a longer one left out")
            lines.append(f"data doctor: {split}: " + "; ".join(part for part in found if part))
        return lines + leakage_lines(report)

    def clean(
        self, frame: pd.DataFrame, clean: Any, is_training: bool
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Drop exact duplicate training rows (same tokens, same tags); offsets stay intact."""
        if not (is_training and clean.drop_duplicates):
            return frame, {}
        keys = frame[TOKENS].map(tuple) + frame[TAGS].map(tuple)
        duplicated = keys.duplicated()
        kept = frame[~duplicated]
        kept.attrs = dict(frame.attrs)
        if duplicated.any():
            log.warning("%s: dropped %d duplicate row(s) (same tokens and tags as an earlier row)",
                        frame.attrs.get("source"), int(duplicated.sum()))  # fmt: skip
        return kept, {"duplicates": int(duplicated.sum())}

    # -- model and features --------------------------------------------------------------

    def build_model(self, source: str, **load_kwargs: Any) -> Any:
        return load_head_model(
            self.auto_model_class(),
            source,
            num_labels=len(self.labels),
            id2label=dict(enumerate(self.labels)),
            label2id={tag: i for i, tag in enumerate(self.labels)},
            **load_kwargs,
        )

    def token_lengths(self, frame: pd.DataFrame, tokenizer: Any) -> np.ndarray:
        encoded = tokenizer(
            frame[TOKENS].tolist(), is_split_into_words=True, truncation=False, verbose=False
        )
        return np.array([len(ids) for ids in encoded["input_ids"]])

    def encode(self, frame: pd.DataFrame, tokenizer: Any, max_length: int) -> Any:
        def encode_chunk(rows: pd.DataFrame) -> dict[str, list]:
            features, _, _ = build_windows(
                tokenizer, rows[TOKENS].tolist(), max_length, self.stride, self.tag_ids(rows),
                self.label_all_subtokens,
            )  # fmt: skip
            return features

        return encoded_dataset(frame, encode_chunk)

    def loss_function(
        self, train: pd.DataFrame, class_weights: str = "auto", label_smoothing: float = 0.0
    ) -> tuple[Any, dict[str, Any]]:
        return None, {"class_weights": None, "label_smoothing": 0.0}

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORE)

    def trainer_setup(
        self, model: Any, tokenizer: Any, loss: Any, train: Any, validation: Any
    ) -> TrainerSetup:
        return standard_trainer_setup(self, tokenizer, loss, validation is not None)

    def forward(
        self, model: Any, tokenizer: Any, frame: pd.DataFrame, max_length: int,
        batch_size: int, precision: str = "fp32",
    ) -> list[np.ndarray]:  # fmt: skip
        """Per-word logits ``(words, tags)`` of every row, long rows read in windows."""

        token_rows = frame[TOKENS].tolist()
        features, windows, word_ids = build_windows(tokenizer, token_rows, max_length, self.stride)
        cut = len(features["input_ids"]) > len(token_rows)  # rows longer than max_length
        unit = f"windows of {max_length} tokens" if cut else "rows"
        logits = forward_in_batches(model, tokenizer, features, batch_size, precision,
                                    ragged=True, margin=top_two_gap, unit=unit)  # fmt: skip
        return merge_windows(windows, word_ids, [len(t) for t in token_rows], logits)

    # -- metrics and predictions ---------------------------------------------------------

    def preprocess_logits(self, logits: Any, labels: Any) -> Any:
        """Keep only the arg-max tag per token, so evaluation does not hold all logits."""
        if isinstance(logits, tuple):
            logits = logits[0]
        return logits.argmax(dim=-1)

    def _decode(self, ids: Any) -> list[str]:
        return [self.labels[int(i)] for i in ids]

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        predicted, label_ids = np.asarray(eval_pred[0]), np.asarray(eval_pred[1])
        gold, pred = [], []
        for p_row, g_row in zip(predicted, label_ids, strict=True):
            keep = g_row != IGNORE
            gold.append(self._decode(g_row[keep]))
            pred.append(self._decode(p_row[keep]))
        scores = sequence_metrics(gold, pred, self.scheme)
        return {k: float(v) for k, v in scores.items() if isinstance(v, (int, float))}

    def calibrate(self, outputs: list[np.ndarray], frame: pd.DataFrame) -> dict[str, Any]:
        return {}

    def learning_warning(
        self, scores: dict[str, Any], examples: int, before: dict[str, Any] | None = None
    ) -> str | None:
        """A sentence when the tagger found nothing (every token O) or next to nothing (an
        entity or word F1 within sampling noise of zero: the noise classification's check
        uses, max(0.02, 1/sqrt(rows))), else ``None``."""
        value = scores.get(self.main_metric)
        if value is None:
            return None
        value = float(value)
        noise = max(0.02, 1.0 / math.sqrt(max(examples, 1))) if self.scheme != "plain" else 0.0
        if value > noise:
            return None
        if value > 0.0:
            found = (f"next to nothing ({self.main_metric} {value:.3f} on {examples} rows, "
                     f"within noise of zero: {noise:.3f})")  # fmt: skip
        elif self.scheme != "plain":
            found = f"no entity: it tags every token O ({self.main_metric} 0 on {examples} rows)"
        else:
            found = f"no tag right ({self.main_metric} 0 on {examples} rows)"
        return (
            f"the tagger found {found}; try a higher training.learning_rate, more epochs or "
            "a pretrained model (--model)"
        )

    def baseline_outputs(self, splits: dict[str, pd.DataFrame], seed: int = 0) -> dict[str, Any]:
        """What the training rows' tags alone predict on the validation and test rows
        (:mod:`tunelab.models.tag_memory`), as one-hot per-word outputs."""
        train = splits["train"]
        memory = TagMemory(self.scheme).fit(train[TOKENS].tolist(), train[TAGS].tolist())
        index = {tag: i for i, tag in enumerate(self.labels)}
        unknown = index.get("O", 0)  # a tag the labels lack (none should): no entity
        outputs: dict[str, list[np.ndarray]] = {}
        for name in ("validation", "test"):
            if name not in splits:
                continue
            rows = []
            for tokens in splits[name][TOKENS]:
                ids = [index.get(tag, unknown) for tag in memory.tag(list(tokens))]
                one_hot = np.zeros((len(ids), len(self.labels)), np.float32)
                one_hot[np.arange(len(ids)), ids] = 1.0
                rows.append(one_hot)
            outputs[name] = rows
        return outputs

    def evaluate_outputs(self, outputs: list[np.ndarray], frame: pd.DataFrame) -> dict[str, Any]:
        gold = frame[TAGS].tolist()
        pred = [self._decode(row.argmax(axis=-1)) for row in outputs]
        result: dict[str, Any] = {"examples": len(frame)}
        result.update(sequence_metrics(gold, pred, self.scheme))
        if self.scheme in ENTITY_SCHEMES:
            result["confusion"] = span_confusion(gold, pred, self.scheme)
        return result

    def _spans(self, tags: list[str], probabilities: np.ndarray, row: pd.Series) -> list[dict]:
        text, tokens, starts = row[TEXT], row[TOKENS], row[STARTS]
        found = []
        for start, end, kind in spans_from_tags(tags, self.scheme):
            first, last = starts[start], starts[end - 1] + len(tokens[end - 1])
            record = {"text": text[first:last], "start": int(first), "end": int(last)}
            if self.scheme != "bmes":
                record = {**record, "label": kind}
            record["score"] = round(float(probabilities[start:end].max(axis=-1).mean()), 6)
            found.append(record)
        return found

    def predictions(self, outputs: list[np.ndarray], frame: pd.DataFrame) -> list[dict[str, Any]]:
        records = []
        has_gold = TAGS in frame.columns
        for (_, row), logits in zip(frame.iterrows(), outputs, strict=True):
            probabilities = m.softmax(logits) if len(logits) else logits
            tags = self._decode(logits.argmax(axis=-1)) if len(logits) else []
            record: dict[str, Any] = {"text": row[TEXT], "tokens": list(row[TOKENS]), "tags": tags}
            if self.scheme in ENTITY_SCHEMES:
                record["entities"] = self._spans(tags, probabilities, row)
            elif self.scheme == "bmes":
                record["words"] = self._spans(tags, probabilities, row)
            if has_gold:
                record["gold_tags"] = list(row[TAGS])
            records.append(record)
        return records
