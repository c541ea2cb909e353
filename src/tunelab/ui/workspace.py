"""The workbench's workspace: the one folder its pages read and write.

Every path a page sends is relative to the workspace and must stay inside it: absolute
names, ``..`` and symlinks that lead out are refused, so a page (or anyone holding the token)
can neither read nor write elsewhere. Uploads land in ``uploads/``, runs in ``runs/``, the
doctor's cleaned files in ``cleaned/``, batch predictions in ``predictions/``, and the job
database and logs in ``.tunelab-ui/``. Run from the workspace, the commands the pages show
do what the pages do.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Any

from tunelab.errors import UserError

UPLOADS = "uploads"
RUNS = "runs"
CLEANED = "cleaned"
PREDICTIONS = "predictions"
STATE = ".tunelab-ui"
# folders whose files the Data and Try pages offer (data/: where `tunelab data example` writes)
LISTED = (UPLOADS, "data", CLEANED)
LISTED_AT_MOST = 2000  # files in the picker; a bigger workspace is listed in part
_RUN_INSIDES = {"model", "checkpoints", "tensorboard", "merged"}


class UploadTooLarge(UserError):
    """An upload over the size limit (answered with HTTP 413)."""


class Workspace:
    """The workspace folder and the checked paths inside it.

    Args:
        root: the folder (created if missing).
        max_upload_bytes: the largest file one upload may hold.
    """

    def __init__(self, root: Path, max_upload_bytes: int = 200 * 2**20) -> None:
        self.root = Path(root).resolve()
        self.max_upload_bytes = max_upload_bytes
        for name in (UPLOADS, RUNS, STATE):
            (self.root / name).mkdir(parents=True, exist_ok=True)

    @property
    def runs(self) -> Path:
        return self.root / RUNS

    @property
    def state(self) -> Path:
        return self.root / STATE

    def path(self, name: str | Path, what: str = "path") -> Path:
        """``name`` (relative to the workspace) as a path inside it.

        Args:
            name: a relative path with ``/`` separators.
            what: what the path is, for the error (``data.train``, ``upload``, ...).

        Raises:
            UserError: for an empty, absolute or ``..`` name, or one that leads out of the
                workspace through a symlink.
        """
        text = str(name).strip()
        pure = PurePosixPath(text.replace("\\", "/"))
        if not text or "\x00" in text:
            raise UserError(f"{what} is empty; give a path inside the workspace {self.root}")
        if pure.is_absolute() or re.match(r"^[A-Za-z]:", text) or ".." in pure.parts:
            raise UserError(
                f"{what} '{text}' is not a path inside the workspace; give it relative to "
                f"{self.root}, without '..'"
            )
        path = self.root.joinpath(*pure.parts)
        if not path.resolve().is_relative_to(self.root):
            raise UserError(
                f"{what} '{text}' leads out of the workspace {self.root} (a symlink); "
                "copy the file into the workspace instead"
            )
        return path

    def relative(self, path: Path) -> str:
        """``path`` as the pages and the shown commands name it: relative, with ``/``."""
        path = Path(path)
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def shorten(self, message: str) -> str:
        """A message with the workspace's own prefix taken off the paths it names: the text
        the CLI prints for the same command run from the workspace."""
        return message.replace(f"{self.root}{os.sep}", "")

    async def save_upload(self, name: str, chunks: AsyncIterator[bytes]) -> Path:
        """Store an upload as ``uploads/<name>``, replacing an earlier one of that name.

        The bytes go to a temporary file beside the target and are renamed into place only
        when complete and within the limit, so a cut or refused upload leaves nothing.

        Raises:
            UserError: for a name that leaves ``uploads/``.
            UploadTooLarge: past ``max_upload_bytes``.
        """
        target = self.path(f"{UPLOADS}/{name}", "upload")
        if target.is_dir():
            raise UserError(f"upload '{name}' is the name of a folder in uploads/; rename the file")
        target.parent.mkdir(parents=True, exist_ok=True)
        self.path(self.relative(target.parent), "upload")  # a symlinked folder on the way
        handle, temporary = tempfile.mkstemp(prefix=".upload-", dir=target.parent)
        size = 0
        try:
            with os.fdopen(handle, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_upload_bytes:
                        limit = self.max_upload_bytes / 2**20
                        raise UploadTooLarge(
                            f"upload '{name}' is larger than the limit of {limit:g} MB; start "
                            "tunelab ui with a higher --max-upload-mb, or copy the file into "
                            f"{self.root / UPLOADS}"
                        )
                    out.write(chunk)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target

    def files(self) -> list[dict[str, Any]]:
        """The data files and image folders the pages offer, newest first.

        Files under ``uploads/``, ``data/`` and ``cleaned/`` (hidden names, labelling
        journals, run folders and model folders left out), and folders holding class
        sub-folders (image data sets).
        """
        found: list[dict[str, Any]] = []
        for top in LISTED:
            base = self.root / top
            if not base.is_dir():
                continue
            for folder, dirs, names in os.walk(base):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _RUN_INSIDES)
                here = Path(folder)
                if dirs and any(_has_files(here / d) for d in dirs[:3]) and here != base:
                    found.append(self._entry(here, "folder"))
                found += [self._entry(here / n, "file") for n in names if _is_data(n)]
                if len(found) >= LISTED_AT_MOST:
                    break
        return sorted(found, key=lambda f: f["modified"], reverse=True)[:LISTED_AT_MOST]

    def _entry(self, path: Path, kind: str) -> dict[str, Any]:
        stat = path.stat()
        return {
            "path": self.relative(path),
            "kind": kind,
            "bytes": stat.st_size if kind == "file" else None,
            "modified": stat.st_mtime,
            "age_seconds": round(time.time() - stat.st_mtime),
        }


def _is_data(name: str) -> bool:
    """Not hidden and not a labelling journal (``texts.journal.jsonl``: the Label page's
    record of who labelled what, not rows to train on; its labelled file is listed)."""
    return not name.startswith(".") and not name.endswith(".journal.jsonl")


def _has_files(folder: Path) -> bool:
    try:
        return any(entry.is_file() for entry in os.scandir(folder))
    except OSError:
        return False
