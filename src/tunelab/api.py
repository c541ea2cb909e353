"""The Python API: ``train``, ``evaluate`` and ``predict``, each returning plain values.

The CLI is a thin layer over these functions. Each one validates its inputs before it
loads a model, so mistakes cost seconds, not a training run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.config import RunConfig, as_config, build_config
from tunelab.data.clean import drop_invalid_rows
from tunelab.data.columns import guess_text_column
from tunelab.data.fix import doctor_files, doctor_image_files, doctor_tagging_files
from tunelab.data.load import file_format, plain_text_lines, read_table
from tunelab.data.media import folder_media_kinds
from tunelab.data.saved_dataset import is_saved_dataset
from tunelab.data.split_folder import expand_split_folder, held_out_split
from tunelab.errors import UserError
from tunelab.evaluation.metrics import sigmoid, softmax
from tunelab.inference import resolve_prediction_precision
from tunelab.models.load import from_pretrained
from tunelab.models.trained import load_trained
from tunelab.models.trained import merge as merge  # part of the API
from tunelab.outputs import write_json, write_jsonl, write_text
from tunelab.tasks import Task
from tunelab.tasks.image_classification import ImageClassification
from tunelab.tasks.text_classification import TextClassification
from tunelab.tasks.token_classification import TokenClassification
from tunelab.tasks.typed_rows import text_frame
from tunelab.training.finetune import fit, prepare_run, save_run, score

log = logging.getLogger("tunelab")
AUTO = "auto"  # a column the doctor reads from the data, as training does


def train(
    config: RunConfig | dict[str, Any] | str | Path,
    overrides: list[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: list[Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Fine-tune a model as ``config`` describes and evaluate it.

    The stages of :mod:`tunelab.training.finetune`, in order.

    Args:
        config: a RunConfig, a dict of config keys, or a YAML file path.
        overrides: dotted ``key=value`` strings applied on top.
        resume: continue from the newest checkpoint in the run folder.
        overwrite: replace an existing run in the output folder.
        callbacks: extra ``transformers.TrainerCallback`` objects for the Trainer.
        command: the command line that started the run, for the model card.

    Returns:
        ``{"output": ..., "model_dir": ..., "metrics": {"validation": ..., "test": ...},
        "report": ...}``.

    Raises:
        UserError: for any problem with the config, the data or the model name.
    """
    # a copy: resolving `auto` values must not change the caller's config (a search reuses it)
    config = as_config(config, overrides or []).model_copy(deep=True)
    parts = prepare_run(config, resume, overwrite)  # checks, data, folder, model, features
    fitted = fit(parts, resume, callbacks)  # few-shot pairs or the HF Trainer
    scores = score(parts, fitted)  # held-out loss, metrics, baseline, learning checks
    if not parts.main_process:  # the others took part in training and the held-out loss
        return {"output": str(config.output), "model_dir": str(config.output / "model"),
                "metrics": {}}  # fmt: skip
    return save_run(parts, fitted, scores, command)  # model/ and its card, metrics, report


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
    precision: str = "auto",
) -> dict[str, Any]:
    """Score a trained model on any labelled file (a folder of split files: its test file, or
    its validation file where it has none).

    ``precision`` as :func:`predict` takes it: ``auto`` (the default) is ``checked``, fp32's
    labels at nearly bf16's speed, where bf16 is faster on this machine, else ``fp32``.

    Returns:
        The metrics (flat scores plus per-class report and confusion matrix). With
        ``output``, also writes ``metrics.json`` and ``predictions.jsonl`` there.
    """
    data, taken = held_out_split(Path(data))  # a split folder: its test file
    if taken:
        log.info("%s", taken)
    model, tokenizer, task, max_length = load_trained(model_or_run)
    if text_column:
        task.text_column = text_column
    if label_column:
        task.label_column = label_column
    given = read_table(data, encoding=encoding, media=task.input_kind)
    frame = task.standardize(given)
    frame, _ = drop_invalid_rows(frame, list(task.required_columns()), drop=True)
    task.check_labels(frame)
    precision = resolve_prediction_precision(precision, rows=len(frame))
    outputs = _forward(model, tokenizer, task, frame, max_length, batch_size, precision)
    result = task.evaluate_outputs(outputs, frame)
    if output is not None:
        out = Path(output)
        write_json(out / "metrics.json", {"data": str(data), "test": result})
        records = _with_other_input_columns(task.predictions(outputs, frame), given, frame, task)
        write_jsonl(out / "predictions.jsonl", records)
    return result


