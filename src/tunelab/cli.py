"""The ``tunelab`` command line: parse arguments, build a config, call :mod:`tunelab.api`."""

from __future__ import annotations

import atexit
import gc
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tunelab import collector
from tunelab.chat import chat
from tunelab.config import (
    PretrainConfig,
    RunConfig,
    build_config,
    commented_yaml,
    field_description,
    load_config,
    read_yaml,
    yaml_value,
)
from tunelab.errors import RunInterrupted, UserError, one_line
from tunelab.models.catalog import (
    device_memory,
    format_options,
    parse_memory,
    recommend,
    recommendation_json,
)
from tunelab.outputs import write_json, write_text
from tunelab.process_defaults import summary_repeats_warnings, watched_process_defaults
from tunelab.runs import compare_runs, format_comparison, format_runs, list_runs

# Commands import the API, the stages, the studies and the task registry inside their bodies:
# those pull in numpy, pandas and scikit-learn, and `tunelab --help` should not wait for them.
app = typer.Typer(
    help="Fine-tune pretrained language models on your own data.",
    no_args_is_help=False,  # `tunelab` alone: the getting-started lines, then the commands
    pretty_exceptions_enable=False,
    add_completion=False,
    # click's own layout: an option too long for its column gets the help on the next line,
    # where rich's table squeezed every description into what the longest option left
    rich_markup_mode=None,
)
data_app = typer.Typer(
    help="Example data sets built from what installed packages ship.", rich_markup_mode=None
)
app.add_typer(data_app, name="data")

GETTING_STARTED = """\
Getting started:
  tunelab data example zh-sentiment --out demo   # demo data (or: make demo)
  tunelab train --data demo/train.csv  # or your CSV/XLSX/JSONL: columns guessed
  the run lands in runs/run/: model/ with its card, metrics.json, report.html
  python -m webbrowser runs/run/report.html   # open the report in a browser
"""


@app.callback(invoke_without_command=True)
def _getting_started(ctx: typer.Context) -> None:
    """Fine-tune pretrained language models on your own data."""
    if ctx.invoked_subcommand is None:
        typer.echo(GETTING_STARTED)
        typer.echo(ctx.get_help())


def config_help(key: str) -> str:
    """Help of an option that sets a config key: the key's description in tunelab.config."""
    return field_description(key, RunConfig)


def pretrain_help(key: str) -> str:
    """Help of a `tunelab pretrain` option: its config key's description."""
    return field_description(key, PretrainConfig)


# Placeholders in help text for the task names, which only the registry knows.
ALL_TASKS = "<registered tasks>"
DOCTOR_TASKS = "<tasks the doctor checks>"
EXAMPLE_SETS = "<example data sets>"
OVERRIDE = "override a config key: key.path=value (repeatable)"
STRICT = (
    "stop at the first problem (an unreadable image, an empty cell, an unparsable line, a broken "
    "tag sequence) with one line naming its row, instead of leaving it out with a warning "
    "(for train: data.drop_invalid=false)"
)


class _NamesTasks(typer.core.TyperCommand):
    """A command whose help names the registered tasks (or the example data sets): the
    registry is imported when the help is shown, not when the command line is parsed for
    another command."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from tunelab.data.examples import EXAMPLES
        from tunelab.tasks import TASKS, doctor_checks

        names = {
            ALL_TASKS: ", ".join(TASKS),
            DOCTOR_TASKS: " or ".join(doctor_checks()),
            EXAMPLE_SETS: ", ".join(EXAMPLES),
        }
        written = {id(param): param.help for param in self.params}
        for param in self.params:
            for marker, text in names.items():
                if isinstance(param.help, str) and marker in param.help:
                    param.help = param.help.replace(marker, text)
        try:
            super().format_help(ctx, formatter)
        finally:  # the registry may grow later in this process (a test's toy task)
            for param in self.params:
                param.help = written[id(param)]


class _ListByDefault(typer.core.TyperGroup):
    """``tunelab runs [FOLDER]`` lists (the ``list`` command); ``tunelab runs compare A B``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["list", *args]
        return super().parse_args(ctx, args)


runs_app = typer.Typer(
    cls=_ListByDefault,
    help="List the runs in a folder (tunelab runs [FOLDER]) or compare runs (runs compare A B).",
    rich_markup_mode=None,
)
app.add_typer(runs_app, name="runs")


COUNTS = {"predicted_classes"}  # stored as floats beside the scores, read as whole numbers


def _print_scores(title: str, scores: dict[str, Any]) -> None:
    flat = {k: v for k, v in scores.items() if isinstance(v, (int, float)) and k != "examples"}
    shown = "  ".join(
        f"{k}={v:g}" if float(v).is_integer() and (abs(v) > 1 or k in COUNTS) else f"{k}={v:.4f}"
        for k, v in flat.items()
        if not k.startswith(("precision_", "recall_"))
    )
    typer.echo(f"{title}: {shown}")


def _print_verdict(metrics: dict[str, Any]) -> None:
    """The untuned model's test scores (where it could answer before training), the linear
    baseline's validation and test scores and every warning about whether the model learned."""
    before = (metrics.get("before") or {}).get("test")
    if before:
        _print_scores("test before training", before)
    baseline = metrics.get("baseline") or {}
    for split in ("validation", "test"):  # beside the model's lines for the same splits
        if split in baseline:
            _print_scores(f"baseline {split} ({baseline['method']})", baseline[split])
    for warning in metrics.get("warnings") or []:
        typer.echo(f"WARNING: {warning}")


def _flag_overrides(flags: dict[str, Any]) -> list[str]:
    """Command-line flags that were given, as ``key=value`` overrides (values as YAML)."""

    return [
        f"{key}={yaml_value(str(v) if isinstance(v, Path) else v)}"
        for key, v in flags.items()
        if v is not None
    ]


