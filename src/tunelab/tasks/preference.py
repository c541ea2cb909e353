"""Preference tuning of causal models with TRL: DPO and ORPO on chosen/rejected pairs, KTO on
single answers marked good or bad.

Rows are ``prompt`` + ``chosen`` + ``rejected`` (DPO, ORPO) or ``prompt`` + ``completion`` +
``label`` (KTO), each text or OpenAI-format messages. Plain texts become one user turn and one
assistant turn, so every answer is rendered with the model's chat template as ``causal-lm``
renders it, and the tuned model chats, serves and exports like a ``causal-lm`` run. It usually
starts from an SFT run (``model.name: runs/sft/model``) or a base model, with LoRA (then the
reference model of DPO/KTO is the same network with the adapter switched off).

After training it scores held-out pairs: the share whose chosen answer gets the higher mean
token log-probability (meaningful before and after training), the DPO-style implicit reward
``beta * (log p - log p_ref)`` accuracy and margin where a reference exists, and the generation
metrics of its answers against the chosen ones.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd
from typing_extensions import Self  # typing.Self from Python 3.11

from tunelab.data.chat_formats import (
    CONVERSATIONS,
    INSTRUCTION,
    OUTPUT,
    SYSTEM,
    alpaca_messages,
    chat_turn,
    present,
)  # fmt: skip
from tunelab.errors import UserError
from tunelab.inference import Generations
from tunelab.tasks.base import ColumnGuess, DataFit, TrainerSetup
from tunelab.tasks.generation import CausalGeneration, problem_shares, said_problems
from tunelab.tasks.generation_inputs import MESSAGES, SOURCE, TARGET
from tunelab.tasks.stop_tokens import check_stop_tokens

log = logging.getLogger(__name__)

PAIRED = ("dpo", "orpo")
# the doctor warns when the chosen answer is the longer one in this share of pairs (or the
# shorter one): DPO is known to learn length where length separates the answers
LENGTH_BIAS = 0.75
LENGTH_ADVICE = (
    "; a preference model can learn length instead of quality: check that something other "
    "than length separates the answers, or balance them"
)
# tuning that raised held-out preference accuracy by no more than this, and the chosen
# answers' mean log-probability margin (nats per token) by no more than that, learned nothing
ACCURACY_GAIN = 0.005
MARGIN_GAIN = 0.01
# a broken-answer share (looping, never stopping) no more than this above the untuned
# model's was there before tuning: the tuning is not blamed for it
INHERITED = 0.1
# KTO weighs good against bad answers so that weighted good ones are between these multiples
# of the bad ones (the KTO paper's Eq. 8; beyond them, the rarer kind barely trains)
KTO_BALANCE = (1.0, 4 / 3)
REJECTED = "rejected"
LABEL = "label"
PROMPT = "prompt_messages"  # the prompt as messages, JSON text (a frame cell holds no list)


def _messages(value: Any, role: str, where: str) -> list[dict[str, str]]:
    """A text as one ``role`` turn, or messages as they are (OpenAI's or ShareGPT's turns, a
    list or, as LLaMA-Factory writes a ShareGPT answer, one turn)."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        return [chat_turn(m, number, where) for number, m in enumerate(value, start=1)]
    raise UserError(f"{where} is neither a text nor a list of {{role, content}} messages")


def _activation_checkpointing(config: Any) -> dict[str, bool]:
    """TRL's default, recomputing activations in the backward pass, under the name
    transformers 5 reads without a deprecation warning; and TRL's own calls of the old method
    names silenced (a warning for TRL's authors, not for a user). Kept on: turned off, DPO of
    zh-llama-mini on long pairs peaked at 2.1x the memory and ran 1.18x slower
    (``benchmarks/results/preference_batches.json``)."""
    import dataclasses
    import warnings

    warnings.filterwarnings("ignore", message=r"`\w*gradient_checkpointing\w*` is deprecated",
                            category=FutureWarning)  # fmt: skip
    names = {f.name for f in dataclasses.fields(config)}
    return {"activation_checkpointing": True} if "activation_checkpointing" in names else {}


