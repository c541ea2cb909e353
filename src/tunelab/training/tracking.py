"""Optional experiment trackers (``tracking: [mlflow, tensorboard]``) through the Trainer's own
integrations: tunelab only checks the packages early and points them at the run.

TensorBoard writes under ``<run>/tensorboard``. MLflow logs to ``MLFLOW_TRACKING_URI`` when it
is set, else to an embedded SQLite store beside the run folders (``<run>/../mlflow.db``), in
the experiment named after the folder that holds the runs, one MLflow run per run folder.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunelab.errors import UserError

# What each tracker needs importable; the SQLite store of MLflow needs SQLAlchemy and Alembic,
# which mlflow-skinny leaves out.
_NEEDS = {"mlflow": ("mlflow",), "tensorboard": ("tensorboard",)}
_SQLITE_NEEDS = ("sqlalchemy", "alembic")


def check_trackers(tracking: Sequence[str]) -> None:
    """Refuse trackers whose packages are missing, before any data is read.

    Raises:
        UserError: naming the tracker and the extra to install.
    """
    for name in tracking:
        needs = list(_NEEDS[name])
        if name == "mlflow" and not os.environ.get("MLFLOW_TRACKING_URI"):
            needs += _SQLITE_NEEDS
        missing = [module for module in needs if importlib.util.find_spec(module) is None]
        if missing:
            raise UserError(
                f"tracking: [{name}] needs the {', '.join(missing)} package(s), which are not "
                f"installed; run pip install 'tunelab[{name}]' or remove {name} from tracking"
            )


def report_to(tracking: Sequence[str]) -> list[str] | str:
    """The Trainer's ``report_to``: the chosen integrations, or ``"none"``."""
    return list(tracking) if tracking else "none"


def mlflow_tracking_uri(run_folder: Path) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<folder holding the run>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (
        "sqlite:///" + str(run_folder.resolve().parent / "mlflow.db")
    )


def experiment_name(run_folder: Path) -> str:
    """The folder that holds the run (``runs``, a search's folder), else ``tunelab``."""
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or run_folder.parent.name or "tunelab"


def point_trackers(trainer: Any, tracking: Sequence[str], run_folder: Path) -> None:
    """Aim the trainer's tracker callbacks at ``run_folder`` (call before ``trainer.train``)."""
    if not tracking:
        return
    from transformers.integrations import TensorBoardCallback

    if "tensorboard" in tracking:
        for callback in trainer.callback_handler.callbacks:
            if isinstance(callback, TensorBoardCallback) and callback.tb_writer is None:
                callback.logging_dir = str(run_folder / "tensorboard")
    if "mlflow" in tracking:
        _set_mlflow_experiment(run_folder)


def _set_mlflow_experiment(run_folder: Path) -> None:
    import mlflow

    embedded = not os.environ.get("MLFLOW_TRACKING_URI")
    uri = mlflow_tracking_uri(run_folder)
    if embedded:
        run_folder.resolve().parent.mkdir(parents=True, exist_ok=True)
    # set explicitly, so that a store chosen earlier in this process does not linger
    mlflow.set_tracking_uri(uri)
    if embedded:  # mlflow exports the URI for subprocesses; the next run may sit elsewhere
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    name = experiment_name(run_folder)
    if embedded and mlflow.get_experiment_by_name(name) is None:
        # the embedded store keeps artifacts beside it, not in ./mlruns of the working folder
        artifacts = run_folder.resolve().parent / "mlartifacts"
        mlflow.create_experiment(name, artifact_location=artifacts.as_uri())
    mlflow.set_experiment(name)


def log_final_metrics(
    tracking: Sequence[str], run_folder: Path, metrics: dict[str, Any], step: int
) -> None:
    """Add the run's final validation and test scores to the trackers.

    The Trainer's integrations log only what the Trainer sees (training loss, its own
    evaluations); the test split and generated-text scores come after it, so they go here.
    """
    scores = {
        (split, key): float(value)
        for split in ("validation", "test")
        for key, value in (metrics.get(split) or {}).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    if not scores:
        return
    if "tensorboard" in tracking:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(run_folder / "tensorboard"))
        for (split, key), value in scores.items():
            writer.add_scalar(f"{split}/{key}", value, step)
        writer.close()
    if "mlflow" in tracking:
        import mlflow

        run = mlflow.last_active_run()
        if run is not None:  # the run the Trainer's callback started and ended
            client = mlflow.MlflowClient()
            for (split, key), value in scores.items():
                client.log_metric(run.info.run_id, f"{split}_{key}", value, step=step)
