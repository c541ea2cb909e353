"""The serving extras, and a check that every file a served model loads lies inside the folder
the user named."""

from __future__ import annotations

import importlib
from pathlib import Path

from tunelab.errors import UserError

EXTRAS = {"serve": ("fastapi", "uvicorn"), "onnx": ("onnx", "onnxruntime", "onnxscript")}


def require_extra(extra: str) -> None:
    """Fail with the pip command when a package of the ``serve`` or ``onnx`` extra is missing.

    Raises:
        UserError: naming ``pip install 'tunelab[<extra>]'``.
    """
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError:
            raise UserError(
                f"this command needs the {module} package; install it with "
                f"pip install 'tunelab[{extra}]'"
            ) from None


def check_files_inside(named: str | Path, folder: Path) -> None:
    """Refuse a model ``folder`` whose files (weights, tokenizer, config) resolve outside the
    folder the user ``named`` (the run folder or the model folder itself).

    A symlink in the model folder that points elsewhere would let a served model read any
    file the server can read; the folder the user names is the boundary.

    Raises:
        UserError: naming the first file that leads outside, or a PEFT adapter (whose base
            weights live in another folder).
    """
    root = Path(named).resolve()
    for item in [folder, *sorted(folder.rglob("*"))]:
        target = item.resolve()
        if not target.is_relative_to(root):
            raise UserError(
                f"{item} resolves to {target}, outside the model folder {root}; copy the file "
                "into the folder instead of linking to it"
            )
    if (folder / "adapter_config.json").is_file():
        raise UserError(
            f"{folder} holds a PEFT adapter whose base model lives outside the folder; run "
            f"tunelab merge on the run and serve the merged folder"
        )