def _token_counts(
    tokenizer: Any, chats: list[tuple[int, list]], rows: int, max_length: int
) -> tuple[list[int], list[int]]:
    """Each training row's padded length as TRL batches it (its longest conversation: a
    pair's two are padded to one length) and its tokens (all its conversations), cut at
    ``max_length``. As the ``length`` column, the first lets training draw batches of similar
    lengths (:func:`tunelab.training.sampling.use_bucketed_sampler`): answers of a few dozen
    to a few thousand tokens otherwise pad every batch to its longest."""
    lengths, tokens = [0] * rows, [0] * rows
    texts = [tokenizer.apply_chat_template(chat, tokenize=False) for _, chat in chats]
    if not texts:
        return lengths, tokens
    encoded = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    for (row, _), ids in zip(chats, encoded, strict=True):
        kept = min(len(ids) + 1, max_length)
        lengths[row] = max(lengths[row], kept)
        tokens[row] += kept
    return lengths, tokens


def _prompt_source(columns: set[str], prompt_column: str) -> tuple[str, str] | None:
    """The column a prompt is read from and how to name it: the prompt column, else a chat
    (``messages``, ShareGPT's ``conversations``), else Alpaca's ``instruction``."""
    if prompt_column in columns:
        return prompt_column, f"prompts in '{prompt_column}'"
    for column in (MESSAGES, CONVERSATIONS):
        if column in columns:
            return column, f"chats in '{column}'"
    if INSTRUCTION in columns:
        return INSTRUCTION, f"Alpaca instructions in '{INSTRUCTION}'"
    return None


def _answer_source(columns: set[str], preference: dict[str, Any], prompt: str) -> str | None:
    """Where a KTO row's one answer is: the completion column, else the last turn of the
    prompt's chat, else Alpaca's ``output``; None when the row has none."""
    if preference["completion_column"] in columns:
        return preference["completion_column"]
    if prompt in (MESSAGES, CONVERSATIONS):
        return prompt
    if prompt == INSTRUCTION and OUTPUT in columns:
        return OUTPUT
    return None


def _answer(value: Any, where: str) -> str:
    """The assistant's text of an answer given as text or as (assistant) messages."""
    turns = _messages(value, "assistant", where)
    if len(turns) != 1 or turns[0]["role"] != "assistant":
        raise UserError(f"{where} must be one assistant answer (text or one assistant message)")
    return turns[0]["content"]


def answer_lengths(chosen: pd.Series, rejected: pd.Series) -> dict[str, Any]:
    """How the chosen answers' lengths (characters) compare with the rejected ones': the share
    of pairs where the chosen one is longer (ties count half) and the median ratio."""
    ours = chosen.astype(str).str.len().to_numpy(dtype=float)
    theirs = rejected.astype(str).str.len().to_numpy(dtype=float)
    longer = float(np.mean((ours > theirs) + 0.5 * (ours == theirs)))
    ratio = float(np.median(ours / np.maximum(theirs, 1.0)))
    return {"pairs": len(ours), "chosen_longer": longer, "median_ratio": ratio}


