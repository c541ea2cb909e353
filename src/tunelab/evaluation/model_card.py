"""``model/README.md``: the Hugging Face model card of a fine-tuned run.

What the Trainer's ``create_model_card`` writes (base model, pipeline tag, metrics in
model-index form, hyperparameters), with what tunelab knows besides: the language and the
licence of the base where its card states one, the training data as the doctor saw it (and
which columns were guessed), the linear baseline on the same rows, the run's own warnings,
intended use and limitations, and the command that made it. Built from the run folder alone
(like report.html), so a card can be rebuilt for any finished run. The pretrained starters'
card is :mod:`tunelab.training.model_card`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tunelab.data.language import detect_language
from tunelab.errors import UserError
from tunelab.evaluation.report import RunFolder, read_run
from tunelab.models.load import resolve_model_source
from tunelab.models.packaged import PACKAGED_MODELS, PREFIX
from tunelab.outputs import write_text
from tunelab.runs import main_metric

CARD = "README.md"
# the pipeline a model of each auto class serves (the Hub's pipeline_tag)
PIPELINE_TAGS = {
    "AutoModelForSequenceClassification": "text-classification",
    "AutoModelForTokenClassification": "token-classification",
    "AutoModelForSeq2SeqLM": "text2text-generation",
    "AutoModelForCausalLM": "text-generation",
    "AutoModelForImageClassification": "image-classification",
}
EMBEDDING_TAG = "sentence-similarity"  # tasks whose model embeds (Task.embeds)
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(\n|\Z)", re.S)


def front_matter(text: str) -> dict[str, Any]:
    """The YAML metadata block at the top of a model card ({} when it has none)."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def base_model_facts(name: str | None) -> dict[str, Any]:
    """``hub_id`` (when the base is a Hub model), ``license`` and ``language`` of the base
    model, from its own card on this machine (folder, bundled starter, model package or the
    Hugging Face cache); nothing is fetched."""
    if not name or name.startswith("scratch-"):
        return {}
    hub_id = None
    packaged = name.removeprefix(PREFIX)
    for entry in PACKAGED_MODELS:
        if packaged in (entry.distribution, entry.package, entry.hub_id):
            hub_id = entry.hub_id
    card: Path | None = None
    try:
        source = resolve_model_source(name)
    except UserError:
        source = name
    if Path(source).is_dir():
        card = Path(source) / CARD
    elif source.count("/") == 1:  # a hub id: its card, if the cache holds one
        hub_id = source
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source, CARD)
        card = Path(cached) if isinstance(cached, str) else None
    meta = front_matter(card.read_text(encoding="utf-8")) if card and card.is_file() else {}
    facts = {"hub_id": hub_id, "license": meta.get("license"), "language": meta.get("language")}
    return {key: value for key, value in facts.items() if value}


def _flat(scores: Any) -> dict[str, float]:
    """The numeric scores of one split (the counts of examples are no metric)."""
    if not isinstance(scores, dict):
        return {}
    return {
        key: float(value)
        for key, value in scores.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "examples"
    }