@app.command(cls=_NamesTasks)
def train(
    config: Annotated[Path | None, typer.Argument(help="YAML run config (optional)")] = None,
    task: Annotated[str | None, typer.Option(help=f"{config_help('task')} ({ALL_TASKS})")] = None,
    data: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="<path>",
            help=config_help("data.train") + "; given again, more training files mixed in",
        ),
    ] = None,
    validation: Annotated[Path | None, typer.Option(help=config_help("data.validation"))] = None,
    test: Annotated[Path | None, typer.Option(help=config_help("data.test"))] = None,
    text_column: Annotated[str | None, typer.Option(help=config_help("data.text_column"))] = None,
    text_pair_column: Annotated[
        str | None, typer.Option(help=config_help("data.text_pair_column"))
    ] = None,
    label_column: Annotated[str | None, typer.Option(help=config_help("data.label_column"))] = None,
    label_separator: Annotated[
        str | None, typer.Option(help=config_help("data.label_separator"))
    ] = None,
    tag_column: Annotated[int | None, typer.Option(help=config_help("data.tag_column"))] = None,
    scheme: Annotated[
        str | None, typer.Option(help=config_help("token_classification.scheme"))
    ] = None,
    model: Annotated[str | None, typer.Option(help=config_help("model.name"))] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "--out", help=config_help("output"))
    ] = None,
    peft: Annotated[str | None, typer.Option(help=config_help("peft.method"))] = None,
    encoding: Annotated[str | None, typer.Option(help=config_help("data.encoding"))] = None,
    format: Annotated[str | None, typer.Option(help=config_help("data.format"))] = None,
    sheet: Annotated[str | None, typer.Option(help=config_help("data.sheet"))] = None,
    seed: Annotated[int | None, typer.Option(help=config_help("seed"))] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help=OVERRIDE)
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue from the last checkpoint")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace an existing run in --output")] = False,
    trust_remote_code: Annotated[
        bool, typer.Option(help=config_help("model.trust_remote_code"))
    ] = False,
    allow_pickle: Annotated[bool, typer.Option(help=config_help("model.allow_pickle"))] = False,
    strict: Annotated[bool, typer.Option(help=STRICT)] = False,
) -> None:
    """Fine-tune a model and evaluate it; writes model/, metrics.json, predictions.jsonl."""
    from tunelab import api
    from tunelab.tasks import task_class

    if task is not None:
        task_class(task, "--task")  # before the data is read, naming the option
    raw = read_yaml(config) if config else {}
    flags = {
        "task": task,
        "data.train": data[0] if data else None,
        "data.extra_train": [str(path) for path in data[1:]] if data and len(data) > 1 else None,
        "data.validation": validation,
        "data.test": test,
        "data.text_column": text_column,
        "data.text_pair_column": text_pair_column,
        "data.label_column": label_column,
        "data.label_separator": label_separator,
        "data.tag_column": tag_column,
        "token_classification.scheme": scheme,
        "model.name": model,
        "peft.method": peft,
        "output": output,
        "data.encoding": encoding,
        "data.format": format,
        "data.sheet": sheet,
        "seed": seed,
        "model.trust_remote_code": trust_remote_code or None,
        "model.allow_pickle": allow_pickle or None,
        "data.drop_invalid": False if strict else None,
    }
    overrides = _flag_overrides(flags)
    run_config = build_config(raw, [*overrides, *(set_ or [])])
    command = shlex.join(["tunelab", *sys.argv[1:]])  # for the model card
    with summary_repeats_warnings():  # the summary below prints the end warnings
        result = api.train(run_config, resume=resume, overwrite=overwrite, command=command)
    for split in ("validation", "test"):
        if split in result["metrics"]:
            _print_scores(split, result["metrics"][split])
    _print_verdict(result["metrics"])
    typer.echo(f"model saved to {result['model_dir']}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="model folder or run folder")],
    data: Annotated[
        Path, typer.Option(help="labelled file to score (a folder of split files: its test file)")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "--out", help="folder for metrics.json, predictions.jsonl"),
    ] = None,
    text_column: Annotated[
        str | None, typer.Option(help="text column if not as in training")
    ] = None,
    label_column: Annotated[
        str | None, typer.Option(help="label column if not as in training")
    ] = None,
    encoding: Annotated[str | None, typer.Option(help="file encoding (default: detect)")] = None,
    precision: Annotated[
        str,
        typer.Option(
            help="auto (checked where bf16 is faster on this machine, else fp32; fp32 for up "
            "to 64 rows), checked (bf16 with fp32's labels), fp32 (exact), or bf16"
        ),
    ] = "auto",
) -> None:
    """Score a trained model on a labelled file."""
    from tunelab import api

    result = api.evaluate(model, data, output, text_column, label_column, encoding,
                          precision=precision)  # fmt: skip
    _print_scores(f"{data}", result)
    if output:
        typer.echo(f"metrics written to {output / 'metrics.json'}")


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="model folder or run folder")],
    input: Annotated[
        Path | None,
        typer.Option("--input", "--data", help="file with texts (CSV/JSONL/...)"),
    ] = None,
    text: Annotated[
        list[str] | None, typer.Option(help="a text to label, tag or answer (repeatable)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "--out", help=".jsonl or .csv file; default: stdout")
    ] = None,
    text_column: Annotated[
        str | None, typer.Option(help="text column if not as in training")
    ] = None,
    encoding: Annotated[str | None, typer.Option(help="file encoding (default: detect)")] = None,
    batch_size: Annotated[int, typer.Option(help="texts per batch")] = 64,
    precision: Annotated[
        str,
        typer.Option(
            help="auto (checked where bf16 is faster on this machine, else fp32; fp32 for up "
            "to 64 rows), checked (bf16 with fp32's labels: close calls run again in fp32), "
            "fp32 (exact, as plain transformers), or bf16"
        ),
    ] = "auto",
    image: Annotated[
        list[Path] | None,
        typer.Option(
            help="image-text-to-text: the image the --text questions ask about "
            "(once for all, or once per --text)"
        ),
    ] = None,
) -> None:
    """Predict labels, tags or generated answers for texts or a file, in length-sorted batches."""
    from tunelab import api

    records = api.predict(model, text, input, output, text_column, encoding, batch_size, precision,
                          [str(path) for path in image] if image else None)  # fmt: skip
    if output is None:
        for record in records:
            typer.echo(json.dumps(record, ensure_ascii=False))
    else:
        typer.echo(f"{len(records)} predictions written to {output}")


@app.command("push")
def push_command(
    run: Annotated[
        Path, typer.Argument(help="run folder (the --output of tunelab train) or model")
    ],
    repo: Annotated[
        str, typer.Option(help="Hub repository, NAME or OWNER/NAME (created if missing)")
    ],
    public: Annotated[
        bool, typer.Option(help="create the repository public (default: private)")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="list the files that would be uploaded, with sizes; no network")
    ] = False,
) -> None:
    """Upload a run's model folder, model card included, to the Hugging Face Hub (log in with
    `hf auth login` or set HF_TOKEN)."""
    from tunelab.publish import describe, push

    result = push(run, repo, private=not public, dry_run=dry_run)
    if dry_run:
        typer.echo("\n".join(describe(result["plan"], repo, not public)))
        return
    visibility = "private" if result["private"] else "public"
    typer.echo(f"uploaded {len(result['files'])} files to {result['url']} ({visibility})")


