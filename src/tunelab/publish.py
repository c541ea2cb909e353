"""``tunelab push``: upload a run's model folder, its model card included, to the Hugging Face
Hub with ``huggingface_hub`` (a private repository unless told otherwise).

Everything that can be checked without a network is checked first, and ``--dry-run`` stops
there: the folder, its files and sizes, the card. An unreachable or refusing Hub is one
sentence, never a retry loop or a traceback.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab.errors import UserError
from tunelab.evaluation.model_card import CARD, build_model_card
from tunelab.models.load import hub_reachable

_LOADED_FROM = re.compile(r'(pipeline\("[\w-]+", model=|SentenceTransformer\()"[^"\n]*"')
_PREDICT = re.compile(r"tunelab predict \S+ ")
_REPO = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")


@dataclass
class UploadPlan:
    """What a push sends: the model folder, its files (path in the repository, bytes) and the
    model card's text as uploaded (the usage examples name the repository)."""

    folder: Path
    files: list[tuple[str, int]]
    card: str
    card_written: bool  # False: the folder had no card; one is made from the run for the upload


def model_folder(path: Path) -> tuple[Path, Path | None]:
    """The model folder to upload and the run folder around it (None for a bare model folder).

    Raises:
        UserError: if neither ``path`` nor ``path/model`` is a Hugging Face model folder.
    """
    if (path / "model" / "config.json").is_file():
        return path / "model", path
    if (path / "config.json").is_file():
        run = path.parent if (path.parent / "metrics.json").is_file() else None
        return path, run
    raise UserError(
        f"{path} is neither a run folder nor a model folder (no model/config.json or "
        "config.json); give the --output of a finished tunelab train"
    )


def upload_plan(path: Path | str, repo: str) -> UploadPlan:
    """Check the folder and list what a push of it to ``repo`` would upload; no network.

    Raises:
        UserError: for a bad repository name, or a folder that is no model (or has no card and
            no finished run to write one from).
    """
    if not _REPO.match(repo):
        raise UserError(
            f"'{repo}' is not a Hugging Face repository name; use NAME or OWNER/NAME (letters, "
            "digits, '-', '_', '.')"
        )
    folder, run = model_folder(Path(path))
    files = sorted(
        (p.relative_to(folder).as_posix(), p.stat().st_size)
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    card_file = folder / CARD
    if card_file.is_file():
        card, written = card_file.read_text(encoding="utf-8"), True
    elif run is not None:  # a run from before cards were written
        card, written = build_model_card(run), False
    else:
        raise UserError(f"{folder} has no {CARD} model card and is not inside a run folder")
    card = card_for_hub(card, repo)
    files = [(name, size) for name, size in files if name != CARD]
    files.insert(0, (CARD, len(card.encode("utf-8"))))
    return UploadPlan(folder, files, card, written)


def card_for_hub(card: str, repo: str) -> str:
    """The card with its usage examples naming the repository instead of the folder on the
    machine that trained it."""
    card = _LOADED_FROM.sub(lambda m: f'{m.group(1)}"{repo}"', card)
    return _PREDICT.sub(f'tunelab predict "$(hf download {repo})" ', card)


def size_text(size: float) -> str:
    """Bytes as people read them: 812 B, 4.2 kB, 15.0 MB."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def describe(plan: UploadPlan, repo: str, private: bool) -> list[str]:
    """The lines ``--dry-run`` prints: where to, then each file with its size."""
    total = sum(size for _, size in plan.files)
    lines = [
        f"would upload {plan.folder} to the Hugging Face Hub as {repo} "
        f"({'private' if private else 'public'}): {len(plan.files)} files, {size_text(total)}"
    ]
    width = max(len(name) for name, _ in plan.files)
    for name, size in plan.files:
        note = ""
        if name == CARD:
            note = "  (model card)" if plan.card_written else "  (model card, made from the run)"
        lines.append(f"  {name:<{width}}  {size_text(size):>9}{note}")
    return lines


def _hub_error(exc: Exception, repo: str) -> UserError:
    """One sentence for whatever the Hub or the network answered."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    name = type(exc).__name__
    if status in (401, 403) or "Token" in name:
        return UserError(
            f"the Hugging Face Hub refused to create or write {repo} ({status or name}); log in "
            "with `hf auth login` or set HF_TOKEN to a token with write access"
        )
    return UserError(
        f"pushing to the Hugging Face Hub as {repo} failed ({name}: "
        f"{' '.join(str(exc).split())[:120]}); check the network and the repository name"
    )


def push(
    path: Path | str, repo: str, private: bool = True, dry_run: bool = False
) -> dict[str, Any]:
    """Upload a run's model folder (card included) to the Hub repository ``repo``, creating it
    (private by default) when it does not exist.

    Returns:
        ``{"repo", "url", "private", "files": [[name, bytes], ...], "uploaded": bool}``.

    Raises:
        UserError: for a bad folder or name, offline mode, an unreachable Hub, or a refusal.
    """
    plan = upload_plan(path, repo)
    result: dict[str, Any] = {
        "repo": repo, "private": private, "files": plan.files, "uploaded": False,
        "url": None, "plan": plan,
    }  # fmt: skip
    if dry_run:
        return result
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise UserError(
            "HF_HUB_OFFLINE is set, so nothing can be pushed; unset it, or use --dry-run to see "
            "what would be uploaded"
        )
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if not hub_reachable():
        raise UserError(
            f"the Hugging Face Hub ({endpoint}) cannot be reached from here (offline or "
            "blocked); push from a machine with access, or use --dry-run to see what would "
            "be uploaded"
        )
    from huggingface_hub import CommitOperationAdd, HfApi

    operations = [CommitOperationAdd(CARD, plan.card.encode("utf-8"))] + [
        CommitOperationAdd(name, str(plan.folder / name)) for name, _ in plan.files if name != CARD
    ]
    api = HfApi()
    try:
        url = api.create_repo(repo, private=private, exist_ok=True)
        api.create_commit(repo, operations, commit_message="Upload a model trained with tunelab")
    except Exception as exc:  # httpx, huggingface_hub and auth errors alike: one sentence
        raise _hub_error(exc, repo) from None
    result.update(uploaded=True, url=str(url))
    return result