class PreferenceTuning(CausalGeneration):
    """DPO, ORPO or KTO on a causal model; answers, metrics and serving as ``causal-lm``."""

    name = "preference"
    judged_by = ("preference_accuracy", "logp_margin")  # the scores a run is judged by
    scored_before_training = True  # held-out preference accuracy before vs. after
    packs_rows = False
    batch_tokens_from_rows = False
    takes_virtual_tokens = False

    order_seed = 0  # KTO's one fixed order of rows (the run's seed, from_run_config)

    def __init__(
        self, settings: dict[str, Any] | None = None, preference: dict[str, Any] | None = None
    ) -> None:
        super().__init__(settings={**(settings or {}), "packing": False})
        self.preference: dict[str, Any] = {
            "method": "dpo", "beta": 0.1, "prompt_column": "prompt", "chosen_column": "chosen",
            "rejected_column": "rejected", "completion_column": "completion",
            "label_column": "label", "desirable_weight": None, "undesirable_weight": None,
            **(preference or {}),
        }  # fmt: skip

    @classmethod
    def from_run_config(cls, config: Any) -> Self:
        generation = config.generation.model_dump(
            exclude={"source_column", "target_column", "messages_column"}
        )
        task = cls(generation, config.preference.model_dump())
        task.order_seed = config.seed
        return task

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], model_config: Any) -> Self:
        return cls(meta.get("settings"), meta.get("preference"))

    def metadata(self) -> dict[str, Any]:
        return {"task": self.name, "settings": self.settings, "preference": self.preference}

    @property  # type: ignore[override]
    def text_column(self) -> str:
        """Shared code reads the standardized prompt; setting it names the user's column."""
        return SOURCE

    @text_column.setter
    def text_column(self, value: str) -> None:
        self.preference["prompt_column"] = value

    @property
    def paired(self) -> bool:
        return self.preference["method"] in PAIRED

    def required_columns(self, with_labels: bool = True) -> dict[str, str]:
        """Columns of the standardized frame, each with the option naming the user's column."""
        columns = {SOURCE: "preference.prompt_column"}
        if with_labels and self.paired:
            columns.update({TARGET: "preference.chosen_column",
                            REJECTED: "preference.rejected_column"})  # fmt: skip
        elif with_labels:  # the label is checked in standardize: false is no blank
            columns[TARGET] = "preference.completion_column"
        return columns

    def _user_columns(self, with_labels: bool) -> dict[str, str]:
        p = self.preference
        names = {"preference.prompt_column": p["prompt_column"],
                 "preference.chosen_column": p["chosen_column"],
                 "preference.rejected_column": p["rejected_column"],
                 "preference.completion_column": p["completion_column"],
                 "preference.label_column": p["label_column"]}  # fmt: skip
        options = list(self.required_columns(with_labels).values())
        if with_labels and not self.paired:
            options.append("preference.label_column")
        return {names[o]: o for o in options}

    def recognise(self, frame: pd.DataFrame, given: frozenset[str]) -> DataFit | None:
        """Prompts with chosen and rejected answers (DPO, ORPO), or with one answer and its
        good/bad label (KTO); the prompt a column, a chat (OpenAI's or ShareGPT's turns, the
        KTO answer its last turn) or Alpaca's instruction, as LLaMA-Factory writes them.
        Strength 3: above causal-lm's prompt/completion and chat shapes, which the same file
        holds. A KTO file also sets ``preference.method`` when it was not given."""
        p, columns = self.preference, set(map(str, frame.columns))
        prompt = _prompt_source(columns, p["prompt_column"])
        if prompt is None:
            return None
        column, shown = prompt
        if {p["chosen_column"], p["rejected_column"]} <= columns:
            return DataFit(3, f"{shown} with '{p['chosen_column']}'/'{p['rejected_column']}' "
                              "answers")  # fmt: skip
        if p["label_column"] not in columns or not _answer_source(columns, p, column):
            return None
        method: tuple[ColumnGuess, ...] = ()
        if p["method"] != "kto" and "preference.method" not in given:
            method = (ColumnGuess("preference.method", "kto", "single answers labelled "
                                  f"true/false in '{p['label_column']}'",
                                  "--set preference.method"),)  # fmt: skip
        return DataFit(3, f"{shown} with answers labelled in '{p['label_column']}'", method)

    def standardize(self, frame: pd.DataFrame, with_labels: bool = True) -> pd.DataFrame:
        """Prompts as messages (JSON) and text, answers as text; KTO labels as booleans. KTO
        also reads pairs (chosen/rejected), which held-out files usually are. The prompt is
        the prompt column, else a chat column (for KTO, its last assistant turn the answer)
        or Alpaca's instruction and input; a ``system`` column leads it."""
        p, source = self.preference, frame.attrs.get("source", "the data")
        if (
            not self.paired and with_labels and p["completion_column"] not in frame.columns
            and {p["chosen_column"], p["rejected_column"]} <= set(frame.columns)
        ):  # fmt: skip
            paired = type(self)(self.settings, {**p, "method": "dpo"})
            return paired.standardize(frame, with_labels)
        columns = set(map(str, frame.columns))
        prompt = _prompt_source(columns, p["prompt_column"])
        answers = None if self.paired or not prompt else _answer_source(columns, p, prompt[0])
        for column, option in self._user_columns(with_labels).items():
            if column in frame.columns or (option == "preference.prompt_column" and prompt):
                continue
            if option == "preference.completion_column" and answers:
                continue
            raise UserError(
                f"{source} has no column {column!r} (preference.method={p['method']}); "
                f"name it with {option}, columns are {', '.join(map(str, frame.columns))}"
            )
        rows: dict[str, list[Any]] = {SOURCE: [], PROMPT: []}
        if with_labels:
            rows.update({TARGET: [], REJECTED: []} if self.paired else {TARGET: [], LABEL: []})
        for i, row in enumerate(frame.to_dict("records")):
            where = f"{source} row {i + 1}"
            turns = self._prompt_turns(row, prompt[0] if prompt else p["prompt_column"], where)
            answer = None
            if answers in (MESSAGES, CONVERSATIONS):
                if turns[-1]["role"] == "assistant":
                    turns, answer = turns[:-1], turns[-1]["content"]
                elif with_labels:
                    raise UserError(f"{where}: the chat in '{answers}' must end with the "
                                    "assistant answer its label judges")  # fmt: skip
            if not turns or turns[-1]["role"] != "user":
                raise UserError(f"{where}: the prompt must end with a user turn")
            rows[PROMPT].append(json.dumps(turns, ensure_ascii=False))
            rows[SOURCE].append(turns[-1]["content"])
            if not with_labels:
                continue
            if self.paired:
                rows[TARGET].append(_answer(row[p["chosen_column"]], f"{where}, chosen"))
                rows[REJECTED].append(_answer(row[p["rejected_column"]], f"{where}, rejected"))
            else:
                if answer is None:
                    column = answers or p["completion_column"]
                    answer = _answer(row[column], f"{where}, {column}")
                rows[TARGET].append(answer)
                rows[LABEL].append(_label(row[p["label_column"]], where, p["label_column"]))
        out = pd.DataFrame(rows, index=frame.index)
        out.attrs = dict(frame.attrs)
        return out

    def diagnose(
        self, frames: dict[str, pd.DataFrame], find_label_errors: bool, seed: int
    ) -> dict[str, Any]:
        report = super().diagnose(frames, find_label_errors, seed)
        for targets in report.get("targets", {}).values():
            targets["duplicates_are"] = ("pair" if self.paired else "answer",
                                         f"the same {self.repeated_row_words}")  # fmt: skip
        if self.paired:
            report["same_chosen_and_rejected"] = {
                split: int((f[TARGET] == f[REJECTED]).sum())
                for split, f in frames.items()
                if REJECTED in f.columns
            }
            report["answer_lengths"] = {
                split: answer_lengths(f[TARGET], f[REJECTED])
                for split, f in frames.items()
                if REJECTED in f.columns and len(f)
            }
        else:
            report["kto_answers"] = {
                split: _kto_answers(f) for split, f in frames.items() if len(f)
            }
        return report

    def doctor_lines(self, report: dict[str, Any]) -> list[str]:
        """The generation lines, then what only pairs show: pairs whose two answers are the
        same, and whether the chosen answer is mostly the longer (or shorter) one."""
        lines = super().doctor_lines(report)
        for split, same in report.get("same_chosen_and_rejected", {}).items():
            if same:
                lines.append(f"data doctor: {split}: {same:,} pair(s) whose chosen and rejected "
                             "answers are the same (no signal; training drops them)")  # fmt: skip
        for split, found in report.get("answer_lengths", {}).items():
            share, ratio = found["chosen_longer"], found["median_ratio"]
            line = (f"data doctor: {split}: the chosen answer is the longer one in {share:.0%} "
                    f"of pairs (median length ratio chosen/rejected {ratio:.2f})")  # fmt: skip
            if share >= LENGTH_BIAS or share <= 1 - LENGTH_BIAS:
                line += LENGTH_ADVICE
            lines.append(line)
        for split, (good, bad) in report.get("kto_answers", {}).items():
            line = f"data doctor: {split}: {good:,} good and {bad:,} bad answers"
            if split == "train" and (weighed := self._kto_weighed(good, bad)):
                line += f"; training weighs the {weighed}"
            elif split == "train" and good and not bad:
                line += ("; with no bad answers KTO only pulls the model towards these, as "
                         "supervised tuning (--task causal-lm) does at about half the compute "
                         "(no reference model, no KL estimate)")  # fmt: skip
            elif split == "train" and bad and not good:
                line += ("; with no good answers KTO can only push the model away from these, "
                         "not towards better ones: add answers labelled true")  # fmt: skip
            lines.append(line)
        return lines

    # a duplicate repeats the prompt and every answer: a prompt asked again with other answers
    # is more data, and KTO's good and bad answers to one prompt are no second references
    inputs_repeat_as_references = False

    @property
    def repeated_row_words(self) -> str:  # type: ignore[override]
        return "prompt and answers" if self.paired else "prompt, answer and label"

    def row_keys(self, frame: pd.DataFrame) -> pd.Series:
        """A row's prompt (as messages) and answers, and a KTO row's label, as text."""
        columns = [c for c in (PROMPT, TARGET, REJECTED, LABEL) if c in frame.columns]
        return frame[columns].astype(str).agg("\x1f".join, axis=1)

    def _kto_weighed(self, good: int, bad: int) -> str | None:
        """Which kind of answer KTO's balance weighs more, and how much, in words; None where
        the counts are in the paper's range or the weights were given."""
        p = self.preference
        if p["desirable_weight"] is not None or p["undesirable_weight"] is not None:
            return None
        weights = kto_weights(good, bad)
        desirable, undesirable = weights["desirable_weight"], weights["undesirable_weight"]
        if desirable == undesirable:
            return None
        kind, weight = ("good", desirable) if desirable > 1 else ("bad", undesirable)
        return (f"{kind} ones {weight:.2f}, so that weighted good answers are "
                f"{desirable * good / (undesirable * bad):.2f} times the bad ones (KTO's "
                "balance; preference.desirable_weight/undesirable_weight choose)")  # fmt: skip

    def clean(
        self, frame: pd.DataFrame, clean: Any, is_training: bool
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Drop training pairs whose chosen and rejected answers are the same (no signal), and
        (``clean.drop_duplicates``) rows whose prompt and answers (and KTO label) repeat an
        earlier row's."""
        if not (is_training and self.paired and REJECTED in frame.columns):
            return super().clean(frame, clean, is_training)
        same = frame[TARGET] == frame[REJECTED]
        kept = frame[~same]
        kept.attrs = dict(frame.attrs)
        kept, found = super().clean(kept, clean, is_training)
        return kept, {"same_chosen_and_rejected": int(same.sum()), **found}

    @staticmethod
    def _prompt_turns(row: dict[str, Any], column: str, where: str) -> list[dict[str, str]]:
        """A row's prompt as messages, read from ``column`` (see :func:`_prompt_source`)."""
        if column == INSTRUCTION:
            turns = alpaca_messages({k: v for k, v in row.items() if k != OUTPUT}, where)
        else:
            turns = _messages(row[column], "user", f"{where}, {column}")
        if present(row.get(SYSTEM)) and turns[0]["role"] != "system":
            turns.insert(0, {"role": "system", "content": str(row[SYSTEM])})
        return turns

    def _conversation(self, row: Any, answer: str) -> tuple[list, list]:
        prompt = json.loads(row[PROMPT])
        prompt[-1] = {**prompt[-1], "content": self.settings["prefix"] + prompt[-1]["content"]}
        return prompt, [{"role": "assistant", "content": answer}]

    def token_lengths(self, frame: pd.DataFrame, tokenizer: Any) -> np.ndarray:
        texts = [
            tokenizer.apply_chat_template([*prompt, *answer], tokenize=False)
            for prompt, answer in (self._conversation(r, r[TARGET]) for _, r in frame.iterrows())
        ]
        encoded = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
        return np.array([len(ids) + 1 for ids in encoded])

    def encode(self, frame: pd.DataFrame, tokenizer: Any, max_length: int) -> Any:
        """TRL's conversational rows (TRL tokenizes them with the chat template)."""
        from datasets import Dataset

        if not tokenizer.chat_template:
            raise UserError(
                "preference tuning renders answers with the model's chat template and this "
                "tokenizer has none; start from a causal-lm run or a chat model"
            )
        self.max_length = max_length
        rows: dict[str, list[Any]] = {"prompt": [], "chosen" if self.paired else "completion": []}
        if self.paired:
            rows["rejected"] = []
        else:
            rows["label"] = []
        from tunelab.tasks.causal_encoding import prompt_ids

        too_long = 0
        chats: list[tuple[int, list]] = []  # (row of the data set, a whole conversation)
        for _, row in frame.iterrows():
            prompt, chosen = self._conversation(row, row[TARGET])
            if len(prompt_ids(tokenizer, prompt, prompt[-1]["content"])) >= max_length:
                # TRL would cut the whole answer away: ORPO's mean log-probability over no
                # tokens is NaN and spoils every weight, DPO and KTO learn nothing from it
                too_long += 1
                continue
            if self.paired:
                rejected = self._conversation(row, row[REJECTED])[1]
                chats += [(len(rows["prompt"]), prompt + chosen),
                          (len(rows["prompt"]), prompt + rejected)]  # fmt: skip
                rows["prompt"].append(prompt)
                rows["chosen"].append(chosen)
                rows["rejected"].append(rejected)
                continue
            # KTO: a pair is two single answers, the chosen one good, the rejected one bad
            answers = [(chosen, True), (self._conversation(row, row[REJECTED])[1], False)] if (
                REJECTED in frame.columns) else [(chosen, bool(row[LABEL]))]  # fmt: skip
            for completion, good in answers:
                chats.append((len(rows["prompt"]), prompt + completion))
                rows["prompt"].append(prompt)
                rows["completion"].append(completion)
                rows["label"].append(good)
        if too_long == len(frame) and too_long:
            raise UserError(
                f"every prompt is {max_length} tokens or longer, which leaves no room for an "
                "answer; raise model.max_length"
            )
        if too_long:
            log.warning(
                "%d of %d rows left out: their prompt alone fills model.max_length (%d tokens), "
                "so no answer would be trained; raise model.max_length to keep them",
                too_long, len(frame), max_length,
            )  # fmt: skip
        rows["length"], rows["tokens"] = _token_counts(
            tokenizer, chats, len(rows["prompt"]), max_length
        )
        dataset = Dataset.from_dict(rows)
        if self.paired:
            return dataset
        # TRL's KTO trains in this order and takes each answer's KL estimate from its
        # neighbour's answer to another prompt: shuffled once, the two answers a pair file
        # gives one prompt are not neighbours, and a file sorted by label mixes in every batch
        return dataset.shuffle(seed=self.order_seed).flatten_indices()

    def trained_tokens(self, dataset: Any) -> tuple[int, float]:
        """The tokens a training epoch runs through the model (a pair's chosen and rejected
        sequences both, from the ``tokens`` column :meth:`encode` writes) and their mean
        sequence length, for the run's throughput line."""
        total = int(sum(dataset["tokens"]))
        sequences = len(dataset) * (2 if self.paired else 1)
        return total, total / max(sequences, 1)

    @property
    def forward_passes(self) -> float:
        """Forward-only passes a step also runs per trained token, in training passes (a
        forward is a third of forward and backward): the reference model's (DPO, KTO) and
        KTO's KL estimate on mismatched pairs (policy and reference); ORPO has none."""
        return {"dpo": 1 / 3, "kto": 1 / 3 + 2 / 3}.get(self.preference["method"], 0.0)

    def trainer_setup(
        self, model: Any, tokenizer: Any, loss: Any, train: Any, validation: Any
    ) -> TrainerSetup:
        """TRL's DPOTrainer, ORPOTrainer or KTOTrainer with their config classes."""
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        check_stop_tokens(  # the template's closing token; TRL builds the batches itself
            model, tokenizer, self.stop_ids(tokenizer), [], None,
            strict=self.settings["check_stop_tokens"],
        )  # fmt: skip
        try:
            import trl  # noqa: F401
        except ImportError:
            raise UserError(
                "preference tuning needs the trl package; install it with "
                "pip install 'tunelab[preference]'"
            ) from None
        method, beta = self.preference["method"], self.preference["beta"]
        trainer: Any
        config: Any
        arguments: dict[str, Any] = {
            "beta": beta,
            "max_length": self.max_length,
            # random batches, length-bucketed by the rows' length column unless
            # training.group_by_length is off
            "train_sampling_strategy": "random",
            "remove_unused_columns": False,
        }
        if method == "dpo":
            from trl import DPOConfig, DPOTrainer

            trainer, config = DPOTrainer, DPOConfig
        elif method == "kto":
            from trl import KTOConfig, KTOTrainer

            trainer, config = KTOTrainer, KTOConfig
            # KTO estimates its KL term against neighbours in a fixed-order batch (TRL refuses
            # any other sampling), so rows train in the file's order: mix good and bad ones
            arguments["train_sampling_strategy"] = "sequential"
            good = int(sum(train["label"]))
            bad = len(train) - good
            arguments.update(kto_weights(good, bad, self.preference["desirable_weight"],
                                         self.preference["undesirable_weight"]))  # fmt: skip
            if weighed := self._kto_weighed(good, bad):
                log.info("KTO: %d good and %d bad training answers; training weighs the %s",
                         good, bad, weighed)  # fmt: skip
        else:
            from trl.experimental.orpo import ORPOConfig

            trainer, config = _orpo_trainer(), ORPOConfig
        arguments.update(_activation_checkpointing(config))
        return TrainerSetup(trainer, config, arguments, {"processing_class": tokenizer})

    def forward(
        self, model: Any, tokenizer: Any, frame: pd.DataFrame, max_length: int,
        batch_size: int, precision: str = "fp32",
    ) -> Generations:  # fmt: skip
        """The model's answers to the prompts, and (with answers given) the log-probabilities
        of each chosen/rejected answer under the model and, for an adapter, its base."""
        generated = super().forward(
            model, tokenizer, frame.assign(**{SOURCE: self._prompt_sources(frame)}),
            max_length, batch_size, precision,
        )  # fmt: skip
        if TARGET in frame.columns:
            answers = {"chosen": frame[TARGET].tolist()}
            if REJECTED in frame.columns:
                answers["rejected"] = frame[REJECTED].tolist()
            generated.scores = {  # type: ignore[attr-defined]
                name: _log_probs(model, tokenizer, self, frame, texts, max_length)
                for name, texts in answers.items()
            }
        return generated

    def _prompt_sources(self, frame: pd.DataFrame) -> list[str]:
        return [json.loads(p)[-1]["content"] for p in frame[PROMPT]]

    def evaluate_outputs(self, outputs: list[str], frame: pd.DataFrame) -> dict[str, Any]:
        scores = super().evaluate_outputs(outputs, frame)
        found = getattr(outputs, "scores", None)
        if not found:
            return scores
        beta = self.preference["beta"]
        chosen = found["chosen"]
        if "rejected" in found:
            rejected = found["rejected"]
            mean_c, mean_r = chosen["sum"] / chosen["tokens"], rejected["sum"] / rejected["tokens"]
            scores["preference_accuracy"] = float(np.mean(mean_c > mean_r))
            scores["logp_margin"] = float(np.mean(mean_c - mean_r))
            if "reference" in chosen:
                reward_c = beta * (chosen["sum"] - chosen["reference"])
                reward_r = beta * (rejected["sum"] - rejected["reference"])
                scores["reward_accuracy"] = float(np.mean(reward_c > reward_r))
                scores["reward_margin"] = float(np.mean(reward_c - reward_r))
        elif "reference" in chosen and LABEL in frame.columns:
            good = frame[LABEL].to_numpy(dtype=bool)[: len(chosen["sum"])]
            reward = beta * (chosen["sum"] - chosen["reference"])
            scores["reward_accuracy"] = float(np.mean((reward > 0) == good))
            if good.any() and (~good).any():
                scores["reward_margin"] = float(reward[good].mean() - reward[~good].mean())
        return scores

    def learning_warning(
        self, scores: dict[str, Any], examples: int, before: dict[str, Any] | None = None
    ) -> str | None:
        """A sentence when most answers are broken, with the advice for preference tuning,
        which pulls a model away from where it started: too hard, and it stops answering.
        Where the untuned model's answers (``before``) were as broken, tuning is not blamed."""
        problems, cut = self.answer_problems(scores, examples)
        if not problems:
            return cut
        said = said_problems(problems)
        untuned = problem_shares(before, examples, above=-1.0) if before else {}
        caused = [k for k, share in problems.items() if share - untuned.get(k, 0.0) > INHERITED]
        if untuned and not caused:
            was = ", ".join(f"{100 * untuned[k]:.0f}%" for k in problems)
            return (
                f"{said}, as the untuned model's did ({was}): preference tuning did not break "
                "them; judge it by preference_accuracy, and for answers that read well start "
                "from an instruction-tuned model or raise generation.max_new_tokens"
                + (f"; and {cut}" if cut else "")
            )
        return (
            said + ": the tuned model's answers are broken; preference tuning "
            "pulls a model away from where it started, and too far it stops answering: try a "
            "lower training.learning_rate, a higher preference.beta or LoRA (--peft lora), and "
            "start from an instruction-tuned model if the untuned one could not answer either"
            + (f"; and {cut}" if cut else "")
        )

    def before_warning(
        self, split: str, tuned: dict[str, Any], untuned: dict[str, Any]
    ) -> str | None:
        """A sentence when tuning moved neither the held-out preference accuracy nor the
        chosen answers' log-probability margin: what preference tuning is for, where the
        generation metrics the other text tasks are judged by only follow."""
        found = [scores.get(key) for scores in (tuned, untuned) for key in self.judged_by]
        if not all(isinstance(v, (int, float)) for v in found):
            return None
        ours, margin, theirs, before = (float(v) for v in found)  # type: ignore[arg-type]
        if ours - theirs > ACCURACY_GAIN or margin - before > MARGIN_GAIN:
            return None
        return (
            f"the fine-tuned model's {split} preference_accuracy {ours:.3f} is not above the "
            f"untuned model's {theirs:.3f} and the chosen answers' log-probability margin "
            f"barely moved ({before:.3f} to {margin:.3f} per token): the model has not "
            "learned the preference; try more epochs or pairs, or a higher "
            "training.learning_rate"
        )

    def predictions(self, outputs: list[str], frame: pd.DataFrame) -> list[dict[str, Any]]:
        records = super().predictions(outputs, frame)
        if REJECTED in frame.columns:
            for record, rejected in zip(records, frame[REJECTED], strict=False):
                record["rejected"] = rejected
        return records


def _kto_answers(frame: pd.DataFrame) -> tuple[int, int]:
    """Good and bad answers KTO trains on: a labelled row's one, a pair's two."""
    if REJECTED in frame.columns:
        return len(frame), len(frame)
    good = int(frame[LABEL].astype(bool).sum()) if LABEL in frame.columns else len(frame)
    return good, len(frame) - good


def kto_weights(
    good: int, bad: int, desirable: float | None = None, undesirable: float | None = None
) -> dict[str, float]:
    """KTO's loss weights for ``good`` and ``bad`` answers: the given ones (an unset one 1),
    else, with neither given and the weighted good answers outside 1-4/3 times the bad ones
    (the KTO paper's range, its Eq. 8), the rarer kind's weight raised to bring them to the
    middle of it; counts in the range, or of one kind only, keep 1 and 1."""
    if desirable is not None or undesirable is not None:
        return {"desirable_weight": desirable or 1.0, "undesirable_weight": undesirable or 1.0}
    low, high = KTO_BALANCE
    weights = {"desirable_weight": 1.0, "undesirable_weight": 1.0}
    if good and bad and not low <= good / bad <= high:
        # the middle, not the edge: TRL checks the range with its ends rounded to two decimals
        middle = (low + high) / 2
        if good < bad:
            weights["desirable_weight"] = middle * bad / good
        else:
            weights["undesirable_weight"] = good / (middle * bad)
    return weights


def _orpo_trainer() -> Any:
    """TRL's ORPOTrainer, whose ``evaluate`` also takes rows as they come (as DPO's and KTO's
    do): tunelab scores the held-out splits with it after training."""
    from trl.data_utils import maybe_apply_chat_template, maybe_extract_prompt
    from trl.experimental.orpo import ORPOTrainer

    class Trainer(ORPOTrainer):  # type: ignore[misc]
        def evaluate(self, eval_dataset: Any = None, *args: Any, **kwargs: Any) -> Any:
            if eval_dataset is not None and "chosen_input_ids" not in eval_dataset.column_names:
                eval_dataset = (
                    eval_dataset.map(maybe_extract_prompt)
                    .map(maybe_apply_chat_template,
                         fn_kwargs={"processing_class": self.processing_class})
                    .map(self.tokenize_row)
                )  # fmt: skip
            return super().evaluate(eval_dataset, *args, **kwargs)

    return Trainer


def _label(value: Any, where: str, column: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "good", "👍"):
        return True
    if text in ("false", "0", "no", "bad", "👎"):
        return False
    raise UserError(f"{where}, {column}: {value!r} is not true/false (good/bad answer)")


def _log_probs(
    model: Any, tokenizer: Any, task: PreferenceTuning, frame: pd.DataFrame, answers: list[str],
    max_length: int,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Summed log-probability and token count of each answer after its prompt, under the model
    and (for a PEFT model) under its base with the adapter off."""
    import torch

    from tunelab.tasks.causal_encoding import prompt_ids, prompt_text

    rows = []
    for (_, row), answer in zip(frame.iterrows(), answers, strict=True):
        prompt, reply = task._conversation(row, answer)
        start = prompt_ids(tokenizer, prompt, prompt[-1]["content"])
        before = prompt_text(tokenizer, prompt, prompt[-1]["content"])
        # the answer as the template writes it, closing token included, trailing newline not
        rendered = tokenizer.apply_chat_template([*prompt, *reply], tokenize=False).rstrip()
        rest = rendered[len(before) :] if rendered.startswith(before) else answer
        ids = [*start, *tokenizer(rest, add_special_tokens=False)["input_ids"]]
        keep = ids[-max_length:]
        rows.append((keep, max(1, len(start) - (len(ids) - len(keep)))))

    def run(active: Any) -> tuple[np.ndarray, np.ndarray]:
        sums, counts = [], []
        with torch.inference_mode():
            for ids, prompt_length in rows:
                batch = torch.tensor([ids], device=model.device)
                logits = active(batch).logits[0, :-1].float()
                targets = batch[0, 1:]
                token_lp = torch.log_softmax(logits, -1).gather(1, targets[:, None])[:, 0]
                sums.append(float(token_lp[prompt_length - 1 :].sum()))
                counts.append(len(ids) - prompt_length)
        return np.array(sums), np.maximum(np.array(counts), 1)

    model.eval()
    total, tokens = run(model)
    found = {"sum": total, "tokens": tokens}
    if hasattr(model, "disable_adapter"):
        with model.disable_adapter():
            found["reference"] = run(model)[0]
    return found