@app.command()
def merge(
    model: Annotated[Path, typer.Argument(help="run folder (or its model/) trained with peft")],
    out: Annotated[
        Path | None,
        typer.Option("--output", "--out", help="merged model folder (default RUN/merged)"),
    ] = None,
) -> None:
    """Fold a LoRA/IA3 adapter into its base model: a folder that loads without PEFT."""
    from tunelab import api

    typer.echo(f"merged model written to {api.merge(model, out)}")


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="run folder (the --output of tunelab train)")],
    explanations: Annotated[
        bool, typer.Option(help="explain the worst errors (loads the model; needs captum)")
    ] = True,
) -> None:
    """Rebuild a run's report.html (config, data, curves, metrics, plots, worst errors)."""
    from tunelab.evaluation.report import build_report

    typer.echo(str(build_report(run, explanations=explanations)))


@app.command()
def serve(
    model: Annotated[Path, typer.Argument(help="model folder or run folder")],
    host: Annotated[str, typer.Option(help="address to bind (loopback unless told)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    backend: Annotated[str, typer.Option(help="torch, or onnx (after tunelab export)")] = "torch",
    api_key: Annotated[
        str | None,
        typer.Option(envvar="TUNELAB_API_KEY", help="key clients must send (or env)"),
    ] = None,
    max_texts: Annotated[int, typer.Option(help="texts (or files) per request (more: 413)")] = 64,
    max_chars: Annotated[int, typer.Option(help="characters per text (more: 413)")] = 10000,
    max_file_mb: Annotated[
        float,
        typer.Option(help="image and audio models: megabytes per uploaded file (more: 413)"),
    ] = 10.0,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads per forward pass (default: all cores)")
    ] = None,
    precision: Annotated[
        str,
        typer.Option(
            help="torch backend: fp32 (exact) or bf16 (faster on CPUs and GPUs with bf16 "
            "units; a close call's label can differ from fp32's)"
        ),
    ] = "fp32",
) -> None:
    """Serve a model over HTTP: POST /predict, GET /health, GET /metadata, docs at /docs;
    sentence encoders also answer OpenAI's POST /v1/embeddings, image and audio models take
    uploads."""
    from tunelab.serving.server import serve as run_server

    if max_file_mb <= 0:
        raise UserError(f"--max-file-mb {max_file_mb} must be above 0")
    run_server(
        model, host=host, port=port, workers=workers, backend=backend, api_key=api_key,
        max_texts=max_texts, max_chars=max_chars, threads=threads,
        max_file_bytes=int(max_file_mb * 2**20), precision=precision,
    )  # fmt: skip


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="model folder or run folder")],
    format: Annotated[str, typer.Option(help="export format: onnx, or gguf (causal)")] = "onnx",
    quantize: Annotated[
        str | None,
        typer.Option(
            help="onnx: int8 also writes a dynamically quantized model; gguf: comma-separated "
            "types among f32, f16, bf16, q8_0, q4_0 (default f16)"
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "--out", help="export folder (default MODEL/onnx, MODEL/gguf)"),
    ] = None,
) -> None:
    """Export a classifier, tagger or sentence encoder to ONNX, or a causal model to GGUF (with
    an Ollama Modelfile), and check it against PyTorch."""
    from tunelab.serving.export import export_onnx

    if format == "gguf":
        from tunelab.serving.gguf_export import export_gguf

        kinds = tuple(t.strip() for t in (quantize or "f16").split(",") if t.strip())
        done = export_gguf(model, output, kinds)
        typer.echo(f"GGUF written to {done['folder']} with an Ollama Modelfile")
        for kind, check in done["types"].items():
            typer.echo(
                f"{kind}: {check['megabytes']} MB, max |logit difference| "
                f"{check['max_abs_logit_diff']:.2e}, greedy answers equal "
                f"{check['greedy_answers_equal']}, tokenizer ids equal "
                f"{check['tokenizer_ids_equal']}"
            )
        return
    if format != "onnx":
        raise UserError(f"--format {format} is not supported; use --format onnx or gguf")
    result = export_onnx(model, output, quantize)
    typer.echo(f"ONNX model written to {result['output']} ({result['samples']['rows']} samples)")
    for variant, parity in result["parity"].items():
        agreement = parity.get("label_agreement")  # regression and embeddings have no labels
        labels = (
            "" if agreement is None else f"labels agree with PyTorch on {agreement:.2%} of rows, "
        )
        # max_abs_logit_diff, or max_abs_embedding_diff for a sentence encoder
        key = next(k for k in parity if k.startswith("max_abs_"))
        compared = key.removeprefix("max_abs_").removesuffix("_diff")
        typer.echo(
            f"{variant}: {labels}max |{compared} difference| {parity[key]:.2e}, "
            f"{result['sizes_mb'][variant]} MB"
        )


