"""``report.html``: one self-contained page (inline SVG plots, no scripts, no network) that
shows what a run folder holds — config, data doctor, training curves, metrics, per-task
plots and the worst errors, with explanations of a few of them.

Built from the run folder alone, so ``tunelab report RUN`` can rebuild it at any time.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tunelab.errors import UserError
from tunelab.evaluation.plots import curves_figure
from tunelab.evaluation.report_page import (
    STYLE,
    Html,
    Plots,
    TaskReport,
    check_run_folder,
    esc,
    note,
    read_json,
    read_jsonl,
    section,
    table,
    warning,
)
from tunelab.outputs import write_text
from tunelab.runs import main_metric

# eval_* entries of the Trainer's log that are timings, not scores
_NOT_SCORES = ("runtime", "samples_per_second", "steps_per_second", "loss")
# metric curves drawn when the history has them, in this order (at most four)
_CURVE_PREFERENCE = (
    "f1_macro",
    "f1",
    "accuracy",
    "subset_accuracy",
    "word_f1",
    "precision",
    "recall",
    "pearson",
    "spearman",
    "mse",
)
EXPLAINED_ERRORS = 3
# integrated gradients cost grows with length (a tagger's paragraph took minutes on a CPU),
# and a long text's attributions are unreadable: explain the worst errors up to this length
EXPLAINED_MAX_CHARS = 160


@dataclass
class RunFolder:
    """What a run folder holds; optional files are None when absent."""

    path: Path
    config_text: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    data_report: dict[str, Any] | None
    history: list[dict[str, Any]] | None
    predictions: list[dict[str, Any]] | None
    model_meta: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return str(self.model_meta.get("task") or self.config.get("task") or "")

    def scores(self) -> tuple[str, dict[str, Any]]:
        """The split the per-task sections describe (test, else validation) and its metrics."""
        for split in ("test", "validation"):
            if isinstance(self.metrics.get(split), dict):
                return split, self.metrics[split]
        return "", {}


def read_run(run_dir: Path) -> RunFolder:
    """Read a finished run folder.

    Raises:
        UserError: if the folder is missing, lacks config.yaml or metrics.json, or holds a
            file that cannot be read.
    """
    check_run_folder(run_dir)
    config_text = (run_dir / "config.yaml").read_text(encoding="utf-8")
    try:
        config = yaml.safe_load(config_text) or {}
    except yaml.YAMLError as error:
        raise UserError(f"{run_dir / 'config.yaml'} is not valid YAML: {error}") from None
    model_config = read_json(run_dir / "model" / "config.json") or {}
    return RunFolder(
        path=run_dir,
        config_text=config_text,
        config=config if isinstance(config, dict) else {},
        metrics=read_json(run_dir / "metrics.json") or {},
        data_report=read_json(run_dir / "data_report.json"),
        history=read_json(run_dir / "history.json"),
        predictions=read_jsonl(run_dir / "predictions.jsonl"),
        model_meta=model_config.get("tunelab") or {},
    )


def _task_sections(task: str) -> Callable[[RunFolder, Plots], TaskReport] | None:
    """The task's own report sections (``Task.report_sections``); None for an unknown task."""
    from tunelab.tasks import TASKS  # imports scikit-learn and scipy

    return TASKS[task].report_sections if task in TASKS else None


def build_report(
    run_dir: Path | str, explanations: bool = True, loaded: tuple[Any, ...] | None = None
) -> Path:
    """Write ``run_dir/report.html`` (atomically) from the files of the run folder.

    Args:
        run_dir: a finished run folder (config.yaml and metrics.json at least).
        explanations: load the model and explain a few of the worst errors (classification
            and token classification; needs ``tunelab.explain`` and Captum).
        loaded: the run's model as :func:`tunelab.api.load_trained` returns it, when the
            caller holds it already (training does): no second copy is loaded.

    Returns:
        The path of the report.

    Raises:
        UserError: if the folder is not a finished run or one of its files is unreadable.
    """
    run = read_run(Path(run_dir))
    plots = Plots()
    builder = _task_sections(run.task)
    task = (
        builder(run, plots)
        if builder
        else TaskReport([note(f"tunelab has no report sections for the task {run.task!r}.")])
    )
    parts = [
        _header(run),
        section("config", "Configuration", [_config(run)]),
        section("data", "Data", _data(run)),
        section("training", "Training", _curves(run, plots)),
        section("metrics", "Metrics", _metrics(run)),
        *task.parts,
    ]
    if task.explainable:
        parts.append(
            section(
                "explanations",
                "Explanations of the worst errors",
                _explanations(run, task, explanations, loaded),
            )
        )
    title = f"tunelab report: {run.path.name}"
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="plots" content="{plots.count}">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body>\n</html>\n"
    )
    target = run.path / "report.html"
    write_text(target, page)
    return target


