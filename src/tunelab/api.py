"""The Python API: ``train``, ``evaluate`` and ``predict``, each returning plain values.

The CLI is a thin layer over these functions. Each one validates its inputs before it
loads a model, so mistakes cost seconds, not a training run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.config import RunConfig, build_config, commented_yaml, load_config
from tunelab.data.clean import drop_invalid_rows
from tunelab.data.fix import doctor_files, doctor_tagging_files
from tunelab.data.load import read_table
from tunelab.errors import RunInterrupted, UserError
from tunelab.evaluation.metrics import softmax
from tunelab.evaluation.report import build_report
from tunelab.inference import resolve_precision
from tunelab.models.adapters import (
    PROMPT_METHODS,
    TASK_TYPES,
    add_adapters,
    base_model,
    check_adapter_settings,
    parameter_counts,
    quantization_kwargs,
)
from tunelab.models.choice import AUTO, SCRATCH, choose_model
from tunelab.models.linear_baseline import METHOD
from tunelab.models.load import from_pretrained, resolve_model_source
from tunelab.models.scratch import save_scratch_bert
from tunelab.models.trained import load_trained, save_base_settings
from tunelab.models.trained import merge as merge  # part of the API
from tunelab.outputs import atomic_folder, write_json, write_jsonl, write_text
from tunelab.tasks import Task, task_from_run_config
from tunelab.tasks.token_classification import TokenClassification
from tunelab.training.few_shot import train_few_shot
from tunelab.training.learning_rate import default_learning_rate
from tunelab.training.prepare import load_splits
from tunelab.training.tracking import check_trackers, log_final_metrics
from tunelab.training.trainer import (
    build_trainer,
    choose_max_length,
    distributed_arguments,
    last_checkpoint,
    model_length_limit,
)

log = logging.getLogger("tunelab")


def _as_config(config: RunConfig | dict[str, Any] | str | Path, overrides: list[str]) -> RunConfig:
    if isinstance(config, RunConfig):
        return build_config(config.model_dump(), overrides) if overrides else config
    if isinstance(config, dict):
        return build_config(config, overrides)
    return load_config(config, overrides)


def _prepare_output(output: Path, resume: bool, overwrite: bool) -> None:
    finished = (output / "model").exists() or (output / "checkpoints").exists()
    if finished and not (resume or overwrite):
        raise UserError(
            f"run folder {output} already holds a run; pass --resume to continue it, --overwrite "
            "to replace it, or choose another --output"
        )
    if overwrite and not resume:
        outputs = ("model", "checkpoints", "metrics.json", "predictions.jsonl", "tensorboard")
        for name in (*outputs, "report.html"):
            target = output / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()


def _model_source(config: RunConfig, train: pd.DataFrame, task: Task, checkpoints: Path) -> str:
    if config.model.name != "scratch-bert":
        return resolve_model_source(config.model.name)
    scratch = config.model.scratch
    texts = train[task.text_column].astype(str).tolist()
    if task.text_pair_column:
        texts += train[task.text_pair_column].astype(str).tolist()
    log.warning(
        "model.name is scratch-bert: training a randomly initialised %d-layer BERT (hidden %d) "
        "with a character vocabulary built from the training data; a pretrained model does better",
        scratch.layers,
        scratch.hidden,
    )
    return str(
        save_scratch_bert(
            texts,
            checkpoints / "scratch-init",
            scratch.layers,
            scratch.hidden,
            scratch.heads,
            scratch.min_char_count,
            seed=config.seed,
        )
    )


def train(
    config: RunConfig | dict[str, Any] | str | Path,
    overrides: list[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: list[Any] | None = None,
) -> dict[str, Any]:
    """Fine-tune a model as ``config`` describes and evaluate it.

    Args:
        config: a RunConfig, a dict of config keys, or a YAML file path.
        overrides: dotted ``key=value`` strings applied on top.
        resume: continue from the newest checkpoint in the run folder.
        overwrite: replace an existing run in the output folder.
        callbacks: extra ``transformers.TrainerCallback`` objects for the Trainer.

    Returns:
        ``{"output": ..., "model_dir": ..., "metrics": {"validation": ..., "test": ...}}``.

    Raises:
        UserError: for any problem with the config, the data or the model name.
    """
    # a copy: resolving `auto` values must not change the caller's config (a search reuses it)
    config = _as_config(config, list(overrides or [])).model_copy(deep=True)
    from tunelab.training.health import LearningWatch, final_warnings

    task = task_from_run_config(config)
    _check_training_method(config)
    check_trackers(config.tracking)
    distributed_arguments(config.training)
    splits, data_report = load_splits(config, task)
    if config.model.name == AUTO:
        choice = choose_model(config.task, splits["train"][task.text_column].astype(str))
        config.model.name = choice.name
        data_report["model_choice"] = choice.as_dict()
        log.info("model.name auto: %s, because %s", choice.name, choice.reason)
        _check_training_method(config)
    if config.training.method == "few-shot" and task.problem_type != "single_label":
        raise UserError(
            "training.method=few-shot needs single-label text classification; this run is "
            f"{config.task} ({task.problem_type}); use training.method=full"
        )
    output = config.output
    main_process = is_main_process()
    if main_process:  # under torchrun/accelerate the first process alone touches the folder
        _prepare_output(output, resume, overwrite)
        # written again at the end; until metrics.json exists, `tunelab runs` lists it incomplete
        write_text(output / "config.yaml", commented_yaml(config) + "\n")
    checkpoints = output / "checkpoints"

    import torch
    from transformers import AutoTokenizer, set_seed

    if config.training.threads:
        torch.set_num_threads(config.training.threads)
    started = time.time()
    source = _model_source(config, splits["train"], task, checkpoints)
    load_kwargs = {
        "revision": config.model.revision,
        "trust_remote_code": config.model.trust_remote_code,
        "allow_pickle": config.model.allow_pickle,
    }
    tokenizer = from_pretrained(AutoTokenizer, source, **load_kwargs)
    set_seed(config.seed)
    model = task.build_model(source, **load_kwargs, **quantization_kwargs(config.peft))
    if config.training.learning_rate == AUTO:
        data_report["learning_rate"] = _resolve_learning_rate(config, model)
    model = add_adapters(model, config.peft, TASK_TYPES[task.auto_model_class().__name__])
    lengths = task.token_lengths(splits["train"], tokenizer)
    length_limit = model_length_limit(model.config, tokenizer)
    if length_limit and config.peft.method in PROMPT_METHODS:  # virtual tokens take positions
        length_limit -= config.peft.num_virtual_tokens
    max_length = choose_max_length(lengths, length_limit, config.model.max_length)
    data_report["tokens"] = {
        "max_length": max_length,
        "truncated_share": float((lengths > max_length).mean()),
        "p50": float(pd.Series(lengths).median()),
    }
    encoded = {split: task.encode(frame, tokenizer, max_length) for split, frame in splits.items()}
    precision = resolve_precision(config.training.precision)
    log.info(
        "training on %d rows (validation %d, test %d), max_length %d, precision %s",
        len(splits["train"]),
        len(splits.get("validation", [])),
        len(splits.get("test", [])),
        max_length,
        precision,
    )
    loss, data_report["loss"] = task.loss_function(
        splits["train"], config.training.class_weights, config.training.label_smoothing
    )
    if data_report["loss"].get("class_weights"):
        log.info(
            "classes are imbalanced (%.1f:1): training with class-weighted cross-entropy %s",
            data_report["loss"]["imbalance_ratio"], data_report["loss"]["class_weights"],
        )  # fmt: skip
    trainer, watch = None, None
    if config.training.method == "few-shot":
        stats = _train_few_shot(
            config, task, model, tokenizer, splits["train"], encoded["train"], precision
        )
    else:
        watch = LearningWatch(task, len(splits.get("validation", [])))
        trainer = build_trainer(
            model, tokenizer, task, encoded["train"], encoded.get("validation"),
            config.training, checkpoints, config.seed, precision, compute_loss_func=loss,
            callbacks=[*(callbacks or []), watch], tracking=config.tracking,
        )  # fmt: skip
        resume_from = None
        if resume:
            resume_from = last_checkpoint(checkpoints)
            if resume_from is None:
                log.warning(
                    "--resume: no checkpoint in %s yet, starting from the beginning", checkpoints
                )
        train_output = trainer.train(resume_from_checkpoint=resume_from)
        _stop_if_interrupted(trainer, checkpoints)
        model = trainer.model
        stats = {
            "steps": int(train_output.global_step),
            "loss": float(train_output.training_loss),
            "samples_per_second": train_output.metrics.get("train_samples_per_second"),
            "optimizer_seconds": train_output.metrics.get("train_runtime"),
        }

    run_metrics: dict[str, Any] = {
        "train": {
            "seconds": round(time.time() - started, 2),
            **stats,
            "precision": precision,
            "peak_memory_mb": _peak_memory_mb(),
            **parameter_counts(model),
        }
    }
    held_out_loss: dict[str, dict[str, float]] = {}
    if trainer is not None and task.main_metric == "loss":  # generation: held-out perplexity
        for split in ("validation", "test"):
            if split in splits and len(encoded[split]):
                loss = float(trainer.evaluate(encoded[split])["eval_loss"])
                held_out_loss[split] = {"loss": loss, "perplexity": math.exp(loss)}
    if not main_process:  # the others took part in training and the evaluations above
        return {"output": str(output), "model_dir": str(output / "model"), "metrics": {}}
    # after the losses: it may switch the model to inference settings (a KV cache would
    # let packed rows see each other)
    task.finish(base_model(model), tokenizer)
    outputs = {
        split: _forward(
            model, tokenizer, task, splits[split], max_length, config.training.eval_batch_size
        )
        for split in task.evaluated_splits
        if split in splits
    }
    if "validation" in outputs:
        run_metrics["calibration"] = task.calibrate(outputs["validation"], splits["validation"])
    for split in ("validation", "test"):  # a split may have a loss, outputs, or both
        scores = dict(held_out_loss.get(split, {}))
        if split in outputs:
            scores = {**task.evaluate_outputs(outputs[split], splits[split]), **scores}
        if scores:
            run_metrics[split] = scores
    baseline = _linear_baseline(task, splits, config.seed)
    if baseline:
        run_metrics["baseline"] = baseline
    history = trainer.state.log_history if trainer is not None else []
    run_metrics["warnings"] = final_warnings(
        task, run_metrics, history, watch.warnings if watch else []
    )
    for warning in run_metrics["warnings"]:
        log.warning("%s", warning)

    metadata = {**task.metadata(), "max_length": max_length}
    if config.peft.method != "none":
        metadata["adapter"] = {"method": config.peft.method, "base_model": config.model.name}
        # the folder the base came from, for plain PEFT loading; tunelab also finds a bundled
        # base again by its name when the repository moved
        model.peft_config["default"].base_model_name_or_path = source
    base_model(model).config.tunelab = metadata
    with atomic_folder(output / "model") as model_dir:
        model.save_pretrained(model_dir)  # a PEFT model saves its adapter alone
        if config.peft.method != "none":
            save_base_settings(base_model(model), model_dir)
        tokenizer.save_pretrained(model_dir)
        write_text(model_dir / "tunelab.yaml", commented_yaml(config) + "\n")
    if "test" in outputs:
        write_jsonl(output / "predictions.jsonl", task.predictions(outputs["test"], splits["test"]))
    write_json(output / "data_report.json", data_report)
    if trainer is not None:  # loss and metric per logging step and evaluation, for the report
        write_json(output / "history.json", trainer.state.log_history)
    if trainer is not None and config.tracking:
        log_final_metrics(config.tracking, output, run_metrics, trainer.state.global_step)
    write_json(output / "metrics.json", run_metrics)
    write_text(output / "config.yaml", commented_yaml(config) + "\n")

    report: Path | None = None
    try:
        report = build_report(output, loaded=(model, tokenizer, task, max_length))
        log.info("report: %s", report)
    except Exception as error:  # the run itself is complete; a report can be rebuilt later
        log.warning("report.html was not written (%s); rebuild it with: tunelab report %s",
                    error, output)  # fmt: skip
    return {
        "output": str(output),
        "model_dir": str(output / "model"),
        "metrics": run_metrics,
        "report": str(report) if report else None,
    }


def _resolve_learning_rate(config: RunConfig, model: Any) -> dict[str, Any]:
    """Replace ``training.learning_rate: auto`` by the rate for this model; what and why."""

    parameters = sum(p.numel() for p in model.parameters())
    rate, reason = default_learning_rate(
        parameters, config.model.name == SCRATCH, config.peft.method, config.training.method
    )
    config.training.learning_rate = rate
    log.info("training.learning_rate auto: %g for %s (--set training.learning_rate=... "
             "overrides it)", rate, reason)  # fmt: skip
    return {"value": rate, "reason": reason}


def _linear_baseline(
    task: Task, splits: dict[str, pd.DataFrame], seed: int
) -> dict[str, Any] | None:
    """The task's classical baseline fit on the training rows, scored on the held-out ones."""

    started = time.time()
    outputs = task.baseline_outputs(splits, seed)
    if not outputs:
        return None
    scores = {
        split: {
            key: value
            for key, value in task.evaluate_outputs(out, splits[split]).items()
            if isinstance(value, (int, float))
        }
        for split, out in outputs.items()
    }
    return {"method": METHOD, "seconds": round(time.time() - started, 2), **scores}