@app.command()
def explain(
    model: Annotated[Path, typer.Argument(help="model folder or run folder")],
    text: Annotated[list[str] | None, typer.Option(help="a text to explain (repeatable)")] = None,
    input: Annotated[
        Path | None,
        typer.Option("--input", "--data", help="file with texts (CSV/JSONL/...)"),
    ] = None,
    text_column: Annotated[str, typer.Option(help="text column of --input")] = "text",
    limit: Annotated[int, typer.Option(help="explain the first N texts of --input")] = 20,
    output: Annotated[Path, typer.Option("--output", "--out", help="HTML page to write")] = Path(
        "explanation.html"
    ),
    json_output: Annotated[
        Path | None, typer.Option("--json", help="also write the explanations as JSON")
    ] = None,
    layer: Annotated[int, typer.Option(help="attention layer shown (-1: the last)")] = -1,
    head: Annotated[int | None, typer.Option(help="attention head (default: mean)")] = None,
    steps: Annotated[int, typer.Option(help="integrated-gradients steps")] = 32,
    target: Annotated[
        str | None,
        typer.Option(help="label to explain (default: predicted); taggers: a tag or token index"),
    ] = None,
    encoding: Annotated[str | None, typer.Option(help="file encoding (default: detect)")] = None,
    parts: Annotated[
        int | None,
        typer.Option(help="image models: cells a side (default 8); audio models: segments (16)"),
    ] = None,
) -> None:
    """Token attributions (integrated gradients) and attention maps, as HTML and JSON; for
    image and audio models, occlusion maps of files (--text PATH or --input FOLDER)."""
    from tunelab.explain import explain_loaded, render_page
    from tunelab.explain.explainer import media_frame, texts_from_file, top_tokens
    from tunelab.models.trained import load_trained, trained_task

    if (text is None) == (input is None):
        raise UserError(
            "give either texts (--text) or an input file (--input), not both or neither"
        )
    task = trained_task(model)  # the options are checked before the weights load
    text_options = {
        "--steps": steps != 32,
        "--layer": layer != -1,
        "--head": head is not None,
        "--text-column": text_column != "text",
        "--encoding": encoding is not None,
    }
    if task.explains == "occlusion":
        given = [name for name, changed in text_options.items() if changed]
        if given:
            raise UserError(
                f"{', '.join(given)} apply to text models; this {task.name} model is explained "
                "by occlusion: leave them out (--parts sets how finely)"
            )
        loaded, tokenizer, task, max_length = load_trained(model)
        _explain_files(loaded, tokenizer, task, media_frame(task, text, input, limit), target,
                       parts, output, json_output, f"Explanations: {model}")  # fmt: skip
        return
    if parts is not None:
        raise UserError(
            f"--parts applies to image and audio models; this {task.name} model is explained "
            "token by token: leave it out (--steps sets the integration steps)"
        )
    loaded, tokenizer, task, max_length = load_trained(model)
    texts = list(text) if text else texts_from_file(input, text_column, encoding, limit)
    explanations = explain_loaded(loaded, tokenizer, task, texts, steps, target, layer, head,
                                  max_length)  # fmt: skip
    write_text(output, render_page(explanations, f"Explanations: {model}"))
    if json_output is not None:
        write_json(json_output, explanations)
    for number, item in enumerate(explanations, start=1):
        for part in item.get("targets") or [item]:
            if part.get("attributions") is None:
                continue
            shown = [(t, v) for t, v in top_tokens(item, part["attributions"]) if round(v, 3) > 0]
            tops = ", ".join(f"{t} {v:+.3f}" for t, v in shown)  # +0.000 would say nothing
            where = f" token {part['token_index']} {part['token']}" if "token" in part else ""
            typer.echo(f"text {number}{where} -> {part['target']}: "
                       f"{tops or '(no token raised the score by 0.001 or more)'}")  # fmt: skip
    if not explanations:
        typer.echo("no texts to explain")
    typer.echo(f"explanations written to {output}" + (f" and {json_output}" if json_output else ""))


def _explain_files(
    model: Any, processor: Any, task: Any, frame: Any, target: str | None, parts: int | None,
    output: Path, json_output: Path | None, title: str,
) -> None:  # fmt: skip
    """``tunelab explain`` for an image or audio model: occlusion maps as HTML (and JSON),
    and each file's parts that spoke most for its label."""
    from tunelab.explain.media_html import render_media_page
    from tunelab.explain.occlusion import explain_files, top_parts

    explanations = explain_files(model, processor, task, frame, target, parts)
    write_text(output, render_media_page(explanations, frame[task.text_column].tolist(), title))
    if json_output is not None:
        write_json(json_output, explanations)
    for number, item in enumerate(explanations, start=1):
        tops = ", ".join(f"{where} {value:+.3f}" for where, value in top_parts(item))
        tops = tops or "(hiding no part lowered the probability by 0.001 or more)"
        typer.echo(f"{task.noun} {number} {item['path']} -> {item['target']} "
                   f"(p={item['probability']:.3f}): {tops}")  # fmt: skip
    if not explanations:
        typer.echo(f"no {task.nouns} to explain")
    typer.echo(f"explanations written to {output}" + (f" and {json_output}" if json_output else ""))


