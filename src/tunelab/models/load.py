"""Find and load models and tokenizers: local folders, the hub cache, or the hub.

No network is assumed: a name that is neither a folder nor cached and cannot be fetched
gets one clear sentence instead of a traceback or a hang.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tunelab.errors import UserError

# Bundled starter models live in <repo>/models; they resolve by bare name from anywhere.
BUNDLED_MODELS_DIR = Path(__file__).resolve().parents[3] / "models"


def bundled_model_names() -> list[str]:
    """Names of the starter models shipped in the repository's ``models/`` folder."""
    if not BUNDLED_MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in BUNDLED_MODELS_DIR.iterdir() if (p / "config.json").is_file())


def resolve_model_source(name: str) -> str:
    """Turn a model name into what ``from_pretrained`` should get.

    A folder path wins; then a bundled starter model name; otherwise the name is taken as a
    hub id.

    Raises:
        UserError: if the name looks like a path but no such folder exists.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(
                f"model folder {path} has no config.json; give a Hugging Face model folder "
                "(e.g. the model/ folder of a tunelab run)"
            )
        return str(path)
    if (BUNDLED_MODELS_DIR / name / "config.json").is_file():
        return str(BUNDLED_MODELS_DIR / name)
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


def from_pretrained(loader: Any, name: str, **kwargs: Any) -> Any:
    """Call ``loader.from_pretrained(resolved name)``, turning load failures into UserError.

    ``kwargs`` pass through (``revision``, ``trust_remote_code``, ``num_labels``, ...).
    """
    source = resolve_model_source(name)
    # Without network the hub client would retry for a while; fail fast instead.
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
    try:
        return loader.from_pretrained(source, **kwargs)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise UserError(
                f"model '{name}' ships its own code; if you trust it, set "
                "model.trust_remote_code=true"
            ) from None
        raise
    except OSError as exc:
        if Path(source).is_dir():
            raise UserError(
                f"model folder {source} could not be loaded: {exc}".split("\n")[0]
            ) from None
        raise _unreachable(name) from None