def _header(run: RunFolder) -> str:
    model = (run.config.get("model") or {}).get("name", "")
    split, scores = run.scores()
    headline = [f"task {run.task}", f"model {model}"]
    key = main_metric(run.task, run.model_meta, scores)  # the metric `tunelab runs` ranks by
    if isinstance(scores.get(key), (int, float)):
        headline.append(f"{split} {key} {scores[key]:.4g}")
        baseline = ((run.metrics.get("baseline") or {}).get(split) or {}).get(key)
        if isinstance(baseline, (int, float)):
            headline.append(f"baseline {baseline:.4g}")
        before = ((run.metrics.get("before") or {}).get(split) or {}).get(key)
        if isinstance(before, (int, float)):
            headline.append(f"before fine-tuning {before:.4g}")
    seconds = (run.metrics.get("train") or {}).get("seconds")
    if isinstance(seconds, (int, float)):
        headline.append(f"trained in {seconds / 60:.1f} min")
    links = " ".join(
        f'<a href="#{a}">{t}</a>'
        for a, t in (
            ("config", "Configuration"),
            ("data", "Data"),
            ("training", "Training"),
            ("metrics", "Metrics"),
        )
    )
    warnings = "".join(f"\n{warning(w)}" for w in run.metrics.get("warnings") or [])
    return (
        f"<h1>{esc('tunelab report: ' + run.path.name)}</h1>\n"
        f'<p class="summary">{esc(" · ".join(headline))}</p>{warnings}\n<nav>{links}</nav>'
    )


def _config(run: RunFolder) -> str:
    return (
        "<details><summary>The resolved config (config.yaml: every default written out; "
        "repeat the run with <code>tunelab train config.yaml</code>)</summary>"
        f"<pre>{esc(run.config_text)}</pre></details>"
    )


def _data(run: RunFolder) -> list[str]:
    report = run.data_report
    if not report:
        return [note("No data_report.json in the run folder: nothing to say about the data.")]
    parts: list[str] = []
    lines: list[str] = []
    doctor = report.get("doctor")
    if isinstance(doctor, dict):
        from tunelab.tasks import TASKS

        try:  # each task summarises its own doctor report, as tunelab train prints it
            lines = TASKS[run.task]().doctor_lines(doctor) if run.task in TASKS else []
        except (KeyError, TypeError, AttributeError):
            lines = []
    if lines:
        items = "".join(f"<li>{esc(line.removeprefix('data doctor: '))}</li>" for line in lines)
        parts.append(f"<p>The data doctor found:</p><ul>{items}</ul>")
    before, after = report.get("rows_before") or {}, report.get("rows_after") or {}
    if before or after:
        rows = [[s, before.get(s, ""), after.get(s, "")] for s in dict.fromkeys([*before, *after])]
        parts.append(table(["split", "rows read", "rows after cleaning"], rows))
    tokens = report.get("tokens") or {}
    if tokens.get("max_length"):
        median = (
            f"median training text {esc(tokens['p50'])} tokens"
            if tokens.get("p50") is not None
            else "the median training text is longer than the model takes"
        )
        parts.append(
            f"<p>Token limit {esc(tokens['max_length'])}; {median}; "
            f"{100 * (tokens.get('truncated_share') or 0):.1f}% "
            "of training texts are longer than the limit.</p>"
        )
    choice = report.get("model_choice") or {}
    if choice.get("name"):
        parts.append(f"<p>Model chosen automatically: {esc(choice['name'])}, because "
                     f"{esc(choice.get('reason', ''))}.</p>")  # fmt: skip
    rate = report.get("learning_rate") or {}
    if rate.get("value"):
        parts.append(f"<p>Learning rate chosen automatically: {esc(rate['value'])} "
                     f"({esc(rate.get('reason', ''))}).</p>")  # fmt: skip
    loss = report.get("loss") or {}
    if loss.get("class_weights"):
        what = loss.get("weighted_loss", "class-weighted cross-entropy")
        parts.append(f"<p>Loss: {esc(what)}, weights {esc(loss['class_weights'])}.</p>")
    full = json.dumps(report, ensure_ascii=False, indent=1, default=str)
    parts.append(f"<details><summary>data_report.json</summary><pre>{esc(full)}</pre></details>")
    return parts