@app.command(cls=_NamesTasks)
def doctor(
    data: Annotated[
        list[Path] | None,
        typer.Argument(
            help="data file or folder of images (the training one if several); more training "
            "files after it are checked with it, as tunelab train mixes them",
        ),
    ] = None,
    data_option: Annotated[
        list[Path] | None,
        typer.Option(
            "--data", metavar="PATH", help="the data file, given as tunelab train takes it"
        ),
    ] = None,
    validation: Annotated[Path | None, typer.Option(help="validation file")] = None,
    test: Annotated[Path | None, typer.Option(help="test file")] = None,
    task: Annotated[
        str | None,
        typer.Option(
            help=f"whose checks to run: {DOCTOR_TASKS}; default: read from the data as train "
            "reads it (class folders: images or audio, CoNLL files: tags, other tables: the "
            "task they fit, texts and labels where none does)"
        ),
    ] = None,
    text_column: Annotated[
        str | None, typer.Option(help="text column (default: read from the data, as train does)")
    ] = None,
    label_column: Annotated[
        str | None,
        typer.Option(help="label column (default: read from the data); 'none': unlabelled"),
    ] = None,
    text_pair_column: Annotated[
        str | None,
        typer.Option(help="second text of each row (default: read from the data, as train does)"),
    ] = None,
    label_separator: Annotated[
        str | None,
        typer.Option(help="labels holding several, e.g. '|' (default: read from the data)"),
    ] = None,
    format: Annotated[str, typer.Option(help=config_help("data.format"))] = "auto",
    model: Annotated[
        str | None,
        typer.Option(help="model folder: token lengths, and its probabilities for label errors"),
    ] = None,
    max_length: Annotated[
        int | None, typer.Option(help="report the share truncated at this length")
    ] = None,
    encoding: Annotated[str | None, typer.Option(help="file encoding (default: detect)")] = None,
    report: Annotated[Path, typer.Option(help="where to write the JSON report")] = Path(
        "data_report.json"
    ),
    fix: Annotated[bool, typer.Option(help="write cleaned data to --out")] = False,
    out: Annotated[
        Path | None,
        typer.Option("--output", "--out", help="cleaned data file (.csv/.jsonl/.conll) with --fix"),
    ] = None,
    label_errors: Annotated[bool, typer.Option(help="look for mislabelled rows")] = True,
    drop_label_errors: Annotated[
        bool, typer.Option(help="with --fix, also drop suspected label errors")
    ] = False,
    tag_column: Annotated[int, typer.Option(help=config_help("data.tag_column"))] = -1,
    scheme: Annotated[
        str, typer.Option(help="tag checks: the scheme to check and write (auto: the data's)")
    ] = "auto",
    image_column: Annotated[str, typer.Option(help=config_help("image.column"))] = "image",
    strict: Annotated[bool, typer.Option(help=STRICT)] = False,
) -> None:
    """Find duplicates, conflicts, leakage, imbalance, damaged text and label errors in data;
    for token classification, tag statistics and broken tag sequences (--fix repairs them);
    for images (a class folder or a table of paths), unreadable files, exact and near
    duplicates, leakage, sizes and their outliers, and class balance; for every other task
    (summaries, translations, chats, preference and search pairs, captions, audio), the checks
    tunelab train makes of its data."""
    from tunelab import api

    if fix and out is None:
        raise UserError("--fix needs --out FILE for the cleaned data (e.g. --out clean.csv)")
    from tunelab.tasks import doctor_checks

    checks = doctor_checks()
    files = [*(data or []), *(data_option or [])]
    if not files:
        raise UserError("tunelab doctor needs a data file: tunelab doctor reviews.csv (or --data)")
    data, more = files[0], files[1:]
    given = (text_column, label_column, text_pair_column, label_separator)
    task = task or api.doctor_task(data, validation, test, format, any(given))
    if task not in checks:
        raise UserError(f"the doctor does not know task '{task}'; use {' or '.join(checks)}")
    if more and checks[task] != "task":
        raise UserError(
            f"the doctor checks several training files together for the tasks whose files "
            f"mix (chats, instructions, summaries, pairs); check {task} files one at a time"
        )
    if checks[task] == "task":
        text = api.doctor_as_training(data, validation, test, task, encoding, report, strict,
                                      format, fixed=out if fix else None, more=more)  # fmt: skip
    elif checks[task] == "tags":
        text = api.doctor_tagging(
            data, validation, test, encoding, tag_column, scheme, report, out if fix else None,
            strict,
        )  # fmt: skip
    elif checks[task] == "images":
        if fix:
            raise UserError(
                "--fix is not offered for images; remove or replace the files the report names"
            )
        text = api.doctor_images(data, validation, test, image_column, label_column, report, strict)
    else:
        unlabelled = label_column is not None and label_column.lower() == "none"
        text_column = text_column or api.AUTO
        label_column = None if unlabelled else label_column or api.AUTO
        text = api.doctor(
            data, validation, test, text_column, label_column, model, max_length, encoding,
            report, out if fix else None, label_errors, drop_label_errors, strict,
            text_pair_column, label_separator, format,
        )  # fmt: skip
    typer.echo(text)


@app.command("search")
def search_command(
    config: Annotated[Path, typer.Argument(help="YAML run config to tune")],
    trials: Annotated[
        int | None, typer.Option(help="finished trials to reach, earlier runs included")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--output", "--out", help="search folder (default: the run's output + '-search')"
        ),
    ] = None,
    storage: Annotated[str | None, typer.Option(help=config_help("search.storage"))] = None,
    study_name: Annotated[str | None, typer.Option(help=config_help("search.study_name"))] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help=OVERRIDE)
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="start over instead of resuming")] = False,
) -> None:
    """Search hyperparameters with Optuna (resumable); write the best config for tunelab train."""
    from tunelab.studies.search import search

    flags = {"search.storage": storage, "search.study_name": study_name}
    run_config = load_config(config, [*_flag_overrides(flags), *(set_ or [])])
    folder = out or run_config.output.with_name(run_config.output.name + "-search")
    summary = search(run_config, folder, trials, overwrite)
    default = summary["default_value"]
    typer.echo(
        f"best {summary['metric']}={summary['best_value']:.4f} (trial {summary['best_trial']}"
        + (f"; the config's own values gave {default:.4f}" if default is not None else "")
        + f") with {json.dumps(summary['best_params'])}; trials: {summary['trials']}"
    )
    typer.echo(f"best config written to {summary['best_config']}; run: tunelab train "
               f"{summary['best_config']}")  # fmt: skip


@app.command()
def pretrain(
    config: Annotated[Path | None, typer.Argument(help="YAML pretrain config (optional)")] = None,
    objective: Annotated[str | None, typer.Option(help=pretrain_help("objective"))] = None,
    data: Annotated[
        list[Path] | None, typer.Option(metavar="PATH", help=pretrain_help("data"))
    ] = None,
    from_model: Annotated[
        str | None, typer.Option("--from", help=pretrain_help("from_model"))
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "--out", help=pretrain_help("output"))
    ] = None,
    size: Annotated[str | None, typer.Option(help="tiny, mini or small (from scratch)")] = None,
    layers: Annotated[
        int | None, typer.Option(help=pretrain_help("architecture.layers") + "; from scratch")
    ] = None,
    hidden: Annotated[
        int | None, typer.Option(help=pretrain_help("architecture.hidden") + "; from scratch")
    ] = None,
    heads: Annotated[
        int | None, typer.Option(help=pretrain_help("architecture.heads") + "; from scratch")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help=OVERRIDE)
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue from the last checkpoint")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace an existing model in --output")] = False,
) -> None:
    """Pretrain a language model from scratch, or continue pretraining one on your text."""
    from tunelab.training.pretrain import SIZES, pretrain

    raw = read_yaml(config) if config else {}
    if size is not None and size not in SIZES:
        raise UserError(f"unknown --size '{size}'; choose one of {', '.join(SIZES)}")
    shape = dict(SIZES[size]) if size else {}
    shape.update(
        {k: v for k, v in {"layers": layers, "hidden": hidden, "heads": heads}.items() if v}
    )
    flags: dict[str, Any] = {"objective": objective, "from_model": from_model, "output": output}
    flags.update({f"architecture.{k}": v for k, v in shape.items()})
    if data:
        flags["data"] = [str(p) for p in data]
    overrides = _flag_overrides(flags)
    command = " ".join(["tunelab", *sys.argv[1:]])
    figures = pretrain(raw, [*overrides, *(set_ or [])], resume, overwrite, command)
    perplexity = figures["held_out_perplexity"]
    typer.echo(
        f"{figures['architecture']}: {figures['parameters'] / 1e6:.2f}M parameters, "
        f"{figures['steps']} steps, {figures['tokens_seen']:,} tokens seen, held-out perplexity "
        + (f"{perplexity:.2f}" if perplexity is not None else "n/a")
    )


