"""Generation: text in, text out, with seq2seq models or causal (decoder-only) models.

``seq2seq`` (T5, BART, Marian, ...) reads ``source`` and learns ``target``. ``causal-lm``
(Llama, Qwen, GPT-2 shapes) learns the answer of a prompt/completion pair or of a chat in
the OpenAI ``messages`` format, rendered with the tokenizer's chat template, with the
loss on assistant tokens only; short rows are packed padding-free by default. Both pick
checkpoints by validation loss and score generated text after training.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from typing_extensions import Self  # typing.Self from Python 3.11

from tunelab.data.chat_formats import CONVERSATIONS, INSTRUCTION, OUTPUT
from tunelab.data.columns import holds_lists
from tunelab.data.doctor import diagnose, leakage_lines, split_findings
from tunelab.data.tool_calls import CALL_OPEN, parse_calls
from tunelab.data.tool_template import holds_tools, with_tool_rendering
from tunelab.errors import UserError
from tunelab.evaluation import report_generation
from tunelab.evaluation.generation import generation_metrics
from tunelab.inference import Generations, generate_in_batches
from tunelab.models.load import from_pretrained, model_length_limit
from tunelab.tasks.answer_logits import answer_logits_trainer, answer_loss, is_prompt_learning
from tunelab.tasks.arrow_rows import encoded_dataset
from tunelab.tasks.base import DataFit, StandardColumn, TrainerSetup, standard_trainer_setup
from tunelab.tasks.causal_encoding import (
    chat_text_and_spans,
    encode_with_mask,
    fitted_prompt_ids,
    plain_text_and_spans,
)
from tunelab.tasks.generation_inputs import MESSAGES, SOURCE, TARGET, standardize_pairs
from tunelab.tasks.packing import PackingCollator
from tunelab.tasks.stop_tokens import check_stop_tokens, closing_token
from tunelab.tasks.token_windows import IGNORE

log = logging.getLogger("tunelab")
ANSWER_SAMPLE = 10_000  # training answers tokenised to compare with max_new_tokens
LONGER_ANSWERS = 0.1  # a warning when more than this share of them is longer
NEW_TOKENS = 128  # generation.max_new_tokens where neither the config nor the data set it
# generation.max_new_tokens left unset: the training answers' 99th percentile and a quarter
# more, rounded up to a multiple of 8, within these bounds (long answers cost CPU time)
AUTO_NEW_TOKENS = (16, 256)
PROBLEMS = {  # the share of answers in a scores dict (degenerate_shares, eos_ending_share)
    "empty_share": "are empty",
    "same_output_share": "are the same text",
    "looping_share": "are one phrase repeated",
    "ending_early_share": "run to max_new_tokens without a stop token",
}


def problem_shares(scores: dict[str, Any], examples: int, above: float = 0.5) -> dict[str, float]:
    """The :data:`PROBLEMS` that more than ``above`` of the answers have, each with its share
    (none under five answers): ``ending_early_share`` is the share that never stopped."""
    if examples < 5:
        return {}
    shares = {key: float(scores.get(key, 0.0)) for key in list(PROBLEMS)[:3]}
    if "eos_ending_share" in scores:
        shares["ending_early_share"] = 1.0 - float(scores["eos_ending_share"])
    return {key: share for key, share in shares.items() if share > above}


def said_problems(shares: dict[str, float]) -> str:
    """:func:`problem_shares` as one clause: ``80% of the outputs are empty; ...``."""
    return "; ".join(f"{100 * share:.0f}% of the outputs {PROBLEMS[key]}"
                     for key, share in shares.items())  # fmt: skip


def generation_doctor_lines(report: dict[str, Any]) -> list[str]:
    """The doctor's lines for input/target pairs: each split's rows, its duplicate pairs, the
    rows that give an earlier input another target (several references, kept), its near-
    duplicate inputs, and leakage of inputs between splits."""
    lines = []
    for name, split in report["splits"].items():
        targets = report.get("targets", {}).get(name, {})
        if "duplicate_pairs" not in targets:  # rows without a target column (chats)
            lines.append(f"data doctor: {name}: " + ", ".join(split_findings(split)))
            continue
        found = split_findings(split, duplicates=False)
        exact = split["duplicates"]["exact_duplicates"]
        near = split["duplicates"]["near_duplicates"]
        pairs, repeated = targets["duplicate_pairs"], targets["repeated_inputs"]
        if pairs:
            plural = "" if pairs == 1 else "s"
            noun, same = targets["duplicates_are"]
            what = f"chat{plural}" if targets.get("chats") else f"{noun}{plural} ({same})"
            found.append(f"{pairs:,} duplicate {what}")
        if repeated > pairs:
            rows = "row gives" if repeated - pairs == 1 else "rows give"
            found.append(f"{repeated - pairs:,} {rows} an earlier input another target "
                         "(several references per input)")  # fmt: skip
        if near > exact:
            found.append(f"{near - exact:,} near-duplicate inputs")
        if targets.get("tool_calls"):
            found.append(f"{targets['tool_calls']:,} chats answered with a tool call (scored "
                         "by tool_call_exact)")  # fmt: skip
        lines.append(f"data doctor: {name}: " + ", ".join(found))
    return lines + leakage_lines(report)


def _trained_rows(frame: pd.DataFrame) -> pd.Series:
    """What a row trains on, as text to compare: the whole chat where the row is a chat (a
    tool chat's reference is a call in its middle, and chats alike up to it may differ
    after), else its input and target as the one-turn chat they train as, so a pair and the
    same chat from another file (Alpaca beside ShareGPT) compare equal."""
    chats = frame[MESSAGES] if MESSAGES in frame.columns else pd.Series(None, index=frame.index)
    targets = frame[TARGET] if TARGET in frame.columns else pd.Series(None, index=frame.index)
    keys = []
    for chat, source, target in zip(chats, frame[SOURCE], targets, strict=True):
        if not isinstance(chat, list):
            chat = [{"role": "user", "content": str(source)},
                    {"role": "assistant", "content": str(target)}]  # fmt: skip
        keys.append(json.dumps(chat, ensure_ascii=False))
    return pd.Series(keys, index=frame.index)


class _Generation:
    """What both generation shapes share: inputs, settings, decoding, metrics, records."""

    name = ""
    text_pair_column: str | None = None  # no pairs: the protocol allows one
    problem_type = "generation"
    main_metric = "loss"  # checkpoints by validation loss; text metrics after training
    judged_by: tuple[str, ...] = ("chrf", "rougeL", "bleu")  # the text scores logs name
    explains = None  # attributions of generated text are not offered
    # generates token by token: served by PyTorch, not one ONNX graph; causal models go to GGUF
    exportable: tuple[str, ...] = ()
    onnx_graph = None
    embeds = False
    search_batch_sizes = (8, 16, 32)  # longer rows: smaller batches
    # (share of the training answers longer than max_new_tokens, their 95th percentile in
    # tokens), from answer_room: answers cut at the limit are no sign the model cannot stop
    longer_answers: tuple[float, int] | None = None
    # what a duplicate row repeats, in the doctor's and the cleaning's words
    repeated_row_words = "input and target"
    # rows that give an earlier input another target are several references, said apart
    inputs_repeat_as_references = True
    report_sections = staticmethod(report_generation.sections)
    baseline_method = ""  # benchmarks/ has a translation memory; none is built in
    trains_few_shot = False
    takes_virtual_tokens = True
    batch_tokens_from_rows = False  # decoders' embeddings are mostly tied to the output layer
    doctor_checks = None  # the doctor runs training's diagnose of pairs and chats
    input_kind = "text"

    def processor_class(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer

    @staticmethod
    def main_metric_of(metadata: dict[str, Any]) -> str:
        """The main metric of a saved model with this ``config.tunelab`` metadata."""
        return "loss"

    greater_is_better = False
    evaluated_splits = ("test",)  # generating for validation would only cost time
    allow_messages = False
    # the input shapes that are this task's own convention (recognise): seq2seq data is
    # source/target; OpenAI's fine-tuning files for causal models are prompt/completion or chats,
    # and LLaMA-Factory's are Alpaca rows or ShareGPT chats
    own_shapes: tuple[str, ...] = ()

    def __init__(
        self,
        source_column: str = "source",
        target_column: str = "target",
        messages_column: str = "messages",
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.source_column = source_column
        self.target_column = target_column
        self.messages_column = messages_column
        self.settings: dict[str, Any] = {
            "prefix": "",
            "max_target_length": 128,
            "max_new_tokens": None,  # None: sized by answer_room, else NEW_TOKENS
            "num_beams": 1,
            "length_penalty": 1.0,
            "no_repeat_ngram_size": 0,
            "packing": True,
            "check_stop_tokens": True,
            "score_before": None,
            **(settings or {}),
        }

    @property
    def scored_before_training(self) -> bool | None:
        """``generation.score_before``: generating for the test rows twice doubles the time, so
        by default (``None``) only a model that can already answer (a chat model) is scored."""
        setting = self.settings.get("score_before")
        return None if setting is None else bool(setting)

    @classmethod
    def from_run_config(cls, config: Any) -> Self:
        """Build from a :class:`tunelab.config.RunConfig`."""
        options = config.generation
        return cls(
            options.source_column,
            options.target_column,
            options.messages_column,
            options.model_dump(exclude={"source_column", "target_column", "messages_column"}),
        )

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], model_config: Any) -> Self:
        """Rebuild from the metadata a trained model carries in its ``config.json``."""
        return cls(
            meta.get("source_column", "source"),
            meta.get("target_column", "target"),
            meta.get("messages_column", "messages"),
            meta.get("settings"),
        )

    # Shared code reads the standardized frame; a user's --text-column names their column.
    text_column = StandardColumn(SOURCE, "source_column")
    label_column = StandardColumn(TARGET, "target_column")

    def required_columns(self, with_labels: bool = True) -> dict[str, str]:
        columns = {SOURCE: "generation.source_column"}
        if with_labels:
            columns[TARGET] = "generation.target_column"
        return columns

    def metadata(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "source_column": self.source_column,
            "target_column": self.target_column,
            "messages_column": self.messages_column,
            "settings": self.settings,
        }

    def recognise(self, frame: pd.DataFrame, given: frozenset[str]) -> DataFit | None:
        """Source and target columns, prompt and completion columns, Alpaca instruction and
        output columns, or (causal-lm) chats, ShareGPT's among them: a shape is strength 2 for
        the task it is the convention of (``own_shapes``), 1 for the other generation task,
        which reads it too."""
        columns = set(map(str, frame.columns))
        shapes = {
            "source/target": {self.source_column, self.target_column} <= columns,
            "prompt/completion": {"prompt", "completion"} <= columns,
            "messages": self.allow_messages and holds_lists(frame, self.messages_column),
            "conversations": self.allow_messages and holds_lists(frame, CONVERSATIONS),
            "alpaca": {INSTRUCTION, OUTPUT} <= columns,
        }
        found = [shape for shape, present in shapes.items() if present]
        if not found:
            return None
        own = [shape for shape in found if shape in self.own_shapes]
        shape = (own or found)[0]
        names = {"source/target": f"'{self.source_column}'/'{self.target_column}' columns",
                 "prompt/completion": "'prompt'/'completion' columns",
                 "messages": f"chats in '{self.messages_column}'",
                 "conversations": f"ShareGPT chats in '{CONVERSATIONS}'",
                 "alpaca": f"Alpaca '{INSTRUCTION}'/'{OUTPUT}' columns"}  # fmt: skip
        return DataFit(2 if own else 1, names[shape])

    def standardize(self, frame: pd.DataFrame, with_labels: bool = True) -> pd.DataFrame:
        return standardize_pairs(
            frame, self.source_column, self.target_column, self.messages_column, with_labels,
            self.allow_messages,
        )  # fmt: skip

    @property
    def labels(self) -> list[str]:
        """None: a generator writes text."""
        return []

    def clean_text(self, text: str) -> str:
        return text  # prompts reach the model as written

    def targets(self, frame: pd.DataFrame) -> list[str]:
        """The target texts of standardized rows."""
        return frame[TARGET].astype(str).tolist()

    def fit_labels(self, train: pd.DataFrame) -> None:
        return None

    def check_labels(self, frame: pd.DataFrame) -> None:
        return None

    def diagnose(
        self, frames: dict[str, pd.DataFrame], find_label_errors: bool, seed: int
    ) -> dict[str, Any]:
        """Duplicates, leakage and text quality of the sources (the doctor's text checks)."""

        report = diagnose(frames, SOURCE, None, find_label_errors=False, seed=seed)
        report["targets"] = {
            split: {
                "empty": int((frame[TARGET].str.strip() == "").sum()),
                "mean_characters": float(frame[TARGET].str.len().mean()),
                # a duplicate repeats the whole row: a data set with several references per
                # input (E2E, translation sets) repeats inputs on purpose
                "duplicate_pairs": int(self.row_keys(frame).duplicated().sum()),
                "repeated_inputs": int(frame[SOURCE].astype(str).duplicated().sum())
                if self.inputs_repeat_as_references
                else 0,
                "duplicates_are": ("pair", f"same {self.repeated_row_words}"),
                "chats": MESSAGES in frame.columns,
                # chats whose answer scored is a tool call (tunelab.data.tool_calls)
                "tool_calls": int(sum(CALL_OPEN in str(target) for target in frame[TARGET])),
            }
            for split, frame in frames.items()
            if TARGET in frame.columns
        }
        return report

    def doctor_lines(self, report: dict[str, Any]) -> list[str]:
        return generation_doctor_lines(report)

    def row_keys(self, frame: pd.DataFrame) -> pd.Series:
        """What each row trains on, as text to compare: equal keys are duplicates."""
        return _trained_rows(frame)

    def clean(
        self, frame: pd.DataFrame, clean: Any, is_training: bool
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Drop exact duplicate training rows (:meth:`row_keys`)."""
        if not (is_training and clean.drop_duplicates):
            return frame, {}
        duplicated = self.row_keys(frame).duplicated()
        kept = frame[~duplicated]
        kept.attrs = dict(frame.attrs)
        if duplicated.any():
            same = "chat" if MESSAGES in frame.columns else self.repeated_row_words
            log.warning("%s: dropped %d duplicate row(s) (the same %s as an earlier row)",
                        frame.attrs.get("source"), int(duplicated.sum()), same)  # fmt: skip
        return kept, {"duplicates": int(duplicated.sum())}

    def loss_function(
        self, train: pd.DataFrame, class_weights: str = "auto", label_smoothing: float = 0.0
    ) -> tuple[Any, dict[str, Any]]:
        return None, {}

    def preprocess_logits(self, logits: Any, labels: Any) -> Any:
        return logits

    def trainer_setup(
        self, model: Any, tokenizer: Any, loss: Any, train: Any, validation: Any
    ) -> TrainerSetup:
        setup = standard_trainer_setup(self, tokenizer, loss, validation is not None)
        self.check_stops(model, tokenizer, train, setup.inputs["data_collator"])
        return setup

    def check_stops(self, model: Any, tokenizer: Any, train: Any, collator: Any) -> None:
        """Before training, whether the model will learn to stop (seq2seq targets end in EOS
        by construction; causal models check their template and batches)."""
        return None

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        return {}

    def calibrate(self, outputs: Any, frame: pd.DataFrame) -> dict[str, Any]:
        return {}

    def stop_ids(self, tokenizer: Any) -> list[int]:
        """Token ids that end an answer: EOS, and the end-of-turn token of a chat template."""
        return [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []

    def finish(self, model: Any, tokenizer: Any) -> None:
        """Store the decoding settings in the model's generation config before it is saved,
        so ``pipeline(...)`` and ``model.generate`` decode like ``tunelab predict``."""
        for key, value in self.generation_kwargs(tokenizer).items():
            setattr(model.generation_config, key, value)
        model.generation_config.eos_token_id = self.stop_ids(tokenizer)

    def generation_kwargs(self, tokenizer: Any) -> dict[str, Any]:
        s = self.settings
        kwargs = {
            "max_new_tokens": self.new_tokens,
            "num_beams": s["num_beams"],
            "do_sample": False,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": self.stop_ids(tokenizer),
        }
        if s["num_beams"] > 1:
            kwargs["length_penalty"] = s["length_penalty"]
        if s["no_repeat_ngram_size"]:
            kwargs["no_repeat_ngram_size"] = s["no_repeat_ngram_size"]
        return kwargs

    def evaluate_outputs(self, outputs: list[str], frame: pd.DataFrame) -> dict[str, Any]:
        references = frame[TARGET].tolist()[: len(outputs)]
        stopped = getattr(outputs, "stopped", [])
        # the share of answers that ended with EOS / end of turn before max_new_tokens: a
        # model that never learned to stop talks on to the limit
        ending = {"eos_ending_share": sum(stopped) / len(stopped)} if stopped else {}
        return {
            "examples": len(outputs),
            **generation_metrics(outputs, references),
            **degenerate_shares(outputs),
            **ending,
        }

    def learning_warning(
        self, scores: dict[str, Any], examples: int, before: dict[str, Any] | None = None
    ) -> str | None:
        """A sentence when most generations are empty, identical, looping or run on to
        ``max_new_tokens``, else ``None``; answers the limit cut where the training answers are
        as long get their own sentence (raise the limit), not the blame."""
        problems, cut = self.answer_problems(scores, examples)
        if not problems:
            return cut
        return (
            said_problems(problems) + ": the model has not learned to answer; try more epochs, "
            "a higher training.learning_rate or a larger pretrained model (--model)"
            + (f"; and {cut}" if cut else "")
        )

    def answer_problems(
        self, scores: dict[str, Any], examples: int
    ) -> tuple[dict[str, float], str | None]:
        """What is wrong with most generated answers (:func:`problem_shares`: empty,
        identical, looping, or running to ``max_new_tokens`` without a stop token), and apart,
        the sentence for answers that ran to the limit where the training answers longer than
        it explain them (:meth:`_cut_answers_note`), which is no sign the model cannot stop."""
        shares = problem_shares(scores, examples)
        cut = self._cut_answers_note(shares.get("ending_early_share"))
        if cut:
            del shares["ending_early_share"]
        return shares, cut

    def _cut_answers_note(self, running_on: float | None) -> str | None:
        """Where a share ``running_on`` of the answers ran to ``max_new_tokens`` and most of
        the answers that would fit the limit (as many as the training answers that do) still
        stopped, the sentence that says the limit cut them (raise it to judge them); else
        ``None``."""
        if running_on is None or self.longer_answers is None:
            return None
        longer, p95 = self.longer_answers
        # at least this share of the answers with room to end ran on anyway
        fitting_ran_on = (running_on - longer) / (1.0 - longer) if longer < 1.0 else 0.0
        if longer <= LONGER_ANSWERS or fitting_ran_on > 0.5:
            return None
        return (
            f"{100 * running_on:.0f}% of the outputs run to max_new_tokens without a stop "
            f"token, where {100 * longer:.0f}% of the training answers are longer than its "
            f"{self.new_tokens} tokens: raise generation.max_new_tokens to {p95} (their 95th "
            "percentile) to judge whether the answers end"
        )

    @property
    def new_tokens(self) -> int:
        """``generation.max_new_tokens``: as set, as :meth:`answer_room` sized it from the
        training answers, or :data:`NEW_TOKENS`."""
        return int(self.settings.get("max_new_tokens") or NEW_TOKENS)

    def answer_room(self, train: pd.DataFrame, tokenizer: Any) -> dict[str, Any] | None:
        """How the training answers' token lengths (up to 10,000 rows) compare with
        ``max_new_tokens``. Left unset, it is sized to them (:data:`AUTO_NEW_TOKENS`: a cut
        answer is scored short and counted as never stopping, and room a model never needs
        is time spent on answers that ramble); where more than a tenth are longer than it,
        a warning says so."""
        if TARGET not in train.columns or not len(train):
            return None
        answers = train[TARGET].dropna().astype(str)
        answers = answers.sample(min(len(answers), ANSWER_SAMPLE), random_state=0)
        if not len(answers):
            return None
        encoded = tokenizer(answers.tolist(), add_special_tokens=False, verbose=False)
        lengths = np.array([len(ids) + 1 for ids in encoded["input_ids"]])  # + the stop token
        p95, p99 = (int(np.percentile(lengths, q)) for q in (95, 99))
        sized = self.settings.get("max_new_tokens") is None
        if sized:
            low, high = AUTO_NEW_TOKENS
            room = max(low, -(-p99 * 5 // 4) // 8 * 8 + 8)
            self.settings["max_new_tokens"] = min(high, room)
            why = (
                "room for the training answers" if room <= high else
                "its automatic ceiling, as generating each held-out answer takes time in step "
                "with it"
            )  # fmt: skip
            log.info(
                "generation.max_new_tokens auto: %d, %s (the training answers' 99th percentile "
                "is %d tokens; --set generation.max_new_tokens=... overrides it)",
                self.new_tokens, why, p99,
            )  # fmt: skip
        cap = self.new_tokens
        longer = float((lengths > cap).mean())
        self.longer_answers = longer, p95
        if longer > LONGER_ANSWERS:
            log.warning(
                "generation.max_new_tokens is %d and %.0f%% of the training answers are longer "
                "(95th percentile %d tokens): generated answers are cut there, scored short and "
                "counted as not stopping; raise it with --set generation.max_new_tokens=%d",
                cap, 100 * longer, p95, p95,
            )  # fmt: skip
        return {"p95": p95, "p99": p99, "max_new_tokens": cap, "longer_share": round(longer, 4),
                "sized": sized}  # fmt: skip

    def baseline_outputs(self, splits: dict[str, pd.DataFrame], seed: int = 0) -> dict[str, Any]:
        """No built-in baseline for generation (benchmarks/ has a translation memory)."""
        return {}

    def predictions(self, outputs: list[str], frame: pd.DataFrame) -> list[dict[str, Any]]:
        records = []
        for (_, row), output in zip(frame.iterrows(), outputs, strict=False):
            record = {"source": row[SOURCE], "output": output}
            if TARGET in frame.columns and isinstance(row[TARGET], str):  # not a bare question
                record["reference"] = row[TARGET]
            calls = parse_calls(output) if CALL_OPEN in output else []
            if calls:  # the calls as data, for code that runs them
                record["tool_calls"] = calls
            records.append(record)
        return records


LOOP = re.compile(r"(.{2,30}?)\1{3,}", re.DOTALL)  # a phrase four or more times in a row


def degenerate_shares(outputs: list[str]) -> dict[str, float]:
    """Shares of generations that are empty, all the same text, or stuck in a loop."""
    if not outputs:
        return {}
    stripped = [o.strip() for o in outputs]
    most_common = max(Counter(stripped).values())
    return {
        "empty_share": sum(not o for o in stripped) / len(outputs),
        "same_output_share": most_common / len(outputs) if len(outputs) > 1 else 0.0,
        "looping_share": sum(bool(LOOP.search(o)) for o in stripped) / len(outputs),
    }


class Seq2SeqGeneration(_Generation):
    """Encoder-decoder models: the source goes in, the target is learned and generated."""

    name = "seq2seq"
    own_shapes = ("source/target",)
    model_kind = "seq2seq"
    packs_rows = False

    def auto_model_class(self) -> Any:
        from transformers import AutoModelForSeq2SeqLM

        return AutoModelForSeq2SeqLM

    def build_model(self, source: str, **load_kwargs: Any) -> Any:
        return from_pretrained(self.auto_model_class(), source, **load_kwargs)

    def _sources(self, frame: pd.DataFrame) -> list[str]:
        return [self.settings["prefix"] + text for text in frame[SOURCE]]

    def token_lengths(self, frame: pd.DataFrame, tokenizer: Any) -> np.ndarray:
        encoded = tokenizer(self._sources(frame), truncation=False, verbose=False)
        return np.array([len(ids) for ids in encoded["input_ids"]])

    def encode(self, frame: pd.DataFrame, tokenizer: Any, max_length: int) -> Any:
        return encoded_dataset(frame, lambda rows: self._encode_rows(rows, tokenizer, max_length))

    def _encode_rows(self, frame: pd.DataFrame, tokenizer: Any, max_length: int) -> dict:
        features = dict(tokenizer(self._sources(frame), truncation=True, max_length=max_length))
        targets = tokenizer(
            text_target=frame[TARGET].tolist(), truncation=True,
            max_length=self.settings["max_target_length"],
        )  # fmt: skip
        eos = tokenizer.eos_token_id
        # a tokenizer without a post-processor (GPT-2/Llama BPE) adds no EOS; without one
        # in the targets the decoder never learns to stop
        features["labels"] = [
            ids if eos is None or (ids and ids[-1] == eos) else [*ids, eos]
            for ids in targets["input_ids"]
        ]
        features.pop("token_type_ids", None)
        features["length"] = [len(ids) for ids in features["input_ids"]]
        return features

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorForSeq2Seq

        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE)

    def forward(
        self, model: Any, tokenizer: Any, frame: pd.DataFrame, max_length: int,
        batch_size: int, precision: str = "fp32",
    ) -> Generations:  # fmt: skip
        """Generated text for every row, in length-sorted batches."""

        encoded = tokenizer(self._sources(frame), truncation=True, max_length=max_length)
        prompts = [list(ids) for ids in encoded["input_ids"]]
        return generate_in_batches(
            model, tokenizer, prompts, batch_size, precision, self.generation_kwargs(tokenizer),
            decoder_only=False,
        )  # fmt: skip


class CausalGeneration(_Generation):
    """Decoder-only models tuned on prompt/completion pairs or chats; loss on answers only."""

    name = "causal-lm"
    model_kind = "causal"
    exportable = ("gguf",)  # llama.cpp / Ollama (tunelab.serving.gguf_export)
    allow_messages = True
    own_shapes = ("messages", "conversations", "alpaca", "prompt/completion")
    max_length = 512  # set by encode
    trained_tools = False  # set by encode: a chat listed tools, called one or read a result

    def auto_model_class(self) -> Any:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM

    def build_model(self, source: str, **load_kwargs: Any) -> Any:
        model = from_pretrained(self.auto_model_class(), source, **load_kwargs)
        if self.settings["packing"]:
            # Rows packed into one sequence are kept apart by a block-diagonal mask built
            # from the restarting position ids, and transformers builds it only when no
            # KV cache is in play: training must not create one.
            model.config.use_cache = False
        return model

    @property
    def packs_rows(self) -> bool:
        return bool(self.settings["packing"])

    def trainer_setup(
        self, model: Any, tokenizer: Any, loss: Any, train: Any, validation: Any
    ) -> TrainerSetup:
        """The plain setup, with logits at the answer tokens only
        (:mod:`tunelab.tasks.answer_logits`) unless adapters add virtual tokens."""
        setup = super().trainer_setup(model, tokenizer, loss, train, validation)
        if loss is not None or is_prompt_learning(model):
            return setup
        return replace(
            setup, trainer_class=answer_logits_trainer(setup.trainer_class),
            inputs={**setup.inputs, "compute_loss_func": answer_loss},
        )  # fmt: skip

    def finish(self, model: Any, tokenizer: Any) -> None:
        """Generation settings, and a template that renders OpenAI-shaped tools, calls and
        results as the text the model trained on (:mod:`tunelab.data.tool_template`)."""
        model.config.use_cache = True  # generation wants its cache back
        super().finish(model, tokenizer)
        if self.trained_tools and tokenizer.chat_template:
            tokenizer.chat_template = with_tool_rendering(tokenizer.chat_template)

    def check_stops(self, model: Any, tokenizer: Any, train: Any, collator: Any) -> None:
        """The template's closing token, the pad token and the labels of batched training
        rows (:func:`tunelab.tasks.stop_tokens.check_stop_tokens`)."""
        check_stop_tokens(
            model, tokenizer, self.stop_ids(tokenizer), train, collator,
            strict=self.settings["check_stop_tokens"],
        )  # fmt: skip

    def stop_ids(self, tokenizer: Any) -> list[int]:
        """EOS and the token a chat template closes an assistant turn with (``<|im_end|>``),
        found by rendering a one-turn chat: without it, a chat model talks on past its turn."""
        ids = super().stop_ids(tokenizer)
        if tokenizer.chat_template:
            _, token = closing_token(tokenizer)
            if token is not None and token not in ids:
                ids.append(token)
        return ids

    def _texts_and_spans(self, frame: pd.DataFrame, tokenizer: Any) -> list[tuple[str, list]]:
        prefix = self.settings["prefix"]
        rows = []
        for _, row in frame.iterrows():
            messages = row.get(MESSAGES) if MESSAGES in frame.columns else None
            if not isinstance(messages, list):
                messages = [
                    {"role": "user", "content": prefix + row[SOURCE]},
                    {"role": "assistant", "content": row[TARGET]},
                ]
                if not tokenizer.chat_template:
                    rows.append(plain_text_and_spans(tokenizer, prefix + row[SOURCE], row[TARGET]))
                    continue
            elif not tokenizer.chat_template:
                raise UserError(
                    f"{frame.attrs.get('source', 'the data')} holds chats, which are rendered "
                    "with the model's chat template, and this model's tokenizer has none: start "
                    "from a chat model (its tokenizer_config.json has a chat_template), or give "
                    "single-turn rows as prompt/completion (or Alpaca rows without system or "
                    "history), which a base model reads as plain text"
                )
            rows.append(chat_text_and_spans(tokenizer, messages))
        return rows

    def token_lengths(self, frame: pd.DataFrame, tokenizer: Any) -> np.ndarray:
        texts = [text for text, _ in self._texts_and_spans(frame, tokenizer)]
        encoded = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
        return np.array([len(ids) + 1 for ids in encoded["input_ids"]])

    def encode(self, frame: pd.DataFrame, tokenizer: Any, max_length: int) -> Any:
        self.max_length = max_length  # the packing collator fills rows up to it
        if MESSAGES in frame.columns and not self.trained_tools:
            self.trained_tools = any(holds_tools(chat) for chat in frame[MESSAGES])
        return encoded_dataset(frame, lambda rows: self._encode_rows(rows, tokenizer, max_length))

    def _encode_rows(self, frame: pd.DataFrame, tokenizer: Any, max_length: int) -> dict:
        rows = [
            encode_with_mask(tokenizer, text, spans, max_length)
            for text, spans in self._texts_and_spans(frame, tokenizer)
        ]
        # a row whose answer was cut off entirely teaches nothing
        rows = [row for row in rows if any(label != IGNORE for label in row["labels"])]
        return {
            "input_ids": [row["input_ids"] for row in rows],
            "labels": [row["labels"] for row in rows],
            "length": [len(row["input_ids"]) for row in rows],
        }

    def collator(self, tokenizer: Any) -> Any:
        """Rows packed into full-length rows when ``packing`` is on (see
        :mod:`tunelab.tasks.packing`); otherwise right-padded batches."""
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if self.settings["packing"]:
            return PackingCollator(self.max_length, tokenizer.pad_token_id)
        from transformers import DataCollatorForSeq2Seq

        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE, padding=True)

    def forward(
        self, model: Any, tokenizer: Any, frame: pd.DataFrame, max_length: int,
        batch_size: int, precision: str = "fp32",
    ) -> Generations:  # fmt: skip
        """The model's answer to every row's prompt (or chat so far), length-sorted batches."""
        import json

        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        # the prompt may be as long as the model reads less the answer's room (max_length only
        # bounds training rows, for speed, and may be the model's whole limit): plain
        # transformers answers the same prompt alike, and no position runs past the table
        own = model_length_limit(model.config, tokenizer)
        room = own - self.new_tokens if own else 0
        limit = room if room > 0 else max_length
        prompts = []
        for _, row in frame.iterrows():
            context = None
            if MESSAGES in frame.columns and isinstance(row.get(MESSAGES), list):
                context = json.loads(row[SOURCE])
            prompts.append(
                fitted_prompt_ids(tokenizer, context, self.settings["prefix"], row[SOURCE], limit)
            )
        return generate_in_batches(
            model, tokenizer, prompts, batch_size, precision, self.generation_kwargs(tokenizer),
            decoder_only=True,
        )  # fmt: skip