def card_metrics(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{split: {metric: value}}`` of the validation and test scores in metrics.json, as the
    card's model-index lists them."""
    return {split: _flat(metrics.get(split)) for split in ("validation", "test")
            if _flat(metrics.get(split))}  # fmt: skip


def _task_facts(task_name: str) -> tuple[str | None, str]:
    """The Hub pipeline tag and library of a task's model."""
    from tunelab.tasks import TASKS  # imports the task modules

    if task_name not in TASKS:
        return None, "transformers"
    task = TASKS[task_name]()
    if task.embeds:
        return EMBEDDING_TAG, "sentence-transformers"
    return PIPELINE_TAGS.get(task.auto_model_class().__name__), "transformers"


def _language(run: RunFolder) -> str | None:
    choice = (run.data_report or {}).get("model_choice") or {}
    language = choice.get("language")
    if not language and run.predictions:
        texts = [str(r.get("text", "")) for r in run.predictions[:2000]]
        language = detect_language(texts)
    return language if language in ("zh", "en") else None


def _front(run: RunFolder, tag: str | None, library: str, base: dict[str, Any]) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    data_file = Path(str(run.config.get("data", {}).get("train") or "data")).name
    results = [
        EvalResult(
            task_type=tag or run.task,
            task_name=run.task,
            dataset_type=data_file,
            dataset_name=data_file,
            dataset_split=split,
            metric_type=key,
            metric_value=value,
            metric_name=f"{split} {key}",
        )
        for split, scores in card_metrics(run.metrics).items()
        for key, value in scores.items()
    ]
    language = _language(run)
    data = ModelCardData(
        model_name=run.path.resolve().name,
        base_model=base.get("hub_id"),
        pipeline_tag=tag,
        library_name=library,
        language=language or base.get("language"),
        license=base.get("license"),
        tags=["tunelab", run.task],
        metrics=sorted({key for scores in card_metrics(run.metrics).values() for key in scores}),
        eval_results=results or None,
    )
    return data.to_yaml()


def _results(run: RunFolder, key: str) -> list[str]:
    scores = card_metrics(run.metrics)
    baseline = run.metrics.get("baseline") or {}
    splits = list(scores)
    header = ["metric", *splits, *(f"baseline {s}" for s in splits if _flat(baseline.get(s)))]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    names = [key] + [k for k in dict.fromkeys(k for s in scores.values() for k in s) if k != key]
    for name in names:
        row = [f"**{name}**" if name == key else name]
        row += [_number(scores[s].get(name)) for s in splits]
        row += [_number(_flat(baseline.get(s)).get(name)) for s in splits if _flat(baseline.get(s))]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}" if float(value).is_integer() and abs(value) > 1 else f"{value:.4f}"


def _data_section(run: RunFolder) -> list[str]:
    from tunelab.tasks import TASKS

    report = run.data_report or {}
    data = run.config.get("data") or {}
    files = ", ".join(f"{split} `{data[split]}`" for split in ("train", "validation", "test")
                      if data.get(split))  # fmt: skip
    lines = [f"- Files: {files or 'not recorded'}" + (
        f" (sheet {data['sheet']})" if data.get("sheet") is not None else "")]  # fmt: skip
    before, after = report.get("rows_before") or {}, report.get("rows_after") or {}
    if after:
        counted = ", ".join(f"{split} {rows}" for split, rows in after.items())
        split = report.get("split") or {}
        made = (
            f" ({', '.join(split['generated'])} split from train, seed {split.get('seed')})"
            if split.get("generated")
            else ""
        )
        read = ", ".join(f"{split} {rows}" for split, rows in before.items())
        lines.append(f"- Rows read: {read}; after cleaning and splitting: "
                     f"{counted}{made}")  # fmt: skip
    for item in (report.get("guessed") or {}).get("keys", []):
        role = item["key"].rsplit(".", 1)[-1].replace("_", " ")
        lines.append(f"- {role.capitalize()} `{item['value']}` was guessed from the data "
                     f"({item['evidence']}; `{item['flag']}` sets it)")  # fmt: skip
    doctor = report.get("doctor")
    if doctor and run.task in TASKS:
        lines += [f"- {line.removeprefix('data doctor: ')}" for line in
                  TASKS[run.task]().doctor_lines(doctor)]  # fmt: skip
        balance = ((doctor.get("splits") or {}).get("train") or {}).get("class_balance") or {}
        if balance.get("counts"):
            counts = ", ".join(f"{k} {v}" for k, v in balance["counts"].items())
            lines.append(f"- Classes in the training file: {counts}")
    return lines


def _baseline_section(run: RunFolder, key: str) -> list[str]:
    baseline = run.metrics.get("baseline") or {}
    split = "test" if "test" in baseline else "validation"
    ours = _flat(run.metrics.get(split)).get(key)
    theirs = _flat(baseline.get(split)).get(key)
    if theirs is None or ours is None:
        return ["No classical baseline is fit for this task."]
    verdict = "beats" if ours > theirs else "does not beat"
    return [
        f"{baseline.get('method', 'A linear model')}, fit on the same training rows in "
        f"{baseline.get('seconds', 0)} s and scored on the same {split} rows: {key} "
        f"{_number(theirs)}. This model ({_number(ours)}) {verdict} it."
    ]


def _usage(tag: str | None, library: str, model_path: str) -> list[str]:
    if library == "sentence-transformers":
        code = ["from sentence_transformers import SentenceTransformer", "",
                f'model = SentenceTransformer("{model_path}")',
                'vectors = model.encode(["a sentence to embed"])']  # fmt: skip
    elif tag:
        code = ["from transformers import pipeline", "",
                f'pipe = pipeline("{tag}", model="{model_path}")']  # fmt: skip
    else:
        return []
    return ["```python", *code, "```", "", "or with tunelab:", "", "```bash",
            f'tunelab predict {model_path} --text "..."', "```"]  # fmt: skip