@app.command()
def curve(
    config: Annotated[Path, typer.Argument(help="YAML run config")],
    sizes: Annotated[
        str, typer.Option(help="training rows per trial, comma-separated, e.g. 100,200,500,1000")
    ],
    seeds: Annotated[int, typer.Option(help="seeds per size below --seeds-below")] = 3,
    seeds_below: Annotated[int, typer.Option(help="sizes from this up train once")] = 1000,
    target: Annotated[
        float | None, typer.Option(help="metric value to estimate the rows needed for")
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="metric to plot (default: the task's main metric)")
    ] = None,
    min_steps: Annotated[
        int, typer.Option(help="optimizer steps per trial at least (epochs are raised)")
    ] = 100,
    out: Annotated[
        Path, typer.Option("--output", "--out", help="folder for trials, curve.json/png/svg")
    ] = Path("runs/curve"),
    set_: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help=OVERRIDE)
    ] = None,
    keep_models: Annotated[bool, typer.Option(help="keep each trial's model/")] = False,
) -> None:
    """How much data do I need: train on growing subsets, fit a power law, plot it."""
    from tunelab.studies.curve import learning_curve, parse_sizes

    if seeds_below < 1:
        raise UserError(f"--seeds-below must be a positive integer, got {seeds_below}")
    summary = learning_curve(
        config, parse_sizes(sizes), out, set_ or [], seeds, seeds_below, min_steps, target,
        metric, keep_models, echo=typer.echo,
    )  # fmt: skip
    for s in summary["sizes"]:
        spread = f" ± {s['std']:.4f} ({len(s['scores'])} seeds)" if len(s["scores"]) > 1 else ""
        typer.echo(f"{s['size']:>8,} rows: {summary['metric']}={s['mean']:.4f}{spread}")
    for warning in summary["warnings"]:
        typer.echo(f"warning: {warning}")
    fit = summary["fit"]
    if fit["kind"] != "none":
        from tunelab.evaluation.plots import fit_label

        typer.echo(fit_label(fit).replace("fit: ", f"fit: {summary['metric']} = "))
    if summary["target"]:
        typer.echo(f"target {summary['metric']} {summary['target']['message']}")
    typer.echo(f"curve written to {out / 'curve.json'}, {out / 'curve.png'}, {out / 'curve.svg'}")