def _curves(run: RunFolder, plots: Plots) -> list[str]:
    history = [e for e in run.history or [] if isinstance(e, dict) and "step" in e]
    if not history:
        return [
            note(
                "No training history (history.json): few-shot runs, and runs made before "
                "tunelab kept the Trainer's log, have none."
            )
        ]
    parts = []
    losses = {
        "training loss": [(e["step"], e["loss"]) for e in history if _finite(e.get("loss"))],
        "validation loss": [
            (e["step"], e["eval_loss"]) for e in history if _finite(e.get("eval_loss"))
        ],
    }
    series = {name: tuple(zip(*points, strict=True)) for name, points in losses.items() if points}
    if series:
        figure = curves_figure(series, "step", "loss", "Loss during training")
        parts.append(
            plots.figure(
                "loss-curve",
                figure,
                "Training loss at each logging step and validation loss at each evaluation.",
            )
        )
    evaluations = [e for e in history if any(k.startswith("eval_") for k in e)]
    found = {k.removeprefix("eval_") for e in evaluations for k in e if k.startswith("eval_")}
    names = [n for n in _CURVE_PREFERENCE if n in found and not n.endswith(_NOT_SCORES)][:4]
    if names:
        metric_series = {}
        for name in names:
            points = [
                (e["step"], e[f"eval_{name}"])
                for e in evaluations
                if _finite(e.get(f"eval_{name}"))
            ]
            if points:
                metric_series[name] = tuple(zip(*points, strict=True))
        figure = curves_figure(metric_series, "step", "validation score", "Validation metrics")
        parts.append(
            plots.figure(
                "metric-curve", figure, "Validation metrics at each evaluation during training."
            )
        )
    elif not series:
        parts.append(note("history.json holds no losses or evaluations to plot."))
    return parts


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _metrics(run: RunFolder) -> list[str]:
    splits = [s for s in ("validation", "test") if isinstance(run.metrics.get(s), dict)]
    parts: list[str] = []
    if splits:
        keys = list(
            dict.fromkeys(
                k
                for s in splits
                for k, v in run.metrics[s].items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)
            )
        )
        rows = [[k, *(run.metrics[s].get(k, "") for s in splits)] for k in keys]
        parts.append(table(["metric", *splits], rows))
    else:
        parts.append(note("metrics.json holds no validation or test scores (no held-out split)."))
    train = run.metrics.get("train") or {}
    flat = [[k, v] for k, v in train.items() if isinstance(v, (int, float, str))]
    speed = train.get("throughput") or {}
    if speed.get("mfu") is not None:
        flat += [
            ["tokens per second", f"{speed['tokens_per_second']:,.0f}"],
            ["FLOPs per token", f"{speed['flops_per_token'] / 1e9:.3f} G"],
            ["model FLOPs utilisation", f"{100 * speed['mfu']:.1f}% of {speed['peak_source']} "
                                        f"({speed['peak_flops'] / 1e12:.2f} TFLOP/s)"],
        ]  # fmt: skip
    if flat:
        parts.append("<h3>Training</h3>" + table(["", "value"], flat))
    if "test" not in run.metrics:
        parts.append(
            note("No test split: the per-task sections below describe the validation split.")
        )
    return parts


def _explanations(
    run: RunFolder, task_report: TaskReport, enabled: bool, loaded: tuple[Any, ...] | None
) -> list[str]:
    if not enabled:
        return [note("Explanations were not requested for this report.")]
    if task_report.explained_files:
        return _file_explanations(run, task_report, loaded)
    limit = EXPLAINED_MAX_CHARS
    texts = [t for t in task_report.worst_texts if len(t) <= limit][:EXPLAINED_ERRORS]
    if not task_report.worst_texts:
        return [note("No errors to explain.")]
    if not texts:
        return [
            note(
                f"Every error is in a text over {limit} characters; explain one with "
                "tunelab explain."
            )
        ]
    from tunelab.explain import explain_loaded, render_fragment
    from tunelab.models.trained import load_trained

    try:
        model, tokenizer, task, max_length = loaded or load_trained(run.path / "model")
    except (UserError, OSError, ValueError) as error:  # absent, partial or foreign weights
        return [note(f"No explanations: the model in {run.path / 'model'} did not load: {error}")]
    try:
        explained = explain_loaded(model, tokenizer, task, texts, steps=32, max_length=max_length)
    except UserError as error:  # e.g. a sentence-pair model, or Captum not installed
        return [note(f"No explanations: {error}")]
    intro = (
        f"<p>Token attributions (integrated gradients) of the {len(texts)} worst errors above "
        f"among texts of at most {limit} characters{task_report.explained_rule}, for what the "
        "model predicted "
        "(<code>tunelab explain</code> explains any other text).</p>"
    )
    return [Html(intro), Html(render_fragment(explained))]


def _file_explanations(
    run: RunFolder, task_report: TaskReport, loaded: tuple[Any, ...] | None
) -> list[str]:
    """Occlusion maps of the worst errors of an image or audio classifier whose files are
    still on disk."""
    paths = task_report.worst_texts[:EXPLAINED_ERRORS]
    if not paths:
        return [note("No errors to explain (or their files are no longer on disk).")]
    from tunelab.explain.explainer import media_frame
    from tunelab.explain.media_html import render_media_fragment
    from tunelab.explain.occlusion import explain_files
    from tunelab.models.trained import load_trained

    try:
        model, processor, task, _ = loaded or load_trained(run.path / "model")
    except (UserError, OSError, ValueError) as error:  # absent, partial or foreign weights
        return [note(f"No explanations: the model in {run.path / 'model'} did not load: {error}")]
    task = copy.copy(task)  # naming the rows by path sets its column; training's task stays
    try:
        explained = explain_files(model, processor, task, media_frame(task, paths))
    except UserError as error:  # a file that became unreadable
        return [note(f"No explanations: {error}")]
    what = "cells of each image painted over" if task.input_kind == "image" else (
        "stretches of each clip silenced")  # fmt: skip
    intro = (
        f"<p>Occlusion maps of the {len(paths)} worst errors above, for what the model "
        f"predicted: {what} in turn (<code>tunelab explain</code> explains any other file).</p>"
    )
    return [Html(intro), Html(render_media_fragment(explained, paths))]