def _limitations(run: RunFolder, language: str | None) -> list[str]:
    rows = (run.data_report or {}).get("rows_after") or {}
    test_rows = rows.get("test") or rows.get("validation")
    tokens = ((run.data_report or {}).get("tokens") or {}).get("max_length")
    lines = [
        f"- Trained on {rows.get('train', 'an unrecorded number of')} examples from the files "
        "above; it has not been evaluated on any other data, and it repeats whatever biases "
        "and mistakes their labels carry.",
    ]
    if test_rows:
        noise = max(0.02, 1 / test_rows**0.5)
        lines.append(f"- The held-out scores come from {test_rows} rows: differences below "
                     f"about {noise:.2f} are within sampling noise.")  # fmt: skip
    if tokens:
        lines.append(f"- Inputs longer than {tokens} tokens are cut to that length.")
    if language:
        lines.append(f"- Trained on {'Chinese' if language == 'zh' else 'English'} text.")
    lines += [f"- Warning from the run: {w}" for w in run.metrics.get("warnings") or []]
    return lines


def build_model_card(run_dir: Path | str, command: str | None = None) -> str:
    """The model card of a finished run, from its folder alone.

    Args:
        run_dir: the run folder (``config.yaml``, ``metrics.json``, ``model/``).
        command: the command line that trained it, when known.

    Raises:
        UserError: if the folder is not a finished run.
    """
    run = read_run(Path(run_dir))
    tag, library = _task_facts(run.task)
    model_name = (run.config.get("model") or {}).get("name")
    base = base_model_facts(model_name)
    scores = card_metrics(run.metrics)
    key = main_metric(run.task, run.model_meta, next(iter(scores.values()), {}))
    training = run.config.get("training") or {}
    name = run.path.resolve().name
    model_path = str(Path(run_dir) / "model")
    base_text = f"`{model_name}`" if model_name else "an unrecorded model"
    licence = base.get("license") or "not stated in the base model's card"
    peft = (run.config.get("peft") or {}).get("method", "none")
    train = run.metrics.get("train") or {}
    hyper = [
        ("base model", base_text), ("base model licence", licence),
        ("method", "full fine-tuning" if peft == "none" else peft),
        ("learning rate", training.get("learning_rate")), ("epochs", training.get("epochs")),
        ("batch size", training.get("batch_size")),
        ("max length", run.model_meta.get("max_length")),
        ("precision", train.get("precision")), ("optimizer steps", train.get("steps")),
        ("training time", f"{train['seconds']:.0f} s" if "seconds" in train else None),
        ("seed", run.config.get("seed")),
    ]  # fmt: skip
    language = _language(run)
    data_file = Path(str((run.config.get("data") or {}).get("train") or "data")).name
    lines = [
        "---", _front(run, tag, library, base).strip(), "---", "",
        f"# {name}", "",
        f"A {run.task} model fine-tuned by tunelab from {base_text} on `{data_file}`.", "",
        "## Results", "", *_results(run, key), "",
        "## Training data", "", *_data_section(run), "",
        "## Baseline", "", *_baseline_section(run, key), "",
        "## Intended use and limitations", "",
        f"Intended for {run.task.replace('-', ' ')} of inputs like those it was trained on "
        "(see Training data); check it on your own held-out data before relying on it.", "",
        *_limitations(run, language), "",
        "## How to use", "", *_usage(tag, library, model_path), "",
        "## Training procedure", "", "| setting | value |", "|---|---|",
        *(f"| {k} | {v} |" for k, v in hyper if v is not None), "",
        "## Reproduce", "", "```bash", command or f"tunelab train {run.path / 'config.yaml'}",
        "```", "",
        "`tunelab.yaml` in this folder is the fully resolved configuration of the run "
        "(`tunelab train tunelab.yaml` repeats it, with the data files at the paths it names).",
        "",
    ]  # fmt: skip
    return "\n".join(lines)


def write_model_card(run_dir: Path | str, command: str | None = None) -> Path:
    """Write ``model/README.md`` of a finished run (atomically) and return its path."""
    path = Path(run_dir) / "model" / CARD
    write_text(path, build_model_card(run_dir, command))
    return path
