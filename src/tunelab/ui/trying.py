"""What the Try page does with a finished run: predictions with probabilities, token
attributions, a chat with a causal model, and batch predictions of a file.

Each is the CLI's own function (:func:`tunelab.api.predict`, :func:`tunelab.explain.explain`,
:func:`tunelab.chat.reply`) and comes with the command that does the same.
"""

from __future__ import annotations

import json
import shlex
import threading
from pathlib import Path
from typing import Any

from tunelab.errors import UserError
from tunelab.ui.workspace import PREDICTIONS, Workspace

MAX_TEXTS = 64
MAX_CHARACTERS = 10_000
_chat_lock = threading.Lock()
_chat_model: dict[str, Any] = {}  # the last chat model: (folder, mtime) -> model, tokenizer, stop


def _command(*parts: str) -> str:
    return " ".join(shlex.quote(p) for p in parts)


def run_folder(ws: Workspace, run: str) -> Path:
    """The run folder ``run`` (relative to the workspace) if it holds a trained model.

    Raises:
        UserError: outside the workspace, or no ``model/`` in it yet.
    """
    folder = ws.path(run, "run")
    if not (folder / "model" / "config.json").is_file():
        raise UserError(
            f"run '{run}' has no trained model (model/config.json) yet; choose a finished run"
        )
    return folder


def model_facts(ws: Workspace, run: str) -> dict[str, Any]:
    """What the page may offer for a run's model: its task, labels, explanations, chat."""
    from tunelab.tasks import TASKS

    config = json.loads((run_folder(ws, run) / "model" / "config.json").read_text("utf-8"))
    meta = config.get("tunelab") or {}
    task = TASKS[meta["task"]]() if meta.get("task") in TASKS else None
    causal = any(a.endswith("ForCausalLM") for a in config.get("architectures") or [])
    names = config.get("id2label") or {}
    return {
        "run": run,
        "task": meta.get("task"),
        "labels": [names[k] for k in sorted(names, key=int)],
        "explains": bool(task and task.explains and not meta.get("text_pair_column")),
        # what a line of the page's box names: a text, or an image or audio file in the
        # workspace
        "inputs": task.input_kind if task else "text",
        "chat": causal,
        "pairs": bool(meta.get("text_pair_column")),
    }


def _texts(texts: list[str]) -> list[str]:
    texts = [t for t in (str(t).strip() for t in texts) if t]
    if not texts:
        raise UserError("give at least one text, one per line")
    if len(texts) > MAX_TEXTS:
        raise UserError(f"{len(texts)} texts at once is more than {MAX_TEXTS}; predict a file "
                        "instead (Batch)")  # fmt: skip
    long = next((i for i, t in enumerate(texts, 1) if len(t) > MAX_CHARACTERS), None)
    if long:
        raise UserError(f"text {long} is longer than {MAX_CHARACTERS} characters; shorten it")
    return texts


def _inputs(ws: Workspace, run: str, texts: list[str]) -> tuple[Path, list[str], list[str]]:
    """The run folder, what the model reads and what the command line names: typed texts as
    they are, or, for an image or audio model, workspace files (never a path outside it)."""
    folder, texts = run_folder(ws, run), _texts(texts)
    if model_facts(ws, run)["inputs"] == "text":
        return folder, texts, texts
    paths = [str(ws.path(t, f"file {i} ({t})")) for i, t in enumerate(texts, 1)]
    return folder, paths, texts


def predict_texts(ws: Workspace, run: str, texts: list[str]) -> dict[str, Any]:
    """Predictions for typed texts (or files of the workspace, for an image or audio model),
    as ``tunelab predict RUN --text ...`` gives them."""
    from tunelab import api

    folder, inputs, named = _inputs(ws, run, texts)
    records = api.predict(folder, texts=inputs)
    command = _command("tunelab", "predict", run, *[p for t in named for p in ("--text", t)])
    return {"records": records, "command": command}


def explain_texts(ws: Workspace, run: str, texts: list[str], steps: int = 32) -> dict[str, Any]:
    """Token attributions and attention (occlusion maps of an image or audio model's files),
    as ``tunelab explain RUN --text ...`` gives them, with their HTML fragment."""
    from tunelab.explain import explain, render_fragment
    from tunelab.explain.media_html import render_media_fragment

    folder, inputs, named = _inputs(ws, run, texts)
    explanations = explain(folder, inputs, steps)
    reads_files = bool(explanations) and "kind" in explanations[0]  # occlusion records
    html = (render_media_fragment(explanations, inputs) if reads_files
            else render_fragment(explanations))  # fmt: skip
    command = _command("tunelab", "explain", run, *[p for t in named for p in ("--text", t)])
    return {"explanations": explanations, "command": command, "html": html}


def chat_answer(
    ws: Workspace, run: str, messages: list[dict[str, str]], max_new_tokens: int = 128
) -> dict[str, Any]:
    """A causal model's answer to a conversation (``tunelab chat RUN`` in the terminal)."""
    from tunelab.chat import load_chat_model, reply

    folder = run_folder(ws, run)
    if not messages or messages[-1].get("role") != "user" or not messages[-1].get("content"):
        raise UserError("the conversation must end with a message of yours; type one")
    weights = folder / "model" / "config.json"
    key = f"{folder}:{weights.stat().st_mtime}"
    with _chat_lock:  # one model in memory, one answer at a time
        if key not in _chat_model:
            _chat_model.clear()
            _chat_model[key] = load_chat_model(folder)
        model, tokenizer, stop = _chat_model[key]
        turns = [{"role": m["role"], "content": str(m["content"])} for m in messages]
        answer = reply(model, tokenizer, stop, turns, max_new_tokens)
    return {"answer": answer, "command": _command("tunelab", "chat", run)}


def predict_file(
    ws: Workspace, run: str, path: str, text_column: str | None = None
) -> dict[str, Any]:
    """Batch predictions of a data file into ``predictions/`` (CSV), as ``tunelab predict RUN
    --input FILE --output ...`` writes them."""
    from tunelab import api

    folder, file = run_folder(ws, run), ws.path(path, "input")
    out = ws.root / PREDICTIONS / f"{Path(run).name}-{file.name.split('.')[0]}.csv"
    records = api.predict(folder, input=file, output=out, text_column=text_column or None)
    command = ["tunelab", "predict", run, "--input", path, "--output", ws.relative(out)]
    if text_column:
        command += ["--text-column", text_column]
    return {"rows": len(records), "output": ws.relative(out), "head": records[:10],
            "command": _command(*command)}  # fmt: skip
