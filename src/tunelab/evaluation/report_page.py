"""The pieces of a report page: escaped tables, notes, sections and numbered inline plots.

Every piece of user text passes through :func:`html.escape` here; a cell or body that is
already markup is wrapped in :class:`Html` to say so.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.errors import UserError
from tunelab.evaluation.plots import svg_markup

# config.yaml and metrics.json are written last by a run; without them it did not finish
REQUIRED_FILES = ("config.yaml", "metrics.json")


@dataclass
class TaskReport:
    """A task's sections, and the texts of its worst errors (worst first) to explain."""

    parts: list[str]
    worst_texts: list[str] = field(default_factory=list)
    explainable: bool = False
    explained_rule: str = ""  # which of the worst texts the task offers for explanation
    explained_files: bool = False  # worst_texts are image or audio paths (occlusion maps)


class Html(str):
    """Text that is already HTML markup (never escaped again)."""


def esc(value: Any) -> Html:
    """``value`` as escaped HTML text (markup passes through unchanged)."""
    return value if isinstance(value, Html) else Html(html.escape(str(value)))


def number(value: Any) -> str:
    """A metric for a table: 4 significant decimals for floats, thousands for integers."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def table(header: Sequence[Any], rows: Sequence[Sequence[Any]], cls: str = "") -> Html:
    """An HTML table; numbers are formatted and right-aligned, text is escaped."""

    def cell(tag: str, value: Any) -> str:
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        text = number(value) if numeric else esc(value)
        return f'<{tag} class="num">{text}</{tag}>' if numeric else f"<{tag}>{text}</{tag}>"

    head = "".join(cell("th", h) for h in header)
    body = "".join("<tr>" + "".join(cell("td", v) for v in row) + "</tr>\n" for row in rows)
    attribute = f' class="{esc(cls)}"' if cls else ""
    return Html(
        f"<table{attribute}><thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>"
    )


def note(text: str) -> Html:
    """A short remark in place of something the run folder lacks."""
    return Html(f'<p class="note">{esc(text)}</p>')


def warning(text: str) -> Html:
    """A finding the reader must not miss: a model that learned nothing or trails its baseline."""
    return Html(f'<p class="warning">{esc(text)}</p>')


def section(anchor: str, title: str, parts: Sequence[str]) -> Html:
    """An ``<h2>`` section; ``parts`` are markup."""
    body = "\n".join(parts)
    return Html(f'<section id="{esc(anchor)}">\n<h2>{esc(title)}</h2>\n{body}\n</section>')


def shorten(text: str, limit: int = 400) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Plots:
    """Numbers the plots of one page and wraps each in a ``<figure data-plot=...>``."""

    def __init__(self) -> None:
        self.count = 0

    def figure(self, name: str, figure: Any, caption: str) -> Html:
        """The figure as inline SVG in a captioned ``<figure>`` tagged with its plot name."""

        self.count += 1
        svg = svg_markup(figure, f"p{self.count}")
        return Html(
            f'<figure class="plot" data-plot="{esc(name)}">{svg}'
            f"<figcaption>{esc(caption)}</figcaption></figure>"
        )


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when the file is absent.

    Raises:
        UserError: if the file exists but is not valid JSON.
    """
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UserError(
            f"{path} is not valid JSON ({error.msg}, line {error.lineno}); rerun the training "
            "or restore the file"
        ) from None


def read_jsonl(path: Path) -> list[dict[str, Any]] | None:
    """The records of a JSON-lines file, or None when the file is absent.

    Raises:
        UserError: naming the line that is not valid JSON.
    """
    if not path.is_file():
        return None
    records = []
    with path.open(encoding="utf-8") as lines:
        for number_, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise UserError(
                    f"{path} line {number_} is not valid JSON ({error.msg}); rerun the training "
                    "or restore the file"
                ) from None
    return records


def check_run_folder(run_dir: Path) -> None:
    """Fail unless ``run_dir`` holds a finished run.

    Raises:
        UserError: naming the folder and the files it lacks.
    """
    if not run_dir.is_dir():
        raise UserError(
            f"run folder {run_dir} does not exist; give the --output of a tunelab train"
        )
    missing = [name for name in REQUIRED_FILES if not (run_dir / name).is_file()]
    if missing:
        raise UserError(
            f"run folder {run_dir} has no {' or '.join(missing)}: the run did not finish; "
            "finish it with tunelab train --resume, or give a finished run's folder"
        )


STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", "WenQuanYi Micro Hei",
       sans-serif; color: #1d2430; max-width: 1150px; margin: 0 auto; padding: 1em 1.5em 3em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #d5dbe3;
  padding-bottom: 0.2em; margin-top: 1.8em; } h3 { margin-bottom: 0.3em; }
.summary { color: #4a5566; margin-top: 0; }
nav a { margin-right: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 13px; }
th, td { border: 1px solid #d5dbe3; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f1f4f8; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.texts td { max-width: 520px; overflow-wrap: anywhere; }
figure.plot { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figure.plot svg { max-width: 100%; height: auto; }
figcaption { font-size: 12px; color: #4a5566; max-width: 560px; }
.warning { color: #7a1f1f; background: #fbeaea; border-left: 4px solid #c0392b;
           padding: 6px 10px; font-weight: 600; }
.note { color: #6b5a1e; background: #fbf6e3; border-left: 3px solid #e2c35b; padding: 4px 8px; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; font-size: 12px; max-height: 520px; }
details summary { cursor: pointer; color: #1f5fa8; }
mark { padding: 0 1px; border-radius: 2px; background: #ffe08a; }
mark.right { background: #bfe3c0; } mark.wrong { background: #f6b8b0; }
.legend-item { margin-right: 1em; }
"""
