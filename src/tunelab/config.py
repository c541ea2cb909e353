"""The typed configuration of a run: YAML files, dotted overrides, clear errors.

Every field has a type, a default and a description; the resolved config is written out
beside the model with each description as a comment, so a run can be repeated from its
folder alone.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tunelab.errors import UserError


class _Section(BaseModel):
    # inf and nan pass gt/ge/lt checks in surprising ways ("weight_decay: .inf"): refuse them.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class SplitConfig(_Section):
    """How a single data file is split when validation/test files are not given."""

    validation: float = Field(
        0.1, ge=0.0, lt=1.0, description="share of rows held out for validation"
    )
    test: float = Field(0.1, ge=0.0, lt=1.0, description="share of rows held out for test")
    stratify: bool = Field(
        True, description="keep label proportions equal across splits (single-label only)"
    )


class CleanConfig(_Section):
    """Cleaning applied before the split; text normalisation is applied at prediction too."""

    nfkc: bool = Field(True, description="fold full-width/half-width forms (Unicode NFKC)")
    whitespace: bool = Field(True, description="collapse runs of whitespace, trim the ends")
    strip_html: bool = Field(False, description="remove markup tags, unescape &amp; and friends")
    lowercase: bool = Field(False, description="lower-case texts")
    min_chars: int = Field(1, ge=1, description="drop training rows with shorter texts")
    max_chars: int | None = Field(None, gt=0, description="drop training rows with longer texts")
    drop_duplicates: bool = Field(True, description="keep one of each exact duplicate row")
    drop_conflicts: bool = Field(
        True, description="drop rows whose (near-identical) text carries different labels"
    )
    drop_label_errors: bool = Field(
        False, description="drop training rows that confident learning flags as mislabelled"
    )


class DataConfig(_Section):
    """Where the data is and which columns mean what."""

    train: Path | None = Field(
        None,
        description="training file (CSV/TSV/JSONL/JSON/Parquet), folder of class sub-folders "
        "(images, audio), or folder of train/validation/test files (its validation and test "
        "files fill the splits not given); split if it is the only one",
    )
    extra_train: list[Path] = Field(
        default_factory=list,
        description="more training files (--data FILE again), each read as data.train is and "
        "in its own shape (Alpaca, ShareGPT and messages files mix; other tasks need the same "
        "columns), their rows added to its rows before cleaning and splitting",
    )
    validation: Path | None = Field(None, description="validation file (optional)")
    test: Path | None = Field(None, description="test file (optional)")
    format: Literal[
        "auto", "csv", "tsv", "jsonl", "json", "parquet", "conll", "conllu", "excel"
    ] = Field(
        "auto",
        description="file format; auto uses the file extension (.conll/.iob/.bio: conll, "
        ".conllu: conllu, .xlsx/.xls: excel)",
    )
    encoding: str | None = Field(
        None, description="text encoding, e.g. utf-8 or gb18030; null detects it"
    )
    sheet: str | int | None = Field(
        None,
        description="Excel workbooks: the sheet to read, by name or 0-based number; null: the "
        "first",
    )
    text_column: str = Field(
        "text",
        description="column holding the input text; left unset, the column called text, else "
        "the one whose name or long texts say so (logged)",
    )
    text_pair_column: str | None = Field(
        None, description="second text column for sentence-pair tasks (optional)"
    )
    label_column: str = Field(
        "label",
        description="column holding the target; left unset, the column called label, else the "
        "one whose name or few repeated values say so (logged)",
    )
    tokens_column: str = Field(
        "tokens", description="token-classification: column holding the list of tokens"
    )
    tags_column: str = Field(
        "tags", description="token-classification: column holding one tag per token"
    )
    spans_column: str = Field(
        "spans",
        description="token-classification: column of character spans [{start, end, label}] "
        "over text_column (Label Studio / doccano export shape)",
    )
    tag_column: int = Field(
        -1,
        description="CoNLL files: the tag's whitespace-separated field, 0-based; -1: last "
        "(CoNLL-U: UPOS; 4: XPOS)",
    )
    label_separator: str | None = Field(
        None, description="split string labels on this to get multi-label targets, e.g. '|'"
    )
    drop_invalid: bool = Field(
        True,
        description="leave out rows with empty texts or labels, or unreadable images, with a "
        "warning (false, or --strict: stop at the first, naming its row)",
    )
    max_rows: int | None = Field(
        None, gt=0, description="use only the first N rows of each file (quick trials)"
    )
    train_rows: int | None = Field(
        None,
        gt=0,
        description="train on a seeded subset of this many training rows after the split "
        "(stratified); validation and test stay whole (learning curves, quick trials)",
    )
    eval_rows: int | None = Field(
        None,
        gt=0,
        description="validate and test on a seeded subset of this many rows of each (a large "
        "model on a CPU: every evaluation is a pass over them)",
    )
    train_per_class: int | None = Field(
        None, gt=0, description="train on this many rows of each class (few-shot trials)"
    )
    split: SplitConfig = Field(default_factory=SplitConfig, description="automatic split")
    clean: CleanConfig = Field(default_factory=CleanConfig, description="cleaning steps")


class ScratchModelConfig(_Section):
    """Size of a randomly initialised model (model.name: scratch-bert)."""

    layers: int = Field(2, ge=1, description="transformer layers")
    hidden: int = Field(128, ge=8, description="hidden size")
    heads: int = Field(2, ge=1, description="attention heads (must divide hidden)")
    min_char_count: int = Field(
        2, ge=1, description="characters seen fewer times in training data become [UNK]"
    )


class ModelConfig(_Section):
    """The pretrained model to start from."""

    name: str = Field(
        "auto",
        description=(
            "local folder, bundled starter (zh-bert-mini, zh-llama-mini), installed model package "
            "(pkg:NAME) or hub id; 'auto' picks the pretrained model on this machine that fits "
            "the data's language and the task; 'scratch-bert' builds a small random BERT with a "
            "character vocabulary from the data; 'scratch-vit' a small random ViT (images); "
            "'scratch-audio' a small random Whisper-style encoder (audio)"
        ),
    )
    revision: str | None = Field(None, description="hub revision (branch, tag or commit)")
    trust_remote_code: bool = Field(
        False, description="allow model code from the hub to run (only for models you trust)"
    )
    allow_pickle: bool = Field(
        False,
        description="also load pickle weights (pytorch_model.bin), which can run code when "
        "loaded; by default only safetensors",
    )
    max_length: int | None = Field(
        None, gt=0, description="token limit per example; null: 99th percentile of the data"
    )
    scratch: ScratchModelConfig = Field(
        default_factory=ScratchModelConfig,
        description="used when name is scratch-bert, scratch-vit or scratch-audio",
    )


class TrainingConfig(_Section):
    """Optimisation settings; the defaults are fast and safe for small data sets."""

    epochs: float = Field(3.0, gt=0, description="passes over the training data")
    max_steps: int | None = Field(None, gt=0, description="stop after this many steps")
    min_steps: int | None = Field(
        500,
        gt=0,
        description="text classification and tagging (and image and audio classification "
        "from scratch), when training.epochs is left at its "
        "default: more epochs (at most 10) until training makes at least this many optimizer "
        "steps (3 epochs of a few thousand rows at batch 32 make a few hundred); null: never",
    )
    learning_rate: Annotated[float, Field(gt=0, lt=1)] | Literal["auto"] = Field(
        "auto",
        description="peak learning rate; auto: by what is trained (random init 5e-4, a "
        "pretrained model by its size, adapters higher, few-shot lower)",
    )
    batch_size: int = Field(32, gt=0, description="training examples per step and device")
    eval_batch_size: int = Field(64, gt=0, description="examples per evaluation batch")
    gradient_accumulation_steps: int = Field(1, gt=0, description="steps per optimizer update")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay")
    warmup_ratio: float = Field(0.06, ge=0, lt=1, description="share of steps to warm up")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        "linear", description="learning-rate schedule"
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="auto: bf16 autocast where the CPU or GPU supports it"
    )
    group_by_length: bool = Field(
        True,
        description="batch examples of similar length together (less padding), the batches "
        "in random order, each holding the data's mix of labels (single-label classification)",
    )
    pad_to_multiple_of: int | None = Field(
        None,
        gt=0,
        description="pad each training batch to a multiple of this many tokens (8 on GPUs: "
        "fewer distinct batch shapes for attention and matrix kernels to set up; on a CPU it "
        "only adds padding); null: to the batch's longest row",
    )
    torch_compile: bool = Field(
        False,
        description="compile the model with torch.compile (inductor) before training; costs "
        "compile time at the start and at new batch shapes (5.4x slower on a 2,000-sample "
        "MiniLM run on a CPU, see README Speed), so for long runs with fixed shapes",
    )
    fast_dropout: bool = Field(
        True,
        description="on a CPU, draw dropout masks from numpy's SFC64 instead of torch's "
        "bernoulli (same probability to 1/65,536, repeatable by seed; a MiniLM training step "
        "1.1x faster on short texts, 1.6x on 300-token ones, see README Speed) and write "
        "training attention out where SDPA's fused kernel is slower (with dropout, and in "
        "bf16); false: torch's own dropout and SDPA, for runs that must repeat another "
        "script's random numbers",
    )
    freeze_embeddings: bool = Field(
        False,
        description="full fine-tuning: keep the input word embeddings as pretrained (a BERT's "
        "vocabulary matrix is half of a small model's weights; frozen, it gets no gradient "
        "or optimizer state); a tied output layer stays as it is too",
    )
    embedding_rows: Literal["used", "all"] = Field(
        "used",
        description="full fine-tuning on a CPU: used trains only the word-embedding rows the "
        "training rows use (the others' gradient is zero; their weight decay is applied as "
        "one factor, so training is the same to float rounding; a MiniLM step 1.12x faster on "
        "short texts, see README Speed); all: every row, as a plain Trainer",
    )
    class_weights: Literal["auto", "balanced", "none"] = Field(
        "auto",
        description="auto: class-weighted loss when the largest class is 3x the smallest or more",
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="label smoothing (single-label)")
    early_stopping_patience: int | None = Field(
        2, ge=1, description="evaluations without improvement before stopping; null: never"
    )
    metric_for_best_model: str | None = Field(
        None, description="validation metric that picks the best checkpoint; null: task default"
    )
    eval_strategy: Literal["epoch", "steps"] = Field(
        "epoch", description="evaluate after every epoch or every eval_steps"
    )
    eval_steps: int | None = Field(None, gt=0, description="steps between evaluations")
    logging_steps: int = Field(50, gt=0, description="steps between log lines")
    save_total_limit: int = Field(2, ge=1, description="checkpoints kept (the best is kept too)")
    checkpoint_minutes: float = Field(
        5.0,
        ge=0,
        description="without a validation split, an epoch's checkpoint is written only once "
        "this many minutes of training passed since the last one (the last epoch and Ctrl-C "
        "always write one; 0: after every epoch)",
    )
    threads: int | None = Field(None, gt=0, description="CPU threads; null: all cores")
    method: Literal["full", "few-shot"] = Field(
        "full",
        description="full: the Trainer's fine-tuning; few-shot: SetFit-style contrastive "
        "training of the encoder plus a logistic-regression head (text classification, a "
        "handful of examples per class)",
    )
    fsdp: str | None = Field(
        None,
        description="FSDP under torchrun/accelerate, passed to the Trainer: e.g. "
        "'full_shard auto_wrap' (options: full_shard, shard_grad_op, hybrid_shard, no_shard, "
        "offload, auto_wrap)",
    )
    fsdp_config: dict[str, Any] | None = Field(
        None, description="the Trainer's fsdp_config, e.g. {transformer_layer_cls_to_wrap: [...]}"
    )
    deepspeed: Path | None = Field(
        None, description="DeepSpeed JSON config file, passed to the Trainer (needs deepspeed)"
    )

    @field_validator("fsdp")
    @classmethod
    def _known_fsdp_options(cls, value: str | None) -> str | None:
        known = {"full_shard", "shard_grad_op", "hybrid_shard", "hybrid_shard_zero2",
                 "no_shard", "offload", "auto_wrap"}  # fmt: skip
        unknown = [part for part in (value or "").split() if part not in known]
        if unknown:
            raise ValueError(f"unknown FSDP option {unknown[0]!r}; use some of {sorted(known)}")
        return value


class ClassificationConfig(_Section):
    """Options of text classification."""

    problem_type: Literal["auto", "single_label", "multi_label", "regression"] = Field(
        "auto",
        description="auto: lists or a label_separator mean multi-label, fractions regression",
    )
    threshold: float | Literal["auto"] = Field(
        "auto", description="multi-label decision threshold; auto tunes it on validation data"
    )
    padding_free: bool = Field(
        True,
        description="BERT-family classifiers train on a batch's rows laid end to end, so only "
        "attention sees padding (the same arithmetic, less work); false pads every batch",
    )

    @field_validator("threshold")
    @classmethod
    def _threshold_in_range(cls, value: float | str) -> float | str:
        if value != "auto" and not 0.0 < float(value) < 1.0:
            raise ValueError("must be 'auto' or a number between 0 and 1")
        return value


class TokenClassificationConfig(_Section):
    """Options of token classification (named entities, part of speech, word segmentation)."""

    scheme: Literal["auto", "bio", "bioes", "io", "bmeso", "bmes", "plain"] = Field(
        "auto",
        description="tag scheme the model learns; auto: the data's own (spans: bio); "
        "bio/bioes/io/bmeso convert entity tags (bmeso: B-/M-/E-/S-, as ResumeNER writes "
        "them); bmes: word segmentation; plain: independent tags such as POS",
    )
    repair: bool = Field(
        True,
        description="repair broken tag sequences (an I- with no B-) as a lenient reader would; "
        "false: reject the file naming the row",
    )
    label_all_subtokens: bool = Field(
        False, description="train on every sub-token of a word, not only the first"
    )
    stride: int = Field(
        32, ge=0, description="sub-tokens shared by neighbouring windows of a text over max_length"
    )


class GenerationConfig(_Section):
    """Options of seq2seq and causal-lm (text in, text out)."""

    source_column: str = Field(
        "source", description="input text column (prompt/completion columns work too)"
    )
    target_column: str = Field("target", description="output text column")
    messages_column: str = Field(
        "messages", description="causal-lm: chat column in the OpenAI format [{role, content}]"
    )
    prefix: str = Field("", description="text put before every source, e.g. 'summarize: '")
    max_target_length: int = Field(128, gt=0, description="seq2seq: target token limit")
    max_new_tokens: int | None = Field(
        None,
        gt=0,
        description="tokens generated at most per answer; null: room for the training answers "
        "(their 99th percentile and a quarter more, 16 to 256; 128 for images), logged",
    )
    num_beams: int = Field(1, ge=1, description="beam search width (1: greedy)")
    length_penalty: float = Field(1.0, description="beam search: >1 favours longer outputs")
    no_repeat_ngram_size: int = Field(0, ge=0, description="forbid repeating n-grams (0: off)")
    packing: bool = Field(
        True,
        description="causal-lm: pack rows into one sequence without padding (attention and "
        "positions stay per row)",
    )
    max_eval_rows: Annotated[int, Field(gt=0)] | Literal["auto"] | None = Field(
        "auto",
        description="generate for at most this many test rows, a seeded sample (null: all; "
        "auto: all on a GPU, on a CPU as many as a budget of parameters x new tokens allows, "
        "200 at least: every row for a starter, about 600 for a 135M model), logged",
    )
    score_before: bool | None = Field(
        None,
        description="generate for the test rows with the untuned model too, the zero-shot "
        "starting point, so metrics.json shows the gain (null: for chat models from elsewhere, "
        "which can answer before tuning; not for tunelab's starters)",
    )
    check_stop_tokens: bool = Field(
        True,
        description="causal-lm: before training, fail when the model could not learn to stop "
        "(template's closing token, pad token, labels without EOS); false: warn only",
    )


class PreferenceConfig(_Section):
    """Options of preference tuning (task: preference): DPO, ORPO or KTO through TRL."""

    method: Literal["dpo", "orpo", "kto"] = Field(
        "dpo",
        description="dpo: chosen vs. rejected against the starting model; orpo: the same "
        "without a reference model; kto: single answers marked good or bad (completion, label)",
    )
    beta: float = Field(
        0.1, gt=0, description="dpo/kto: how far from the starting model; orpo: odds-ratio weight"
    )
    prompt_column: str = Field("prompt", description="the prompt (text or OpenAI messages)")
    chosen_column: str = Field("chosen", description="the preferred answer (text or messages)")
    rejected_column: str = Field("rejected", description="the worse answer (text or messages)")
    completion_column: str = Field("completion", description="kto: the answer")
    label_column: str = Field("label", description="kto: true (good answer) or false")
    desirable_weight: float | None = Field(
        None,
        gt=0,
        description="kto: weight of the good answers' loss; unset with undesirable_weight: "
        "where good answers are not 1 to 4/3 times the bad ones (the KTO paper's range), the "
        "rarer kind weighs more, making them 7/6",
    )
    undesirable_weight: float | None = Field(
        None, gt=0, description="kto: weight of the bad answers' loss (unset: see desirable_weight)"
    )


class EmbeddingConfig(_Section):
    """Options of sentence-embedding (bi-encoders for search, deduplication, clustering)."""

    positive_column: str = Field(
        "auto",
        description="the text each anchor should find (auto: positive, document, passage, "
        "sentence2, answer); with a score column, the second sentence of a scored pair",
    )
    negative_column: str | None = Field(
        "auto", description="a text the anchor should not find (auto: negative, if present)"
    )
    score_column: str | None = Field(
        "auto", description="similarity of a scored pair, any range (auto: score, if present)"
    )
    loss: Literal["auto", "mnrl", "cached-mnrl", "cosent", "angle"] = Field(
        "auto",
        description="auto: in-batch negatives (mnrl) for pairs and triplets, cosent for scored "
        "pairs; cached-mnrl: mnrl in mini-batches (large batches in little memory); angle",
    )
    mini_batch_size: int = Field(
        16, ge=1, description="cached-mnrl: rows encoded at once (memory, not the result)"
    )
    hard_negatives: int = Field(
        0, ge=0,
        description="pairs: mine this many hard negatives per anchor from the training "
        "corpus with the base model before training (0: off)",
    )  # fmt: skip
    pooling: Literal["auto", "mean", "cls", "max"] = Field(
        "auto",
        description="how token vectors become one; auto: the checkpoint's own "
        "sentence-transformers pooling, else mean",
    )
    max_eval_corpus: int | None = Field(
        None, gt=0, description="score retrieval against at most this many documents (null: all)"
    )


class ImageConfig(_Section):
    """image-classification: where the images are and how training prepares them."""

    column: str = Field(
        "image",
        description="CSV/JSONL/Parquet files: column of image paths, relative to the file "
        "(a folder of class sub-folders needs none)",
    )
    augment: bool = Field(
        True, description="random resized crops of training images (never of evaluated ones)"
    )
    flip: bool = Field(
        True, description="with augment: also mirror training images left-right (off for digits)"
    )
    scratch_size: int = Field(32, ge=8, description="scratch-vit: image side in pixels")
    scratch_patch: int = Field(
        4, ge=1, description="scratch-vit: patch side in pixels (must divide scratch_size)"
    )
    scratch_width: int | None = Field(
        None,
        ge=8,
        description="scratch-ocr: image width in pixels (scratch_size is the height; null: "
        "8 times the height, a line of text)",
    )
    processor: dict[str, Any] = Field(
        default_factory=dict,
        description="settings passed to the model's image processor as it loads; for "
        "image-text-to-text they set the image tokens per image: Qwen2-VL {min_pixels, "
        "max_pixels}, SmolVLM/Idefics3 {do_image_splitting, size: {longest_edge: N}}; saved "
        "with the run",
    )
    train_vision: bool = Field(
        False,
        description="image-text-to-text: train the vision tower too (frozen by default: the "
        "language model learns to answer, the image encoder keeps what it knows; scratch-vlm's "
        "random tower always trains)",
    )


class AudioConfig(_Section):
    """audio-classification: where the clips are and how training prepares them."""

    column: str = Field(
        "audio",
        description="CSV/JSONL/Parquet files: column of audio file paths, relative to the file "
        "(a folder of class sub-folders needs none)",
    )
    augment: bool = Field(
        True,
        description="random gain, time shift and low noise on training clips (never on "
        "evaluated ones)",
    )
    max_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="clips are cut to their first max_seconds, in training and prediction; "
        "scratch-audio's window is at most this",
    )
    scratch_seconds: int | None = Field(
        None,
        ge=1,
        le=600,
        description="scratch-audio's window in whole seconds (longer clips are cut to it, "
        "shorter ones padded); null: the training clips' 99th percentile, at most max_seconds",
    )
    scratch_mel_bins: int = Field(
        64, ge=16, le=256, description="scratch-audio: mel bands of its log-mel spectrogram"
    )


class FewShotConfig(_Section):
    """Options of training.method: few-shot (contrastive pairs, then a linear head)."""

    pair_rounds: int = Field(
        20,
        ge=1,
        description="rounds of pairs: each gives every example a same-label and an "
        "other-label partner",
    )
    max_pairs: int = Field(
        20_000, ge=1, description="pairs at most, whatever the data size (time and memory cap)"
    )
    batch_size: int = Field(
        16,
        gt=0,
        description="pairs per optimizer step (SetFit's 16: twice the steps of 32 on the same "
        "pairs, which fell behind SetFit at 32 per class); training.batch_size is for the "
        "other methods",
    )


class AdapterConfig(_Section):
    """Parameter-efficient fine-tuning (PEFT): train small added weights, keep the base frozen."""

    method: Literal["none", "lora", "qlora", "ia3", "prompt-tuning", "prefix-tuning"] = Field(
        "none",
        description="none: full fine-tuning; lora; qlora (4-bit base, CUDA only); ia3; "
        "prompt-tuning / prefix-tuning (learned virtual tokens)",
    )
    r: int = Field(8, ge=1, description="LoRA rank")
    alpha: float = Field(16.0, gt=0, description="LoRA scaling numerator (scale = alpha / r)")
    dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout")
    target_modules: Literal["auto"] | list[str] = Field(
        "auto",
        description="layers that get adapters; auto: every linear layer of the transformer "
        "blocks (LoRA), keys, values and feed-forward down-projections (IA3)",
    )
    num_virtual_tokens: int = Field(
        20, ge=1, description="prompt-/prefix-tuning: learned tokens put before every input"
    )


class ParameterRange(_Section):
    """One searched config key: a numeric range or a list of choices."""

    low: float | None = Field(None, description="smallest value (with high)")
    high: float | None = Field(None, description="largest value (with low)")
    log: bool = Field(False, description="sample on a log scale (learning rates)")
    integer: bool = Field(False, description="whole numbers only (epochs, ranks)")
    choices: list[Any] | None = Field(
        None, description="values to choose from (instead of a range)"
    )

    @model_validator(mode="after")
    def _range_or_choices(self) -> ParameterRange:
        if self.choices is not None:
            if not self.choices:
                raise ValueError("choices must not be empty")
        elif self.low is None or self.high is None or self.low > self.high:
            raise ValueError("give low <= high, or choices: [...]")
        elif self.log and self.low <= 0:
            raise ValueError("a log-scale range needs low > 0")
        return self


class SearchConfig(_Section):
    """Hyperparameter search (tunelab search) with Optuna: TPE sampling, pruning, resumable."""

    trials: int = Field(
        20, ge=1, description="finished trials to reach (resumes count earlier ones)"
    )
    space: dict[str, ParameterRange] = Field(
        default_factory=dict,
        description="dotted config key -> range, e.g. training.learning_rate: {low: 1e-5, "
        "high: 1e-3, log: true}; empty: the task's default space",
    )
    metric: str | None = Field(
        None, description="validation metric to optimise; null: the task's main metric"
    )
    storage: str | None = Field(
        None,
        description="Optuna RDB URL (e.g. postgresql://...) shared by several machines; null: "
        "sqlite:///<search folder>/study.db",
    )
    study_name: str | None = Field(None, description="study name; null: the search folder's name")
    pruning: bool = Field(
        True, description="stop unpromising trials at an evaluation (median rule)"
    )
    keep_models: bool = Field(False, description="keep each trial's model/ folder")


class RunConfig(_Section):
    """A whole run: task, data, model, training, output."""

    # the names live in the registry above the config (tunelab.tasks.TASKS), which checks them
    task: str = Field(
        "text-classification",
        description="what to train: a registered task; left unset, the one the training data's "
        "columns fit (logged)",
    )
    output: Path = Field(Path("runs/run"), description="run folder for model, metrics, report")
    seed: int = Field(
        42, ge=0, le=2**32 - 1, description="fixes the data split, initialisation and batch order"
    )
    data: DataConfig = Field(default_factory=DataConfig, description="input data")
    model: ModelConfig = Field(default_factory=ModelConfig, description="model to fine-tune")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="training")
    classification: ClassificationConfig = Field(
        default_factory=ClassificationConfig, description="text-classification options"
    )
    token_classification: TokenClassificationConfig = Field(
        default_factory=TokenClassificationConfig, description="token-classification options"
    )
    generation: GenerationConfig = Field(
        default_factory=GenerationConfig, description="seq2seq and causal-lm options"
    )
    preference: PreferenceConfig = Field(
        default_factory=PreferenceConfig, description="preference tuning (DPO, ORPO, KTO)"
    )
    embedding: EmbeddingConfig = Field(
        default_factory=EmbeddingConfig, description="sentence-embedding options"
    )
    image: ImageConfig = Field(
        default_factory=ImageConfig, description="image-classification settings"
    )
    audio: AudioConfig = Field(
        default_factory=AudioConfig, description="audio-classification settings"
    )
    few_shot: FewShotConfig = Field(
        default_factory=FewShotConfig, description="training.method: few-shot options"
    )
    peft: AdapterConfig = Field(
        default_factory=AdapterConfig, description="parameter-efficient fine-tuning (LoRA, ...)"
    )
    search: SearchConfig = Field(
        default_factory=SearchConfig, description="hyperparameter search (tunelab search)"
    )
    tracking: list[Literal["mlflow", "tensorboard"]] = Field(
        default_factory=list,
        description="also log training to: mlflow (MLFLOW_TRACKING_URI, else sqlite "
        "<output's parent>/mlflow.db), tensorboard (<output>/tensorboard)",
    )

    @field_validator("tracking", mode="before")
    @classmethod
    def _one_tracker_or_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class ArchitectureConfig(_Section):
    """Shape of a model pretrained from scratch (ignored with pretrain.from_model)."""

    encoder: Literal["bert", "modernbert"] = Field(
        "bert",
        description="mlm model family: classic post-norm BERT, or ModernBERT (pre-norm, rotary "
        "positions, GeGLU), which leaves the unigram plateau of MLM training far sooner",
    )
    layers: int = Field(4, ge=1, description="transformer layers")
    hidden: int = Field(256, ge=8, description="hidden size")
    heads: int = Field(4, ge=1, description="attention heads (must divide hidden)")
    intermediate: int | None = Field(
        None,
        gt=0,
        description="feed-forward size; null: 4x hidden (BERT), 2x (ModernBERT) or 8/3x (Llama)",
    )
    max_positions: int = Field(512, ge=16, description="longest input the model will take")


class PretrainConfig(_Section):
    """Masked- or causal-LM pretraining, from scratch or continued from a model."""

    objective: Literal["mlm", "clm"] = Field(
        "mlm", description="mlm: BERT-style masked LM; clm: Llama-style causal LM"
    )
    data: list[Path] = Field(
        default_factory=list,
        description="text files (.txt: one document per line) or tables with a text column",
    )
    text_column: str = Field("text", description="column holding the text in table files")
    from_model: str | None = Field(
        None, description="continue pretraining this model (keeps its tokenizer); null: scratch"
    )
    output: Path = Field(Path("runs/pretrain"), description="folder for the pretrained model")
    seed: int = Field(
        42, ge=0, le=2**32 - 1, description="fixes the held-out split, initialisation and order"
    )
    block_size: int = Field(128, ge=8, description="tokens per packed training row")
    held_out: float = Field(
        0.02, ge=0.0, lt=0.5, description="share of documents held out for perplexity"
    )
    held_out_seed: int | None = Field(
        None,
        ge=0,
        le=2**32 - 1,
        description="seed of the held-out split; null: seed. Give a continued run the earlier "
        "stage's value so that its held-out documents stay unseen",
    )
    mlm_probability: float = Field(0.15, gt=0, lt=1, description="share of tokens masked (mlm)")
    whole_word_masking: bool = Field(
        False,
        description="mask whole words (words are separated by spaces in the corpus) (mlm)",
    )
    vocab_size: int = Field(8000, ge=300, description="byte-level BPE vocabulary size (clm)")
    min_char_count: int = Field(
        2, ge=1, description="characters seen fewer times become [UNK] (mlm, from scratch)"
    )
    architecture: ArchitectureConfig = Field(
        default_factory=ArchitectureConfig, description="model shape (from scratch)"
    )
    training: TrainingConfig = Field(
        default_factory=lambda: TrainingConfig(
            epochs=1, learning_rate=5e-4, batch_size=32, group_by_length=False,
            early_stopping_patience=None, eval_strategy="steps", eval_steps=500,
            logging_steps=100, save_total_limit=2,
        ),
        description="optimisation settings",
    )  # fmt: skip


def parse_override(item: str) -> tuple[str, Any]:
    """Split ``a.b.c=value`` into the dotted key and a YAML-parsed value.

    Raises:
        UserError: if the item has no ``=``.
    """
    if "=" not in item:
        raise UserError(
            f"override '{item}' has no '='; write it as key=value, e.g. training.learning_rate=3e-5"
        )
    key, raw = item.split("=", 1)
    if raw.lstrip().startswith(("|", ">")):  # YAML block-scalar markers: mean the character
        return key.strip(), raw
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    # ValueError: a date-like value that is no date ("2020-02-30"); RecursionError: "[[[[...".
    except (yaml.YAMLError, ValueError, RecursionError):
        value = raw
    return key.strip(), value


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """Set ``tree['a']['b'] = value`` for key ``'a.b'``, creating sections as needed."""
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML config file into a dict, with clear errors."""
    from tunelab.data.load import names_a_data_file

    if not path.is_file():
        raise UserError(f"config file {path} does not exist; check the path")
    if names_a_data_file(path):  # `tunelab train reviews.csv`: the data where the config goes
        raise UserError(f"{path} is a data file, not a YAML run config: give it with --data {path}")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(
            f"config file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"config file {path} is not valid YAML{where}; fix its syntax") from None
    if loaded is None:
        return {}
    if isinstance(loaded, list) and path.suffix.lower() == ".json":  # records: the data file
        raise UserError(f"{path} is a data file, not a YAML run config: give it with --data {path}")
    if not isinstance(loaded, dict):
        raise UserError(
            f"config file {path} must hold a mapping of keys, not a {type(loaded).__name__}"
        )
    return loaded


def build_config(
    raw: dict[str, Any] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    schema: type[BaseModel] = RunConfig,
) -> Any:
    """Validate a config tree (a ``RunConfig`` by default) after dotted ``key=value`` overrides.

    Raises:
        UserError: naming the first bad key and what it accepts.
    """
    tree: dict[str, Any] = copy.deepcopy(dict(raw or {}))  # overrides never touch the caller's
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(tree, key, value)
    try:
        return schema.model_validate(tree)
    except ValidationError as exc:
        raise UserError(_describe_validation_error(exc, schema)) from None


def given_keys(config: BaseModel, prefix: str = "") -> set[str]:
    """The dotted keys of ``config`` that were given (by a file, a dict, an override or an
    assignment) rather than left at their defaults: what the data may not guess."""
    keys = set()
    for name in config.model_fields_set:
        value = getattr(config, name)
        if isinstance(value, BaseModel):
            keys |= given_keys(value, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def _keep_only_given(config: BaseModel, keys: set[str], prefix: str = "") -> None:
    """Make ``keys`` the given keys of ``config`` again after a rebuild from a full dump,
    which lists every key (the others read as defaults, as they were)."""
    names = set()
    for name in type(config).model_fields:
        dotted = prefix + name
        value = getattr(config, name)
        if isinstance(value, BaseModel):
            _keep_only_given(value, keys, dotted + ".")
        if dotted in keys or any(key.startswith(dotted + ".") for key in keys):
            names.add(name)
    object.__setattr__(config, "__pydantic_fields_set__", names)


def load_config(path: Path | str, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Load a YAML config file, apply overrides, validate. Relative data paths stay as given."""
    return build_config(read_yaml(Path(path)), overrides)


def as_config(
    config: BaseModel | dict[str, Any] | str | Path,
    overrides: Sequence[str] = (),
    schema: type[BaseModel] = RunConfig,
) -> Any:
    """A validated ``schema`` config from a config object, a dict of its keys or a YAML path,
    with dotted ``key=value`` overrides applied; the caller's object or dict is never changed.

    Raises:
        UserError: for an unreadable file or a bad key or value.
    """
    if isinstance(config, schema) and not overrides:
        return config
    given: set[str] | None = None
    if isinstance(config, BaseModel):
        given = given_keys(config)  # a dump lists every key: keep which ones were given
        config = config.model_dump()
    elif isinstance(config, (str, Path)):
        config = read_yaml(Path(config))
    built = build_config(config, list(overrides), schema)
    if given is not None:
        _keep_only_given(built, given | {parse_override(item)[0] for item in overrides})
    return built


def _section_model(loc: tuple[Any, ...], model: type[BaseModel]) -> type[BaseModel]:
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            break
    return model


def _key_of(error: Any) -> tuple[str, ...]:
    # list indices and the branch tags of a union ('constrained-float', "literal['auto']")
    # are no config keys
    return tuple(str(p) for p in error["loc"] if isinstance(p, str) and p.isidentifier())


def _describe_validation_error(exc: ValidationError, schema: type[BaseModel]) -> str:
    errors = exc.errors()
    loc = _key_of(errors[0])
    key = ".".join(loc) or "(top level)"
    # a value a union rejects fails once per branch: one problem, explained once
    same_key = [e for e in errors if _key_of(e) == loc]
    more = len({_key_of(e) for e in errors}) - 1
    tail = f" ({more} more problem{'s' if more > 1 else ''} after this one)" if more else ""
    error = next((e for e in same_key if e["type"] != "literal_error"), errors[0])
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    if error["type"] == "extra_forbidden" and loc:
        section = _section_model(loc[:-1], schema)
        allowed = list(section.model_fields)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return (
            f"unknown config key '{key}'; {hint}allowed keys here are: {', '.join(allowed)}{tail}"
        )
    if error["type"] == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"config key '{key}' has value {shown}; allowed: {expected}{tail}"
    message = error["msg"].removeprefix("Value error, ")
    alternatives = [e.get("ctx", {}).get("expected") for e in same_key if e is not error]
    alternatives = [a for a in alternatives if a]
    if alternatives:
        message += f", or {' or '.join(alternatives)}"
    return f"config key '{key}' has value {shown}, which is invalid: {message}{tail}"


_YAML_LINE_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")


def yaml_value(value: Any) -> str:
    """``value`` as one line of ASCII YAML that reads back as the same value.

    Strings become double-quoted with escapes (JSON would write characters beyond U+FFFF as
    surrogate pairs, which YAML reads back as two broken characters); lists and mappings
    become flow style.
    """
    if isinstance(value, str):
        escaped = []
        for ch in value:
            code = ord(ch)
            if ch in '"\\':
                escaped.append("\\" + ch)
            elif 0x20 <= code < 0x7F:
                escaped.append(ch)
            elif code <= 0xFF:
                escaped.append(f"\\x{code:02x}")
            elif code <= 0xFFFF:
                escaped.append(f"\\u{code:04x}")
            else:
                escaped.append(f"\\U{code:08x}")
        return '"' + "".join(escaped) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{yaml_value(str(k))}: {yaml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def field_description(key: str, schema: type[BaseModel] = RunConfig) -> str:
    """The description of the config key ``key`` (dotted, e.g. ``data.text_column``): the
    CLI's help for the option that sets it, so the two cannot drift apart.

    Raises:
        KeyError: if ``schema`` has no such key (a programming error: the CLI names a key that
            is gone, and ``import tunelab.cli`` fails at once).
    """
    model = schema
    *sections, name = key.split(".")
    for part in sections:
        section = model.model_fields[part].annotation
        if not (isinstance(section, type) and issubclass(section, BaseModel)):
            raise KeyError(f"{key}: {part} is not a config section")
        model = section
    description = model.model_fields[name].description
    if not description:
        raise KeyError(f"{key} has no description")
    return description


def commented_yaml(
    config: BaseModel, indent: int = 0, choices: Mapping[str, Sequence[str]] | None = None
) -> str:
    """Render a config as YAML with every field's description as a comment.

    Args:
        config: the config (or one of its sections).
        indent: the section's depth.
        choices: allowed values added to the comments of keys whose field cannot list them,
            by dotted key: the task names, which the registry above the config knows.
    """
    lines: list[str] = []
    pad = "  " * indent
    choices = choices or {}
    plain_values = config.model_dump(mode="json")  # paths become strings
    for name, field in type(config).model_fields.items():
        value = getattr(config, name)
        comment = f"  # {field.description}" if field.description else ""
        if name in choices:
            comment += f" ({', '.join(choices[name])})"
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{name}:{comment}")
            inner = {k.partition(".")[2]: v for k, v in choices.items() if k.startswith(name + ".")}
            lines.append(commented_yaml(value, indent + 1, inner))
        else:
            plain = plain_values[name]
            rendered = yaml.safe_dump(
                plain, default_flow_style=True, allow_unicode=True, width=float("inf")
            )
            rendered = rendered.strip().removesuffix("...").strip()
            if any(mark in rendered for mark in _YAML_LINE_BREAKS):
                rendered = yaml_value(plain)
            lines.append(f"{pad}{name}: {rendered}{comment}")
    return "\n".join(lines)