def predict(
    model_dir: str | Path,
    texts: list[str] | None = None,
    input: str | Path | None = None,
    output: str | Path | None = None,
    text_column: str | None = None,
    encoding: str | None = None,
    batch_size: int = 64,
    precision: str = "auto",
    images: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Predict for ``texts`` or the rows of an ``input`` file, in length-sorted batches.

    Args:
        images: for a vision-language model (image-text-to-text), the image each of
            ``texts`` asks about (one for all, or one per text).
        precision: ``auto`` (the default) is ``checked`` where bf16 is faster on this
            machine, else ``fp32``, and ``fp32`` for at most 64 rows; ``checked`` runs bf16
            and recomputes in fp32 each row whose decision bf16 could have changed (fp32's
            labels, scores within bf16's rounding); ``fp32`` matches plain ``transformers``
            exactly; ``bf16`` is faster on CPUs and GPUs with bf16 units.

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
    question_frame = getattr(task, "question_frame", None)
    if images and question_frame is None:
        raise UserError(f"--image is for image-text-to-text models; this is a {task.name} "
                        "model: give its inputs with --text or --input")  # fmt: skip
    given: pd.DataFrame | None = None  # the input file as read, when it is a table
    reads_text = task.input_kind == "text" and question_frame is None
    lines = plain_text_lines(input, encoding) if input is not None and reads_text else None
    if lines is not None:  # a .txt file of one text a line, as --text gives them
        if task.text_pair_column:
            raise UserError(
                f"this model classifies text pairs; {input} holds one text a line: give a "
                "table with both columns"
            )
        if not lines:
            raise UserError(f"{input} holds no text; put one text on each line")
        frame = text_frame(task, lines, source=str(input))
    elif input is not None:
        frame = read_table(input, encoding=encoding, media=task.input_kind).fillna("")
        if not text_column:
            _read_texts_from_a_renamed_column(task, frame)
        given = frame
        frame = task.standardize(frame, with_labels=False)
    elif images:
        frame = question_frame(images, list(texts or []))
    else:
        if task.text_pair_column:
            raise UserError(
                "this model classifies text pairs; give an --input file with both columns"
            )
        frame = text_frame(task, list(texts or []))

    outputs = _forward(
        model, tokenizer, task, frame, max_length, batch_size,
        resolve_prediction_precision(precision, rows=len(frame)),
    )  # fmt: skip
    records = task.predictions(outputs, frame)
    if given is not None:
        records = _with_other_input_columns(records, given, frame, task)
    if output is not None:
        _write_predictions(Path(output), records)
    return records


def _with_other_input_columns(
    records: list[dict[str, Any]], given: pd.DataFrame, read: pd.DataFrame, task: Task
) -> list[dict[str, Any]]:
    """Each record with the input row's other columns first (ids, dates, anything the task
    does not read), so predictions join back to the user's rows; one record per row only.

    ``given`` is the file as read, ``read`` the rows the task made of it (same index)."""
    settings = (getattr(task, name, None) for name in dir(task) if name.endswith("_column"))
    used = {value for value in settings if isinstance(value, str)}  # the task's column options
    used |= set(read.attrs.get("columns", {}).values())  # what standardize read under new names
    used |= set(task.required_columns(with_labels=True))
    extra = [c for c in given.columns if c not in used]
    if not extra or len(records) != len(read) or not read.index.isin(given.index).all():
        return records
    values = given.loc[read.index, extra].to_dict("records")  # plain Python values, in order
    return [
        {**{k: v for k, v in row.items() if k not in record}, **record}
        for row, record in zip(values, records, strict=True)
    ]


def _read_texts_from_a_renamed_column(task: Task, frame: pd.DataFrame) -> None:
    """Point a text classifier at the file's text column when the one it was trained on is
    missing (new files often call it ``text``): guessed as training guesses it, and said."""
    if not isinstance(task, TextClassification) or task.text_pair_column:
        return
    if task.text_column in frame.columns:
        return
    source = frame.attrs.get("source", "the input")
    choice = guess_text_column(frame, "text")
    if choice.column is None:
        raise UserError(
            f"{source} has no column '{task.text_column}' (the model's training texts were "
            f"there) and no column that clearly holds free text; its columns are: "
            f"{', '.join(map(str, frame.columns))}; name the text column with --text-column"
        )
    log.info(
        "%s has no column '%s' (the training texts' column): reading the texts from '%s' "
        "(%s); --text-column names another",
        source, task.text_column, choice.column, choice.evidence,
    )  # fmt: skip
    task.text_column = choice.column


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


GUESS_ROWS = 10_000  # the doctor reads the task from a table's first rows (the checks read all)


def doctor_task(
    data: str | Path,
    validation: str | Path | None = None,
    test: str | Path | None = None,
    format: str = "auto",
    columns_given: bool = False,
) -> str:
    """The task whose checks ``tunelab doctor`` runs when none is named, read from the training
    file as ``tunelab train`` reads it: a folder of class sub-folders holds images (or audio
    clips), a CoNLL file (``.conll``, ``.iob``, ``.bio``, ``.bioes``, ``.conllu``, a ``.txt``
    of tokens and tags, compressed or not) tagged tokens, and any other table the task it
    fits best (texts and labels where no task fits, or where ``columns_given``: the text
    doctor's column options). Logs what it read and the flag that overrides it.

    Raises:
        UserError: for a table two tasks fit equally well, naming both and ``--task``.
    """
    from tunelab.tasks.audio_classification import AudioClassification
    from tunelab.training.guesses import task_fit

    train, *_ = _expanded(data, validation, test)
    if train.is_dir() and not is_saved_dataset(train):
        if folder_media_kinds(train) == {"audio"}:
            task, evidence = AudioClassification.name, "is a folder of class sub-folders of audio"
        else:
            task, evidence = ImageClassification.name, "is a folder of class sub-folders"
    elif train.is_file() and file_format(train, format) in ("conll", "conllu"):
        task, evidence = TokenClassification.name, "is a CoNLL file of tokens and their tags"
    elif columns_given:
        return TextClassification.name
    else:
        config = build_config({"data": {"train": str(train), "format": format}})
        sample = read_table(train, format, max_rows=GUESS_ROWS, skip_bad_lines=True)
        fitted, reason = task_fit(config, sample)
        if fitted is None or fitted == TextClassification.name:
            # the checks read the columns again, and their guess line names them
            return TextClassification.name
        task, evidence = fitted, f"holds {reason}"
    log.info("doctor: %s checks, as %s %s (--task overrides)", task, train, evidence)
    return task


def doctor_as_training(
    data: str | Path,
    validation: str | Path | None = None,
    test: str | Path | None = None,
    task: str | None = None,
    encoding: str | None = None,
    report: str | Path = "data_report.json",
    strict: bool = False,
    format: str = "auto",
    fixed: str | Path | None = None,
    more: list[Path] | tuple[Path, ...] = (),
) -> str:
    """The checks ``tunelab train`` makes of a task's data before it trains, on their own: for
    summaries and translations, instructions and chats, preference and search pairs, image
    captions and chats and audio clips (see :mod:`tunelab.training.task_doctor`). ``task``
    None reads it from the data, as ``train`` does; ``more``: further training files, mixed
    in as ``data.extra_train`` is.

    Returns:
        The terminal report; the JSON report is written to ``report``.

    Raises:
        UserError: for ``fixed`` (a cleaned copy, which only texts and tags are offered).
    """
    from tunelab.training.task_doctor import diagnose_as_training_does

    if fixed is not None:
        raise UserError(
            f"--fix is offered for texts and tags; tunelab train cleans {task or 'this'} data "
            "as it reads it (data.clean), so pass the files to train as they are"
        )

    train, validation, test, _ = _expanded(data, validation, test)
    files = {"train": train, "validation": validation, "test": test}
    config = build_config({
        **({"task": task} if task else {}),
        "data": {**{split: str(path) for split, path in files.items() if path is not None},
                 "extra_train": [str(path) for path in more],
                 "format": format, "encoding": encoding, "drop_invalid": not strict},
    })  # fmt: skip
    return diagnose_as_training_does(config, Path(report))


def doctor(
    data: str | Path,
    validation: str | Path | None = None,
    test: str | Path | None = None,
    text_column: str = AUTO,
    label_column: str | None = AUTO,
    model: str | Path | None = None,
    max_length: int | None = None,
    encoding: str | None = None,
    report: str | Path = "data_report.json",
    fixed: str | Path | None = None,
    label_errors: bool = True,
    drop_label_errors: bool = False,
    strict: bool = False,
    text_pair_column: str | None = None,
    label_separator: str | None = None,
    format: str = "auto",
) -> str:
    """Diagnose data files (see :mod:`tunelab.data.doctor`); with ``fixed``, write cleaned data.

    Args:
        text_column, label_column: ``auto`` (the default) reads them from the training file
            as ``tunelab train`` does (and logs what it read); ``label_column=None`` checks
            unlabelled texts. Read from the file, they bring a second text column (rows
            that hold a pair) and a label separator (several labels a row) with them.
        text_pair_column: the second text of each row, judged together with the first.
        label_separator: split labels such as ``price|delivery`` on this.
        format: the files' format, as ``data.format`` takes it (``auto``: from the extension).
        model: a tunelab model folder: its tokenizer measures token lengths and its
            probabilities replace the TF-IDF model's for label errors; any other HF model
            folder or hub id gives token lengths only.
        strict: stop at the first unparsable line or empty text or label, naming it.

    Returns:
        The terminal report; the JSON report is written to ``report``.
    """

    files = _doctor_files(data, validation, test)
    # read once: the columns are found in the table the doctor then checks
    train = read_table(files["train"], format, encoding=encoding, skip_bad_lines=not strict)
    columns = _doctor_columns(
        files["train"], train, text_column, label_column, text_pair_column, label_separator
    )
    text_column, label_column = columns["text_column"], columns["label_column"]
    text_pair_column, label_separator = columns["text_pair_column"], columns["label_separator"]
    tokenizer, probabilities_of = None, None
    if model is not None:
        from transformers import AutoTokenizer

        if (Path(model) / "model" / "config.json").is_file() or (
            Path(model) / "tunelab.yaml"
        ).is_file():
            trained, tokenizer, task, trained_length = load_trained(model)
            max_length = max_length or trained_length
            task.text_column = text_column

            def probabilities_of(frame: pd.DataFrame) -> pd.DataFrame:
                outputs = _forward(trained, tokenizer, task, frame, trained_length, 64)
                if task.problem_type != "multi_label":
                    return pd.DataFrame(softmax(outputs), frame.index, list(task.labels))
                # each label's own probability, moved so that 0.5 is where the model decides
                # (its tuned threshold): class-weighted training pushes rare labels' up
                centred = sigmoid(outputs - task.decision_logit())
                return pd.DataFrame(centred, frame.index, list(task.labels))
        else:
            tokenizer = from_pretrained(AutoTokenizer, str(model))
    return doctor_files(
        files, text_column, label_column, tokenizer, max_length, encoding, Path(report),
        None if fixed is None else Path(fixed), label_errors, drop_label_errors, probabilities_of,
        strict, {"train": train}, text_pair_column, label_separator, format,
    )  # fmt: skip


def _doctor_files(
    data: str | Path, validation: str | Path | None, test: str | Path | None
) -> dict[str, Path]:
    """The files the doctor reads, by split: a data folder of train/validation/test files gives
    its files (logged), as training takes it."""
    *paths, taken = _expanded(data, validation, test)
    if taken is not None:
        log.info("%s", taken)
    files = dict(zip(("train", "validation", "test"), paths, strict=True))
    return {split: path for split, path in files.items() if path is not None}


def _expanded(
    data: str | Path, validation: str | Path | None, test: str | Path | None
) -> tuple[Path, Path | None, Path | None, str | None]:
    """:func:`expand_split_folder` of the doctor's arguments as given (strings or paths)."""
    given = [None if path is None else Path(path) for path in (validation, test)]
    return expand_split_folder(Path(data), *given)


def _doctor_columns(
    path: Path,
    train: pd.DataFrame,
    text_column: str,
    label_column: str | None,
    text_pair_column: str | None = None,
    label_separator: str | None = None,
) -> dict[str, Any]:
    """The columns of the doctor's training table (``text_column``, ``label_column``, and
    ``text_pair_column`` and ``label_separator`` where the data has them): those given, the
    ``auto`` ones read from the table as `tunelab train` reads them (and logged the same way)."""
    from tunelab.training.guesses import guess_from_data

    if label_column is None:  # unlabelled texts: no task to fit, only the text column to find
        text = _unlabelled_text_column(path, train, text_column)
        return {"text_column": text, "label_column": None, "text_pair_column": text_pair_column,
                "label_separator": None}  # fmt: skip
    columns = {
        "text_column": text_column,
        "label_column": label_column,
        "text_pair_column": text_pair_column,
        "label_separator": label_separator,
    }
    given = {key: value for key, value in columns.items() if value not in (AUTO, None)}
    config = build_config({"task": TextClassification.name,
                           "data": {"train": str(path), **given}})  # fmt: skip
    guess_from_data(config, train)
    if label_column == AUTO and config.data.label_column not in train.columns:
        tagged = {"tokens", "tags"} <= set(train.columns)
        raise UserError(
            f"{path} has no column that reads as labels (its columns are: "
            f"{', '.join(map(str, train.columns))}); "
            + ("tagged tokens are checked with --task token-classification" if tagged else
               "name it with --label-column, or pass --label-column none to check unlabelled "
               "texts")
        )  # fmt: skip
    keys = ("text_column", "label_column", "text_pair_column", "label_separator")
    return {key: getattr(config.data, key) for key in keys}


def _unlabelled_text_column(path: Path, train: pd.DataFrame, text_column: str) -> str:
    """The text column of an unlabelled table: as given, else the one that holds free text."""
    if text_column != AUTO:
        return text_column
    choice = guess_text_column(train, "text")
    if choice.column is None:
        raise UserError(
            f"{path} has no column that clearly holds free text (its columns are: "
            f"{', '.join(map(str, train.columns))}); name it with --text-column"
        )
    log.info("guessed from %s: text column '%s' (%s; --text-column overrides)",
             path, choice.column, choice.evidence)  # fmt: skip
    return choice.column


def doctor_tagging(
    data: str | Path,
    validation: str | Path | None = None,
    test: str | Path | None = None,
    encoding: str | None = None,
    tag_column: int = -1,
    scheme: str = "auto",
    report: str | Path = "data_report.json",
    fixed: str | Path | None = None,
    strict: bool = False,
) -> str:
    """Diagnose sequence-labelling files (CoNLL, JSONL tokens/tags or text/spans).

    Reports tags, entities per type, broken sequences, duplicates and leakage; with
    ``fixed``, writes the training rows with broken sequences repaired in ``scheme``;
    with ``strict``, the first broken sequence stops it instead.

    Returns:
        The terminal report; the JSON report is written to ``report``.
    """

    files = _doctor_files(data, validation, test)
    return doctor_tagging_files(
        files, TokenClassification(scheme=scheme, repair=not strict), encoding, tag_column,
        Path(report),
        None if fixed is None else Path(fixed),
    )  # fmt: skip


def doctor_images(
    data: str | Path,
    validation: str | Path | None = None,
    test: str | Path | None = None,
    image_column: str = "image",
    label_column: str | None = "label",
    report: str | Path = "data_report.json",
    strict: bool = False,
) -> str:
    """Diagnose images: class folders, or CSV/JSONL/Parquet files with a column of image paths.

    Reports unreadable files, exact and near duplicates (perceptual hashes), leakage between
    the splits, sizes and their outliers, and class balance, as ``tunelab train`` does before
    it trains (see :mod:`tunelab.data.image_doctor`).

    Args:
        strict: stop at the first unreadable image or empty path, naming its row and path.

    Returns:
        The terminal report; the JSON report is written to ``report``.
    """
    config = RunConfig.model_validate(
        {
            "task": ImageClassification.name,
            "data": {"train": str(data), "label_column": label_column or "label",
                     "drop_invalid": not strict},
            "image": {"column": image_column},
        }
    )  # fmt: skip
    files = _doctor_files(data, validation, test)
    task = ImageClassification.from_run_config(config)
    return doctor_image_files(files, task, label_column is not None, Path(report))
