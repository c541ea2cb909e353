"""Find the runs in a folder and compare them: the config keys that differ, metrics side by side.

A run folder is what ``tunelab train --output`` writes: ``config.yaml`` (the resolved config,
written when training starts and again at the end) and ``metrics.json`` (written when the run
finishes). A folder with the config but no metrics is a run that crashed or is still running.
"""

from __future__ import annotations

import functools
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tunelab.errors import UserError
from tunelab.evaluation.metric_direction import greater_is_better

RUN_HINT = "a run folder holds config.yaml and metrics.json (the --output of tunelab train)"
# Folders of a run that never hold another run; skipped to keep the search quick.
_RUN_PARTS = {"model", "checkpoints", "tensorboard", "merged", "__pycache__"}
_SUMMARY_SECTIONS = ("validation", "test", "train")


def list_runs(folder: Path) -> list[dict[str, Any]]:
    """The runs in ``folder`` (itself, its sub-folders and theirs), newest first.

    Args:
        folder: a folder of run folders, e.g. ``runs``.

    Returns:
        One dict per run: ``name`` (path relative to ``folder``), ``path``, ``status``
        (``finished`` or ``incomplete``), ``task``, ``model``, ``data`` (the training file),
        ``metric`` and ``value`` (the task's main metric), ``split`` it was measured on
        (test if the run has one, else validation), ``finished`` (ISO time metrics.json was
        written) and ``seconds`` of training.

    Raises:
        UserError: if ``folder`` does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(
            f"folder {folder} does not exist; give the folder that holds your run folders "
            "(where tunelab train --output put them)"
        )
    records = [_summary_of(path, folder) for path in _run_folders(folder, depth=2)]
    records = sorted((r for r in records if r is not None), key=lambda r: r["_time"], reverse=True)
    for record in records:
        del record["_time"]
    return records


def compare_runs(paths: list[Path], all_metrics: bool = False) -> dict[str, Any]:
    """The config keys that differ between runs, and their metrics side by side.

    Args:
        paths: two or more run folders.
        all_metrics: also the per-class/per-type details, confusion counts and calibration;
            by default only the summary scores of validation, test and training.

    Returns:
        ``{"runs": [names], "paths": [...], "config": {dotted key: [value per run]},
        "metrics": {dotted key: [value per run]}, "best": {dotted key: [indices of the best
        runs]}}``; a run without the key has ``None``.

    Raises:
        UserError: if a path is not a run folder, or fewer than two runs are given.
    """
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise UserError(
            f"runs compare needs at least two run folders, got {len(paths)}; "
            "e.g. tunelab runs compare runs/a runs/b"
        )
    seen: set[Path] = set()
    for path in paths:
        if not (path / "config.yaml").is_file():
            raise UserError(f"{path} is not a run folder: {RUN_HINT}")
        if path.resolve() in seen:
            raise UserError(f"run folder {path} is given twice; name each run once")
        seen.add(path.resolve())
    configs = [flatten(_read_config(p)) for p in paths]
    for config in configs:
        config.pop("output", None)  # always differs: it is the run folder itself
    metrics = [_metric_rows(_read_metrics(p) or {}, all_metrics) for p in paths]
    names = [p.name for p in paths]
    if len(set(names)) < len(names):  # same folder names under different parents
        names = [str(p) for p in paths]
    differing = {
        key: values
        for key, values in _side_by_side(configs).items()
        if any(v != values[0] for v in values)
    }
    side_metrics = _side_by_side(metrics)
    best = {key: found for key, values in side_metrics.items() if (found := _best(key, values))}
    return {
        "runs": names,
        "paths": [str(p) for p in paths],
        "config": differing,
        "metrics": side_metrics,
        "best": best,
    }


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def main_metric(task: str, metadata: dict[str, Any], scores: dict[str, Any]) -> str:
    """The metric a run is ranked by: the task's own main metric (see ``tasks/*.py``).

    ``metadata`` is what the saved model records (``problem_type``, ``scheme``). Generation
    tasks pick checkpoints by loss, but a run is judged by its outputs: chrF when outputs
    were generated and scored (any language, summaries and translations alike), else the loss.
    """
    from tunelab.tasks import TASKS

    metric = TASKS[task].main_metric_of(metadata) if task in TASKS else "loss"
    return "chrf" if metric == "loss" and "chrf" in scores else metric


# -- formatting ---------------------------------------------------------------------------


def format_runs(records: list[dict[str, Any]], folder: Path) -> str:
    """An aligned table of ``list_runs`` records."""
    if not records:
        return f"no runs in {folder} ({RUN_HINT})"
    header = ["run", "task", "model", "data", "metric", "value", "baseline", "train s",
              "finished"]  # fmt: skip
    rows = []
    for r in records:
        metric = f"{r['split']} {r['metric']}" if r["metric"] else r["status"]
        # "!" marks a run whose end warned that it learned nothing or trails its baseline
        value = _number(r["value"]) + (" !" if r.get("warnings") else "")
        rows.append([
            r["name"], r["task"] or "-", _short(r["model"]), _short(r["data"]), metric,
            value, _number(r.get("baseline")), _number(r["seconds"], seconds=True),
            r["finished"][:16].replace("T", " ") if r["finished"] else "-",
        ])  # fmt: skip
    table = _table(header, rows, right={5, 6, 7})
    if any(r.get("warnings") for r in records):
        table += '\n! the run warned (metrics.json "warnings"): see its report headline'
    return table


def format_comparison(result: dict[str, Any]) -> str:
    """The ``differing config`` and ``metrics`` tables of a ``compare_runs`` result."""
    header = ["", *result["runs"]]
    right = set(range(1, len(header)))
    config_rows = [[k, *(_value(v) for v in vs)] for k, vs in result["config"].items()]
    parts = ["differing config"]
    parts.append(_table(header, config_rows, right) if config_rows else "  (none: same config)")
    metric_rows = []
    for key, values in result["metrics"].items():
        best = set(result["best"].get(key, []))
        cells = [_number(v) + (" *" if i in best else "  ") for i, v in enumerate(values)]
        metric_rows.append([key, *cells])
    parts += ["", "metrics (* best)"]
    parts.append(_table(header, metric_rows, right) if metric_rows else "  (no metrics yet)")
    return "\n".join(parts)


# -- reading runs -------------------------------------------------------------------------


def _run_folders(folder: Path, depth: int) -> list[Path]:
    if (folder / "config.yaml").is_file():
        return [folder]
    if depth == 0:
        return []
    found = []
    for child in sorted(folder.iterdir()):
        # hidden names are atomic writes in progress (.model.xyz) or leftovers (.model.old)
        if child.is_dir() and not child.name.startswith(".") and child.name not in _RUN_PARTS:
            found += _run_folders(child, depth - 1)
    return found


def _summary_of(path: Path, root: Path) -> dict[str, Any] | None:
    """A run's summary, read again only when one of its files changed: a long-lived process
    (the workbench lists the runs at every visit of its Runs page) parses each config once."""
    stamps = []
    for name in ("config.yaml", "metrics.json", "model/config.json"):
        try:
            stamps.append((path / name).stat().st_mtime_ns)
        except OSError:
            stamps.append(0)
    summary = _cached_summary(path, root, tuple(stamps))
    return dict(summary) if summary is not None else None


@functools.lru_cache(maxsize=4096)
def _cached_summary(path: Path, root: Path, stamps: tuple[int, ...]) -> dict[str, Any] | None:
    return _summary(path, root)


def _summary(path: Path, root: Path) -> dict[str, Any] | None:
    try:
        config = _read_config(path)
    except UserError:
        return None  # a stray config.yaml of something else: not a run
    if "task" not in config:
        return None
    metrics = _read_metrics(path)
    name = path.name if path == root else str(path.relative_to(root))
    record: dict[str, Any] = {
        "name": name,
        "path": str(path),
        "status": "finished" if metrics is not None else "incomplete",
        "task": config.get("task"),
        "model": (config.get("model") or {}).get("name"),
        "data": (config.get("data") or {}).get("train"),
        "metric": None,
        "value": None,
        "split": None,
        "finished": None,
        "seconds": None,
        "baseline": None,
        "warnings": 0,
    }
    if metrics is None:
        record["_time"] = (path / "config.yaml").stat().st_mtime
        return record
    split = "test" if isinstance(metrics.get("test"), dict) else "validation"
    scores = metrics.get(split) or {}
    chosen = (config.get("training") or {}).get("metric_for_best_model")
    metric = chosen if chosen in scores else main_metric(record["task"], _metadata(path), scores)
    mtime = (path / "metrics.json").stat().st_mtime
    baseline = (metrics.get("baseline") or {}).get(split) or {}
    record.update({
        "metric": metric,
        "value": scores.get(metric),
        "baseline": baseline.get(metric),
        "warnings": len(metrics.get("warnings") or []),
        "split": split,
        "finished": datetime.fromtimestamp(mtime).astimezone().isoformat(timespec="seconds"),
        "seconds": (metrics.get("train") or {}).get("seconds"),
        "_time": mtime,
    })  # fmt: skip
    return record


# libyaml's safe loader where PyYAML was built with it: the same values, parsed about ten times
# faster (a listing of 200 runs took 4.7 s with the pure-Python one, nearly all of it parsing)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.load((path / "config.yaml").read_text(encoding="utf-8"), _SAFE_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError) as exc:
        raise UserError(
            f"{path / 'config.yaml'} cannot be read ({type(exc).__name__}); it should be the "
            "config tunelab train wrote"
        ) from None
    if not isinstance(loaded, dict):
        raise UserError(f"{path / 'config.yaml'} holds no mapping of config keys; {RUN_HINT}")
    return loaded


def _read_metrics(path: Path) -> dict[str, Any] | None:
    file = path / "metrics.json"
    if not file.is_file():
        return None
    try:
        loaded = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{file} cannot be read ({type(exc).__name__}); rerun the run") from None
    return loaded if isinstance(loaded, dict) else None


def _metadata(path: Path) -> dict[str, Any]:
    """What the saved model records of its task (problem type, tag scheme), if it is there."""
    try:
        return json.loads((path / "model" / "config.json").read_text()).get("tunelab") or {}
    except (OSError, ValueError, AttributeError):
        return {}


def _metric_rows(metrics: dict[str, Any], all_metrics: bool) -> dict[str, Any]:
    if all_metrics:
        return {k: v for k, v in flatten(metrics).items() if not isinstance(v, (list, dict))}
    rows = {}
    for section in _SUMMARY_SECTIONS:
        for key, value in (metrics.get(section) or {}).items():
            if not isinstance(value, (list, dict)):
                rows[f"{section}.{key}"] = value
    return rows


def _side_by_side(per_run: list[dict[str, Any]]) -> dict[str, list[Any]]:
    keys: list[str] = []
    for flat in per_run:
        keys += [k for k in flat if k not in keys]
    return {key: [flat.get(key) for flat in per_run] for key in keys}


def _best(key: str, values: list[Any]) -> list[int]:
    """Indices of the best values of a ranked metric; none when all are equal."""
    greater = greater_is_better(key)
    if greater is None:  # neither a score nor a cost: not ranked
        return []
    sign = 1.0 if greater else -1.0
    numbers = {
        i: sign * float(v)
        for i, v in enumerate(values)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }
    if len(numbers) < 2 or len(set(numbers.values())) == 1:
        return []
    top = max(numbers.values())
    return [i for i, v in numbers.items() if v == top]


def _number(value: Any, seconds: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or seconds or abs(value) >= 1000:
        return f"{value:,.0f}" if seconds or isinstance(value, float) else f"{value:,}"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.4g}"
    return f"{value:.2f}" if abs(value) >= 10 else f"{value:.4f}"


def _value(value: Any) -> str:
    """A config value as YAML writes it (3e-05, true, [a, b]); '-' for null or absent."""
    if value is None:
        return "-"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, bool):
        return str(value).lower()
    return _short(str(value))


def _short(value: Any, width: int = 40) -> str:
    """Long paths keep their end, where the distinguishing names are."""
    if value is None:
        return "-"
    text = str(value)
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            str(cell).rjust(w) if i in right else str(cell).ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