@app.command("recommend", cls=_NamesTasks)
def recommend_command(
    task: Annotated[str, typer.Option(help=f"the task to fine-tune: {ALL_TASKS}")],
    language: Annotated[str, typer.Option(help="zh, en or multi")],
    examples: Annotated[int, typer.Option(help="training examples you have")],
    classes: Annotated[
        int, typer.Option(help="number of classes (for few-shot advice on classification)")
    ] = 2,
    gpu_memory: Annotated[
        str | None,
        typer.Option(help="memory of the GPU you will train on, e.g. 24GB (default: this machine)"),
    ] = None,
    max_length: Annotated[int, typer.Option(help="tokens per example at most")] = 128,
    batch_size: Annotated[int, typer.Option(help="examples per training step")] = 32,
    json_: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Suggest models for a task and language, with memory (full vs LoRA) and time per epoch."""
    from tunelab.tasks import task_class

    memory = parse_memory(gpu_memory, "--gpu-memory") if gpu_memory is not None else None
    here, available = device_memory()
    device = "cuda" if memory is not None else here
    memory = memory if memory is not None else available
    chosen = task_class(task, "--task")()
    options = recommend(chosen, language, examples, classes, memory, max_length, batch_size, device)
    if json_:
        typer.echo(json.dumps(recommendation_json(options), ensure_ascii=False, indent=2))
    else:
        typer.echo(format_options(options, memory, device, here))


@app.command()
def init(
    out: Annotated[
        Path, typer.Option("--output", "--out", help="where to write the config")
    ] = Path("tunelab.yaml"),
) -> None:
    """Write a config file with every key, its default and what it means."""
    from tunelab.tasks import TASKS

    if out.exists():
        raise UserError(f"{out} already exists; choose another --out")
    write_text(out, commented_yaml(RunConfig(), choices={"task": list(TASKS)}) + "\n")
    typer.echo(f"config written to {out}")


@app.command("ui")
def ui_command(
    workspace: Annotated[
        Path, typer.Option(help="folder the workbench reads and writes: uploads/, runs/, ...")
    ] = Path("."),
    host: Annotated[str, typer.Option(help="address to bind (loopback unless told)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 7860,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="TUNELAB_UI_TOKEN",
            help="token every request must carry; generated and printed when --host is not "
            "loopback",
        ),
    ] = None,
    max_upload_mb: Annotated[float, typer.Option(help="megabytes per uploaded file")] = 200.0,
    jobs: Annotated[int, typer.Option(help="training jobs at once; more wait in a queue")] = 1,
) -> None:
    """Open the web workbench: preview and check data, train from a form, watch runs live,
    compare them, try a model; every page shows the command that does the same."""
    from tunelab.ui.app import serve as serve_workbench

    serve_workbench(workspace, host, port, token, max_upload_mb, jobs, echo=typer.echo)


@app.command("models")
def models_command(
    verify: Annotated[
        bool, typer.Option(help="hash the installed packages' weights against the pinned sha256")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """List the models that work offline: the bundled starters and the model packages tunelab
    knows (installed or not, where, verified); any of them goes to --model."""
    from tunelab.models.load import bundled_model_names
    from tunelab.models.packaged import packaged_model_status

    packages = packaged_model_status(verify)
    if json_:
        listing = {"bundled": bundled_model_names(), "packages": packages}
        typer.echo(json.dumps(listing, ensure_ascii=False, indent=2))
        return
    typer.echo("bundled starters (--model NAME): " + (", ".join(bundled_model_names()) or "none"))
    for row in packages:
        languages = "/".join(row["languages"])
        typer.echo(f"{row['name']}  ({row['hub_id']}, {languages}, {row['download_mb']} MB): "
                   f"{row['status']}")  # fmt: skip
        if row["folder"]:
            typer.echo(f"    {row['folder']}")


@app.command("chat")
def chat_command(
    model: Annotated[str, typer.Argument(help="causal model: run folder, starter or HF folder")],
    system: Annotated[str | None, typer.Option(help="system prompt")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="tokens per answer at most")] = 256,
    image: Annotated[
        list[Path] | None,
        typer.Option(
            help="a vision-language model: an image for the first question "
            "(repeatable; /image PATH adds one later)"
        ),
    ] = None,
    tools: Annotated[
        Path | None,
        typer.Option(
            help="a JSON file of function signatures to offer the model; you type each "
            "call's result"
        ),
    ] = None,
) -> None:
    """Chat with a causal model in the terminal (answers stream; an empty line ends); with
    --image, with a vision-language model about images; with --tools, with a model that calls
    functions."""

    chat(model, system, max_new_tokens, images=image, tools=tools)


@runs_app.command("list")
def runs_list(
    folder: Annotated[Path, typer.Argument(help="folder of run folders")] = Path("runs"),
    json_: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """List the runs in a folder, newest first: task, model, data, main metric, time."""

    records = list_runs(folder)
    typer.echo(
        json.dumps(records, ensure_ascii=False, indent=2) if json_ else format_runs(records, folder)
    )


@runs_app.command("compare")
def runs_compare(
    runs: Annotated[list[Path], typer.Argument(help="two or more run folders")],
    json_: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    all_metrics: Annotated[
        bool, typer.Option(help="also per-class and per-type details, confusion counts")
    ] = False,
) -> None:
    """Show the config keys that differ between runs and their metrics side by side."""

    result = compare_runs(runs, all_metrics)
    typer.echo(
        json.dumps(result, ensure_ascii=False, indent=2) if json_ else format_comparison(result)
    )


@data_app.command("example", cls=_NamesTasks)
def data_example(
    name: Annotated[
        str,
        typer.Argument(help=f"one of: {EXAMPLE_SETS}"),
    ],
    out: Annotated[
        Path, typer.Option("--output", "--out", help="folder for train/validation/test files")
    ],
    seed: Annotated[int, typer.Option(help="split seed")] = 42,
) -> None:
    """Write an example data set as train/validation/test files (CSV, CoNLL, JSONL or image
    folders)."""
    from tunelab.data.examples import build_example

    summary = build_example(name, out, seed)
    typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))


@data_app.command("corpus")
def data_corpus(
    out: Annotated[
        Path, typer.Option("--output", "--out", help="folder for zh-starter.txt and corpus.json")
    ],
    seed: Annotated[int, typer.Option(help="seed of the example splits to exclude")] = 42,
) -> None:
    """Write the starter-model pretraining corpus (training splits of the example data only)."""
    from tunelab.data.corpus import build_starter_corpus

    typer.echo(json.dumps(build_starter_corpus(out, seed), ensure_ascii=False, indent=2))


label_app = typer.Typer(
    help="Label texts with active learning: the queue asks what the model is least sure of.",
    rich_markup_mode=None,
)
app.add_typer(label_app, name="label")

_JOURNAL = typer.Option(help="the label journal (JSONL, appended, the source of truth)")


@label_app.command("run")
def label_run(
    data: Annotated[Path, typer.Argument(help="texts to label: CSV/JSONL (a text column) or TXT")],
    labels: Annotated[
        str | None, typer.Option(help="the label set, comma-separated: positive,negative")
    ] = None,
    entities: Annotated[
        str | None, typer.Option(help="label entity spans of these types instead: PER,LOC,ORG")
    ] = None,
    journal: Annotated[Path, _JOURNAL] = Path("labels.journal.jsonl"),
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "--out",
            help="labelled file, rewritten atomically "
            "(default labelled.csv; entities: labelled.jsonl)",
        ),
    ] = None,
    annotator: Annotated[str, typer.Option(help="your name in the journal")] = "me",
    simulate: Annotated[
        bool, typer.Option(help="answer from the data's own --label-column (a benchmark)")
    ] = False,
    label_column: Annotated[str, typer.Option(help="the oracle's column for --simulate")] = "label",
    text_column: Annotated[str | None, typer.Option(help="the text column")] = None,
    budget: Annotated[int, typer.Option(help="stop after this many labels (--simulate)")] = 200,
    strategy: Annotated[str, typer.Option(help="active or random")] = "active",
    retrain_every: Annotated[int, typer.Option(help="labels between model retrains")] = 20,
    clusters: Annotated[int, typer.Option(help="k-means clusters of the cold start")] = 10,
    seed: Annotated[int, typer.Option(help="seed of clustering and random order")] = 0,
    double_rate: Annotated[
        float,
        typer.Option(help="share of texts a second annotator labels too, blind (agreement)"),
    ] = 0.0,
    holdout: Annotated[
        int, typer.Option(help="random texts held out to measure the model (asked 1 in 5)")
    ] = 0,
    target: Annotated[
        float, typer.Option(help="score the learning-curve estimate aims at (--holdout)")
    ] = 0.9,
) -> None:
    """Label texts one at a time (a number or a label; u undo, s skip, q quit); every label
    is in the journal before the next text shows. With --entities: type spans as
    张三=PER 北京=LOC, - for none, or press Enter to accept the model's guess."""
    from tunelab.labelling.session import parse_label_set, run_interactive, run_simulation

    if (labels is None) == (entities is None):
        raise UserError("give --labels positive,negative to label classes, or --entities "
                        "PER,LOC,ORG to label entity spans (one of the two)")  # fmt: skip
    if entities is not None:
        from tunelab.labelling.entities import parse_entity_types

        label_set = parse_entity_types(entities)
    else:
        label_set = parse_label_set(labels or "")
    output = output or Path("labelled.jsonl" if entities else "labelled.csv")
    options: dict[str, Any] = {"strategy": strategy, "retrain_every": retrain_every,
                               "clusters": clusters, "seed": seed, "double_rate": double_rate,
                               "entities": entities is not None, "holdout": holdout}  # fmt: skip
    if simulate:
        summary = run_simulation(data, journal, output, label_set, label_column, budget, typer.echo,
                                 text_column, target, **options)  # fmt: skip
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return

    def ask(suggestion: Any, choices: list[str]) -> str:
        if entities is not None:
            from tunelab.labelling.entities import show_spans

            typer.echo(f"\n[{suggestion.item}] {suggestion.text}\n  ({suggestion.reason})")
            if suggestion.spans is not None:
                typer.echo(f"  model guesses: {show_spans(suggestion.text, suggestion.spans)}")
            menu = "TEXT=TYPE ... (" + ",".join(choices) + "), - none, Enter accepts the guess"
            return str(typer.prompt(f"{menu}  u=undo s=skip q=quit", default="",
                                    show_default=False))  # fmt: skip
        guess = f", model guesses {suggestion.guess}" if suggestion.guess else ""
        typer.echo(f"\n[{suggestion.item}] {suggestion.text}\n  ({suggestion.reason}{guess})")
        menu = "  ".join(f"{n}={name}" for n, name in enumerate(choices, 1))
        return str(typer.prompt(f"{menu}  u=undo s=skip q=quit", default="q"))

    given = run_interactive(data, journal, output, label_set, annotator, ask, typer.echo,
                            text_column, target, **options)  # fmt: skip
    typer.echo(f"{given} labels given; labelled texts in {output}, journal {journal}")


@label_app.command("review")
def label_review(
    data: Annotated[Path, typer.Argument(help="the texts (CSV/JSONL/TXT) the journal labels")],
    labels: Annotated[str | None, typer.Option(help="the label set, comma-separated")] = None,
    entities: Annotated[
        str | None, typer.Option(help="review entity spans of these types instead: PER,LOC")
    ] = None,
    journal: Annotated[Path, _JOURNAL] = Path("labels.journal.jsonl"),
    output: Annotated[
        Path, typer.Option("--output", "--out", help="labelled file, rewritten atomically")
    ] = Path("labelled.csv"),
    reviewer: Annotated[str, typer.Option(help="your name in the journal")] = "reviewer",
    text_column: Annotated[str | None, typer.Option(help="the text column")] = None,
) -> None:
    """Settle the texts annotators labelled differently (a number or a label; s later, q
    quit): the reviewer's label wins and is journalled with role review. With --entities,
    pick the annotator whose spans stand by number, or type the spans (- for none)."""
    from tunelab.labelling.entities import parse_entity_types, show_spans
    from tunelab.labelling.session import parse_label_set, run_review

    if (labels is None) == (entities is None):
        raise UserError("give either --labels (classes) or --entities (entity types)")

    def ask(item: str, text: str, given: dict[str, Any], choices: list[str]) -> str:
        if entities is None:
            said = ", ".join(f"{name}: {label}" for name, label in sorted(given.items()))
            typer.echo(f"\n[{item}] {text}\n  ({said})")
            menu = "  ".join(f"{n}={name}" for n, name in enumerate(choices, 1))
            return str(typer.prompt(f"{menu}  s=later q=quit", default="q"))
        typer.echo(f"\n[{item}] {text}")
        for n, name in enumerate(choices, 1):
            typer.echo(f"  {n}={name}: {show_spans(text, given[name]) or '(none)'}")
        return str(typer.prompt("number, spans (TEXT=TYPE ...), - none  s=later q=quit",
                                default="q"))  # fmt: skip

    label_set = parse_entity_types(entities) if entities else parse_label_set(labels or "")
    decided = run_review(data, journal, output, label_set, reviewer, ask, typer.echo,
                         text_column, entities=entities is not None)  # fmt: skip
    typer.echo(f"{decided} disagreements settled; labelled texts in {output}, journal {journal}")


@label_app.command("backend")
def label_backend(
    journal_dir: Annotated[
        Path, typer.Option(help="folder of the journals, one per Label Studio project")
    ] = Path("label-studio"),
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (Label Studio's examples use 9090)")] = 9090,
    retrain_every: Annotated[int, typer.Option(help="new labels between retrains")] = 5,
    auth: Annotated[
        str | None, typer.Option(help="user:password that Label Studio must send (Basic)")
    ] = None,
) -> None:
    """Serve tunelab's suggestions to Label Studio (its ML backend protocol): predictions for
    tasks, learning from every annotation."""
    from tunelab.labelling.studio_backend import serve_backend

    serve_backend(journal_dir, host, port, retrain_every, auth, typer.echo)


@label_app.command("export")
def label_export(
    data: Annotated[Path, typer.Argument(help="the texts (CSV/JSONL/TXT) the journal labels")],
    output: Annotated[Path, typer.Option("--output", "--out", help="file to write")],
    journal: Annotated[Path, _JOURNAL] = Path("labels.journal.jsonl"),
    format_: Annotated[
        str, typer.Option("--format", help="label-studio (JSON tasks) or doccano (JSONL)")
    ] = "label-studio",
) -> None:
    """Export the labels as Label Studio tasks or doccano JSONL."""
    from tunelab.labelling.session import export_labels

    count = export_labels(data, journal, output, format_)
    typer.echo(f"wrote {count} {'tasks' if format_ == 'label-studio' else 'rows'} to {output}")


@label_app.command("import")
def label_import(
    source: Annotated[Path, typer.Argument(help="a Label Studio JSON or doccano JSONL export")],
    labels: Annotated[str, typer.Option(help="the label set, comma-separated")],
    journal: Annotated[Path, _JOURNAL] = Path("labels.journal.jsonl"),
    format_: Annotated[
        str, typer.Option("--format", help="auto (.jsonl: doccano), label-studio or doccano")
    ] = "auto",
) -> None:
    """Add the labels of a Label Studio or doccano export to the journal."""
    from tunelab.labelling.session import import_labels, parse_label_set

    count = import_labels(source, journal, parse_label_set(labels), format_)
    typer.echo(f"added {count} labels from {source} to {journal}")


@label_app.command("agreement")
def label_agreement(journal: Annotated[Path, _JOURNAL] = Path("labels.journal.jsonl")) -> None:
    """Cohen's kappa between each pair of annotators on double-labelled texts, Fleiss' kappa
    over all of them, and the disagreements."""
    from tunelab.labelling.session import journal_agreement

    typer.echo(json.dumps(journal_agreement(journal), ensure_ascii=False, indent=2))


def main() -> None:
    """Entry point: user mistakes print one line and exit with code 2."""
    # At exit (an exit handler: the others still run), freeze every object: the
    # interpreter's last garbage collection walks all that torch and transformers created
    # (~1.2 s after a MiniLM run) and skips frozen ones. Registered, not called here: a
    # caller that goes on (a test) keeps its collector. Before that, collections are rare
    # until the model is loaded, which then freezes what is alive (tunelab.collector).
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    collector.collect_rarely()
    watched_process_defaults()
    try:
        app()
    except UserError as exc:
        typer.echo(one_line(exc), err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except RunInterrupted as exc:
        typer.echo(one_line(exc), err=True)
        sys.exit(130)
    except Exception as exc:  # a bug, not a user mistake: short message, full trace on request
        if os.environ.get("TUNELAB_TRACEBACK"):
            raise
        typer.echo(one_line(exc), err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
