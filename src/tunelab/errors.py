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
