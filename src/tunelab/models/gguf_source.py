"""GGUF files (from llama.cpp, Ollama, LM Studio) as a model source for causal LMs.

transformers reads a GGUF file with ``from_pretrained(folder, gguf_file=name)``: its tensors
dequantised to float32, its tokenizer and chat template from the file's metadata. tunelab
does that once per file and keeps the result as an ordinary safetensors folder in its cache
(``TUNELAB_CACHE`` or ``~/.cache/tunelab``), so training, adapters, merging, prediction and
serving see a plain Hugging Face folder, and a run's ``model/`` loads without ``gguf``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from tunelab.errors import UserError

log = logging.getLogger("tunelab")

SUFFIX = ".gguf"


def gguf_file(path: Path) -> Path | None:
    """The GGUF file ``path`` names: the file itself, or the one ``.gguf`` file of a folder
    without ``config.json``; ``None`` when ``path`` is neither.

    Raises:
        UserError: for a folder holding several GGUF files (which one is meant is unclear).
    """
    if path.is_file() and path.suffix.lower() == SUFFIX:
        return path
    if not path.is_dir() or (path / "config.json").is_file():
        return None
    found = sorted(p for p in path.iterdir() if p.suffix.lower() == SUFFIX and p.is_file())
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise UserError(
            f"model folder {path} holds several GGUF files ({names}); name one with "
            f"--model {path / found[0].name}"
        )
    return found[0] if found else None


def _cache_root() -> Path:
    return Path(os.environ.get("TUNELAB_CACHE") or Path.home() / ".cache" / "tunelab") / "gguf"


def _file_key(path: Path) -> str:
    """A key that changes when the file does: its resolved path, size and modification time
    (hashing a multi-gigabyte file on every run would cost more than the check is worth)."""
    stat = path.stat()
    raw = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha1(raw.encode()).hexdigest()[:12]


def gguf_metadata(path: Path) -> dict[str, str]:
    """The file's architecture and the quantisation types of its tensors (for messages).

    Raises:
        UserError: when the ``gguf`` package is missing or the file is not GGUF.
    """
    try:
        from gguf import GGUFReader
    except ImportError:
        raise UserError(
            f"--model {path} is a GGUF file, which needs the gguf package; install it with "
            "pip install 'tunelab[gguf]'"
        ) from None
    try:
        reader = GGUFReader(str(path))
    except (ValueError, OSError, KeyError) as exc:
        raise UserError(f"--model {path} is not a readable GGUF file ({exc})") from None
    field = reader.fields.get("general.architecture")
    architecture = bytes(field.parts[field.data[0]]).decode() if field else "unknown"
    types = sorted({tensor.tensor_type.name for tensor in reader.tensors})
    return {"architecture": architecture, "types": ", ".join(types)}


def _check_supported(path: Path, meta: dict[str, str]) -> None:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    if meta["architecture"] not in GGUF_SUPPORTED_ARCHITECTURES:
        readable = ", ".join(sorted(GGUF_SUPPORTED_ARCHITECTURES))
        raise UserError(
            f"--model {path}: transformers cannot read GGUF files of architecture "
            f"'{meta['architecture']}' (it reads {readable}); use the original checkpoint's "
            "safetensors instead"
        )


def converted_folder(path: Path) -> Path:
    """A safetensors folder with the GGUF file's model, tokenizer and chat template, written
    into the cache on first use (atomically: an interrupted conversion leaves nothing that
    looks complete).

    Raises:
        UserError: for a missing ``gguf`` package, an architecture or quantisation type
            transformers cannot read, or a file that is no GGUF.
    """
    target = _cache_root() / f"{path.stem}-{_file_key(path)}"
    if (target / "model.safetensors").is_file() and (target / "config.json").is_file():
        return target
    meta = gguf_metadata(path)
    _check_supported(path, meta)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info(
        "converting %s (%s, %s) to a safetensors folder in %s, once",
        path.name, meta["architecture"], meta["types"], target.parent,
    )  # fmt: skip
    started = time.time()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    except (ValueError, NotImplementedError, KeyError, TypeError) as exc:
        raise UserError(
            f"--model {path}: transformers could not read this GGUF file ({meta['architecture']}"
            f", tensor types {meta['types']}): {str(exc).splitlines()[0]}"
        ) from None
    # the tensors are dequantised floats now; the GGUF marker only blocks saving and training
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".converting-"))
    try:
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        if target.exists():  # a half-finished folder from an older crash
            shutil.rmtree(target)
        os.replace(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("converted %s in %.0f s", path.name, time.time() - started)
    return target
