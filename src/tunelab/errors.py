"""The one exception type for mistakes a user can fix."""


class UserError(Exception):
    """A problem with the user's input, config or environment.

    The message is one sentence that names the file, row, column or key and says what to
    do. The CLI prints it on one line and exits with code 2; programming errors stay
    ordinary exceptions.
    """


class RunInterrupted(Exception):
    """Training stopped on Ctrl-C after saving a checkpoint; ``--resume`` continues it."""

    def __init__(self, checkpoint: str | None) -> None:
        self.checkpoint = checkpoint
        where = f"checkpoint saved at {checkpoint}" if checkpoint else "no checkpoint yet"
        super().__init__(f"interrupted: {where}; continue with --resume")


def one_line(error: BaseException) -> str:
    """The line the CLI prints for ``error``, which the workbench shows as it is.

    A ``UserError`` gives ``error: <its sentence>`` (line breaks in a file name or a cell
    become spaces); an interrupted run its resume hint; anything else is a bug in tunelab:
    its type, where it was raised and a short message, never a traceback.
    """
    if isinstance(error, UserError):
        return f"error: {' '.join(str(error).splitlines())}"
    if isinstance(error, RunInterrupted):
        return str(error)
    import traceback
    from pathlib import Path

    frames = traceback.extract_tb(error.__traceback__)
    place = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    message = " ".join(str(error).split())[:300]
    return (
        f"internal error: {type(error).__name__}{place}: {message}; this is a bug in tunelab, "
        "please report this with the command you ran (TUNELAB_TRACEBACK=1 shows the trace)"
    )