def is_main_process() -> bool:
    """False in every process but the first of a torchrun/accelerate launch (``RANK``)."""
    return int(os.environ.get("RANK", "0")) == 0


def _stop_if_interrupted(trainer: Any, checkpoints: Path) -> None:
    """After Ctrl-C the Trainer stopped early with a checkpoint: no final outputs then."""
    from tunelab.training.interrupt import StopOnInterrupt

    handlers = trainer.callback_handler.callbacks
    if any(isinstance(h, StopOnInterrupt) and h.interrupted for h in handlers):
        raise RunInterrupted(last_checkpoint(checkpoints))


def _train_few_shot(
    config: RunConfig,
    task: Task,
    model: Any,
    tokenizer: Any,
    train: pd.DataFrame,
    features: Any,
    precision: str,
) -> dict[str, Any]:
    import numpy as np

    training = config.training
    return train_few_shot(
        model, tokenizer, features, np.asarray(task.targets(train)), config.few_shot,
        training.learning_rate, training.batch_size, precision, config.seed,
    )  # fmt: skip


def _check_training_method(config: RunConfig) -> None:
    """Refuse adapter and few-shot settings that cannot work, before any data is read."""

    if config.training.method == "few-shot" and config.peft.method != "none":
        raise UserError(
            "training.method=few-shot tunes the whole encoder on pairs; set peft.method=none"
        )
    if config.peft.method != "none" and config.model.name == "scratch-bert":
        raise UserError(
            f"peft.method={config.peft.method} trains small adapters on a pretrained model, but "
            "model.name is scratch-bert (random weights); choose a pretrained model or "
            "peft.method=none"
        )
    check_adapter_settings(config.peft, config.task, config.generation.packing)


