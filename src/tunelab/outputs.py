"""Write run outputs atomically: a crash never leaves a half-written file or folder."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tunelab.errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600 files; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: Any) -> None:
    """Write indented UTF-8 JSON atomically."""
    write_text(path, json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Write one JSON object per line atomically."""
    write_text(
        path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
    )


@contextlib.contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder that replaces ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def claim_output(
    folder: Path,
    finished: Sequence[str],
    replaced: Sequence[Path],
    resume: bool,
    overwrite: bool,
    refusal: str,
) -> None:
    """Guard an output folder before a run writes into it.

    Args:
        folder: the run's output folder.
        finished: names inside ``folder`` whose presence means it holds an earlier run.
        replaced: files and folders a new run replaces; removed under ``overwrite`` (not when
            resuming, which needs them).
        resume, overwrite: what the user allowed.
        refusal: the sentence to raise when the folder holds a run and neither is set.

    Raises:
        UserError: with ``refusal``.
    """
    if any((folder / name).exists() for name in finished) and not (resume or overwrite):
        raise UserError(refusal)
    if overwrite and not resume:
        for target in replaced:
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
