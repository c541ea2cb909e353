"""Find and load models and tokenizers: local folders, the hub cache, or the hub.

No network is assumed: a name that is neither a folder nor cached and cannot be fetched
gets one clear sentence instead of a traceback or a hang.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tunelab.errors import UserError
from tunelab.models.gguf_source import converted_folder, gguf_file
from tunelab.models.packaged import packaged_model_folder

# Bundled starter models live in <repo>/models; they resolve by bare name from anywhere.
BUNDLED_MODELS_DIR = Path(__file__).resolve().parents[3] / "models"


def bundled_model_names() -> list[str]:
    """Names of the starter models shipped in the repository's ``models/`` folder."""
    if not BUNDLED_MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in BUNDLED_MODELS_DIR.iterdir() if (p / "config.json").is_file())


def resolve_model_source(name: str) -> str:
    """Turn a model name into what ``from_pretrained`` should get.

    A folder path wins (a GGUF file, or a folder holding one, becomes a converted safetensors
    folder: :mod:`tunelab.models.gguf_source`); then a bundled starter model name; then a
    model package (``pkg:NAME``, or the hub id of a known packaged model when its package is
    installed: :mod:`tunelab.models.packaged`); otherwise the name is taken as a hub id.

    Raises:
        UserError: if the name looks like a path but no such folder exists.
    """
    path = Path(name).expanduser()
    gguf = gguf_file(path)
    if gguf is not None:
        return str(converted_folder(gguf))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(
                f"model folder {path} has no config.json; give a Hugging Face model folder "
                "(e.g. the model/ folder of a tunelab run)"
            )
        return str(path)
    if (BUNDLED_MODELS_DIR / name / "config.json").is_file():
        return str(BUNDLED_MODELS_DIR / name)
    packaged = packaged_model_folder(name)
    if packaged is not None:
        return str(packaged)
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_like_path or path.exists():
        raise UserError(f"model folder {name} does not exist; check the path")
    return name


def _unreachable(name: str) -> UserError:
    local = bundled_model_names()
    hint = f"one of the bundled models ({', '.join(local)}), " if local else ""
    return UserError(
        f"model '{name}' is not a local folder and could not be loaded from the Hugging Face Hub "
        f"(unreachable, offline or no such model); pass {hint}a local model folder, or "
        "'scratch-bert' for a small model trained from scratch"
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub (or ``HF_ENDPOINT``) accepts a connection right now.

    Without network the hub client retries for most of a minute before it gives up; one
    socket connect answers in milliseconds.
    """
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}:
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname or "", port), timeout=timeout).close()
    except OSError:
        return False
    return True


def from_pretrained(loader: Any, name: str, allow_pickle: bool = False, **kwargs: Any) -> Any:
    """Call ``loader.from_pretrained(resolved name)``, turning load failures into UserError.

    A hub id is looked up in the local cache first, and only then, if the hub answers, online.
    Model weights come from safetensors only unless ``allow_pickle`` (a pickle file can run
    code as it loads). ``kwargs`` pass through (``revision``, ``trust_remote_code``, ...).
    """
    source = resolve_model_source(name)
    is_model = hasattr(loader, "from_config") or hasattr(loader, "_from_config")  # not a tokenizer
    if is_model and not allow_pickle:
        kwargs["use_safetensors"] = True
        _refuse_pickle_only(source)
    if not Path(source).is_dir():
        try:
            return loader.from_pretrained(source, local_files_only=True, **kwargs)
        except OSError:
            if not hub_reachable():
                raise _unreachable(name) from None
    try:
        return loader.from_pretrained(source, **kwargs)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise UserError(
                f"model '{name}' ships its own code, which tunelab does not run by default; "
                "if you trust it, pass --trust-remote-code (model.trust_remote_code=true)"
            ) from None
        raise
    except OSError as exc:
        if Path(source).is_dir():
            raise UserError(
                f"model folder {source} could not be loaded: {exc}".split("\n")[0]
            ) from None
        raise _unreachable(name) from None


def _refuse_pickle_only(source: str) -> None:
    folder = Path(source)
    if not folder.is_dir() or any(folder.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in folder.glob("*.bin")) + sorted(
        p.name for p in folder.glob("*.pt*")
    )
    if pickles:
        raise UserError(
            f"model folder {folder} holds pickle weights only ({pickles[0]}), which can run "
            "code when loaded; convert them to safetensors, or pass --allow-pickle "
            "(model.allow_pickle=true) if you trust the file"
        )


def load_head_model(loader: Any, name: str, **kwargs: Any) -> Any:
    """Load a model with a new task head, noting which of its weights the checkpoint lacked.

    The names go to ``model.tunelab_new_weights``: besides the head, a checkpoint may lack
    body layers (a BERT pretrained by masked LM alone has no pooler). Such layers are
    initialised at random on every load, so adapters must train and save them with the head.
    """
    model, info = from_pretrained(loader, name, output_loading_info=True, **kwargs)
    model.tunelab_new_weights = sorted(info.get("missing_keys", []))
    return model


def model_length_limit(model_config: Any, tokenizer: Any) -> int | None:
    """The longest input the model takes (position embeddings; the tokenizer's limit if lower)."""
    limits = []
    text_config = getattr(model_config, "text_config", None)  # a vision-language model's
    positions = getattr(model_config, "max_position_embeddings", None) or getattr(
        text_config, "max_position_embeddings", None
    )
    if positions:
        # RoBERTa-style models reserve the first positions for padding.
        offset = (
            (getattr(model_config, "pad_token_id", 0) or 0) + 1
            if "roberta" in str(getattr(model_config, "model_type", ""))
            else 0
        )
        limits.append(positions - offset)
    tokenizer_limit = getattr(tokenizer, "model_max_length", None) or getattr(
        getattr(tokenizer, "tokenizer", None), "model_max_length", None
    )  # a processor holds its tokenizer
    if tokenizer_limit and tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    return min(limits) if limits else None