def _peak_memory_mb() -> float:
    """Peak memory of this process so far: GPU allocations on CUDA, resident set on CPU."""
    import resource

    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _forward(
    model: Any,
    tokenizer: Any,
    task: Task,
    frame: pd.DataFrame,
    max_length: int,
    batch_size: int,
    precision: str = "fp32",
) -> Any:
    return task.forward(model, tokenizer, frame, max_length, batch_size, precision)


def evaluate(
    model_or_run: str | Path,
    data: str | Path,
    output: str | Path | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    encoding: str | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Score a trained model on any labelled file.

    Returns:
        The metrics (flat scores plus per-class report and confusion matrix). With
        ``output``, also writes ``metrics.json`` and ``predictions.jsonl`` there.
    """
    model, tokenizer, task, max_length = load_trained(model_or_run)
    if text_column:
        task.text_column = text_column
    if label_column:
        task.label_column = label_column
    frame = task.standardize(read_table(data, encoding=encoding))
    frame, _ = drop_invalid_rows(frame, list(task.required_columns()), drop=True)
    task.check_labels(frame)
    outputs = _forward(model, tokenizer, task, frame, max_length, batch_size)
    result = task.evaluate_outputs(outputs, frame)
    if output is not None:
        out = Path(output)
        write_json(out / "metrics.json", {"data": str(data), "test": result})
        write_jsonl(out / "predictions.jsonl", task.predictions(outputs, frame))
    return result


def predict(
    model_dir: str | Path,
    texts: list[str] | None = None,
    input: str | Path | None = None,
    output: str | Path | None = None,
    text_column: str | None = None,
    encoding: str | None = None,
    batch_size: int = 64,
    precision: str = "fp32",
) -> list[dict[str, Any]]:
    """Predict for ``texts`` or the rows of an ``input`` file, in length-sorted batches.

    Args:
        precision: ``fp32`` matches plain ``transformers`` exactly; ``bf16`` is faster on CPUs
            and GPUs with bf16 units.

    Returns:
        One record per input (``label``/``score``/``probabilities``, ``labels`` or ``value``).
        With ``output`` (``.jsonl`` or ``.csv``), also writes them there.
    """
    if (texts is None) == (input is None):
        raise UserError(
            "give either texts (--text) or an input file (--input), not both or neither"
        )
    model, tokenizer, task, max_length = load_trained(model_dir)
    if text_column:
        task.text_column = text_column
    if input is not None:
        frame = read_table(input, encoding=encoding).fillna("")
        frame = task.standardize(frame, with_labels=False)
    else:
        if task.text_pair_column:
            raise UserError(
                "this model classifies text pairs; give an --input file with both columns"
            )
        frame = text_frame(task, list(texts or []))

    outputs = _forward(
        model, tokenizer, task, frame, max_length, batch_size, resolve_precision(precision)
    )
    records = task.predictions(outputs, frame)
    if output is not None:
        _write_predictions(Path(output), records)
    return records


def text_frame(
    task: Task, texts: list[str], pairs: list[str] | None = None, source: str = "--text"
) -> pd.DataFrame:
    """Rows for ``task`` built from plain texts (and second texts of a pair model).

    Points the task at the frame's own ``text`` (and ``text_pair``) column, so the records
    that ``task.predictions`` returns carry those keys; ``source`` names the rows in errors.
    """
    task.text_column = "text"
    columns: dict[str, list[str]] = {"text": texts}
    if pairs is not None:
        task.text_pair_column = "text_pair"
        columns["text_pair"] = pairs
    frame = pd.DataFrame(columns)
    frame.attrs["source"] = source
    return task.standardize(frame.fillna(""), with_labels=False)


def _write_predictions(path: Path, records: list[dict[str, Any]]) -> None:
    if path.suffix.lower() == ".csv":
        flat = []
        for record in records:
            row = {k: v for k, v in record.items() if k != "probabilities"}
            if isinstance(row.get("labels"), list):
                row["labels"] = "|".join(row["labels"])
            for key, value in row.items():  # tokens, tags, entities: JSON in one cell
                if isinstance(value, (list, dict)):
                    row[key] = json.dumps(value, ensure_ascii=False)
            for name, p in record.get("probabilities", {}).items():
                row[f"p_{name}"] = p
            flat.append(row)
        write_text(path, pd.DataFrame(flat).to_csv(index=False))
    else:
        write_jsonl(path, records)


def doctor(
    data: str | Path,
    validation: str | Path | None = None,
    test: str | Path | None = None,
    text_column: str = "text",
    label_column: str | None = "label",
    model: str | Path | None = None,
    max_length: int | None = None,
    encoding: str | None = None,
    report: str | Path = "data_report.json",
    fixed: str | Path | None = None,
    label_errors: bool = True,
    drop_label_errors: bool = False,
) -> str:
    """Diagnose data files (see :mod:`tunelab.data.doctor`); with ``fixed``, write cleaned data.

    Args:
        model: a tunelab model folder: its tokenizer measures token lengths and its
            probabilities replace the TF-IDF model's for label errors; any other HF model
            folder or hub id gives token lengths only.

    Returns:
        The terminal report; the JSON report is written to ``report``.
    """

    files = {"train": data, "validation": validation, "test": test}
    files = {split: Path(path) for split, path in files.items() if path is not None}
    tokenizer, probabilities_of = None, None
    if model is not None:
        from transformers import AutoTokenizer

        if (Path(model) / "model" / "config.json").is_file() or (
            Path(model) / "tunelab.yaml"
        ).is_file():
            trained, tokenizer, task, trained_length = load_trained(model)
            max_length = max_length or trained_length
            task.text_column = text_column

            def probabilities_of(frame: pd.DataFrame) -> Any:
                outputs = softmax(_forward(trained, tokenizer, task, frame, trained_length, 64))
                order = sorted(range(len(task.labels)), key=lambda i: task.labels[i])
                return outputs[:, order]
        else:
            tokenizer = from_pretrained(AutoTokenizer, str(model))
    return doctor_files(
        files, text_column, label_column, tokenizer, max_length, encoding, Path(report),
        None if fixed is None else Path(fixed), label_errors, drop_label_errors, probabilities_of,
    )  # fmt: skip


def doctor_tagging(
    data: str | Path,
    validation: str | Path | None = None,
    test: str | Path | None = None,
    encoding: str | None = None,
    tag_column: int = -1,
    scheme: str = "auto",
    report: str | Path = "data_report.json",
    fixed: str | Path | None = None,
) -> str:
    """Diagnose sequence-labelling files (CoNLL, JSONL tokens/tags or text/spans).

    Reports tags, entities per type, broken sequences, duplicates and leakage; with
    ``fixed``, writes the training rows with broken sequences repaired in ``scheme``.

    Returns:
        The terminal report; the JSON report is written to ``report``.
    """

    files = {"train": data, "validation": validation, "test": test}
    files = {split: Path(path) for split, path in files.items() if path is not None}
    return doctor_tagging_files(
        files, TokenClassification(scheme=scheme), encoding, tag_column, Path(report),
        None if fixed is None else Path(fixed),
    )  # fmt: skip
