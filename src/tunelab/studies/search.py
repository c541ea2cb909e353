"""Hyperparameter search with Optuna: TPE sampling, median pruning, a resumable RDB study.

Orchestration above the API: each trial is an ordinary ``tunelab.train`` run with some config
keys changed; its score is a validation metric. The study lives in SQLite (or any RDB URL), so
a killed search resumes where it stopped and several machines can share one study. The first
trial runs the config's own values, so the search always reports how much it gained over them.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from tunelab import api
from tunelab.config import ParameterRange, RunConfig, build_config, commented_yaml
from tunelab.errors import UserError
from tunelab.evaluation.metric_direction import task_metric_grows
from tunelab.outputs import write_json, write_text
from tunelab.tasks import task_from_run_config
from tunelab.training.guesses import guess_from_data

log = logging.getLogger("tunelab")

_COMMON_SPACE = {
    "training.learning_rate": {"low": 1e-5, "high": 1e-3, "log": True},
    "training.epochs": {"low": 1, "high": 5, "integer": True},
    "training.warmup_ratio": {"low": 0.0, "high": 0.2},
    "training.weight_decay": {"low": 0.0, "high": 0.1},
}


def default_space(config: RunConfig) -> dict[str, ParameterRange]:
    """The per-task search space used when ``search.space`` is empty."""
    space: dict[str, Any] = dict(_COMMON_SPACE)
    sizes = task_from_run_config(config).search_batch_sizes
    space["training.batch_size"] = {"choices": list(sizes)}
    if config.peft.method in ("lora", "qlora"):
        space["peft.r"] = {"choices": [4, 8, 16, 32]}
        space["training.learning_rate"] = {"low": 1e-4, "high": 1e-2, "log": True}
    if config.training.method == "few-shot":
        space = {
            "training.learning_rate": {"low": 1e-5, "high": 1e-3, "log": True},
            "few_shot.pair_rounds": {"choices": [5, 10, 20, 40]},
        }
    return {key: ParameterRange(**value) for key, value in space.items()}


def _current_value(tree: dict[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise UserError(
                f"search.space key '{key}' is not a config key; use dotted keys such as "
                "training.learning_rate"
            )
        node = node[part]
    return node


def _fits(value: Any, spec: ParameterRange) -> bool:
    if spec.choices is not None:
        return value in spec.choices
    return isinstance(value, (int, float)) and spec.low <= value <= spec.high  # type: ignore[operator]


def _suggest(trial: Any, key: str, spec: ParameterRange) -> Any:
    if spec.choices is not None:
        return trial.suggest_categorical(key, spec.choices)
    if spec.integer:
        return trial.suggest_int(key, int(spec.low), int(spec.high), log=spec.log)  # type: ignore[arg-type]
    return trial.suggest_float(key, spec.low, spec.high, log=spec.log)  # type: ignore[arg-type]


def _pruning_callback(trial: Any, metric: str) -> Any:
    """A TrainerCallback that reports each evaluation to the trial and stops a losing one."""
    import optuna
    from transformers import TrainerCallback

    class ReportToTrial(TrainerCallback):
        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **_: Any):
            value = (metrics or {}).get(f"eval_{metric}")
            if value is None:
                return
            trial.report(float(value), step=int(state.global_step))
            if trial.should_prune():
                raise optuna.TrialPruned(f"{metric}={value:.4f} at step {state.global_step}")

    return ReportToTrial()


def _storage(url: str, attempts: int = 5) -> Any:
    """The study's RDB storage; retried, since workers that start together race to create
    a new database's tables and the loser fails ("table alembic_version already exists")."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    reason = None
    for attempt in range(attempts):
        time.sleep(0.5 * attempt)  # no wait before the first attempt
        try:
            return _new_storage(url)
        except (IntegrityError, OperationalError) as exc:
            log.debug("study storage busy (%s), attempt %d of %d", exc.orig, attempt + 1, attempts)
            reason = exc.orig
    raise UserError(
        f"search.storage {url!r} could not be opened: {reason}; check the URL and that "
        "no other program holds the database"
    )


def _new_storage(url: str) -> Any:
    import warnings

    import optuna

    # heartbeats are "experimental" in Optuna's words but documented for exactly this use
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # A trial whose process died stops beating; after the grace period it is marked failed
    # and run again once, so a kill loses at most the trial that was running.
    return optuna.storages.RDBStorage(
        url,
        heartbeat_interval=30,
        grace_period=90,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
            max_retry=1
        ),
    )


def search(
    config: RunConfig, output: Path, trials: int | None = None, overwrite: bool = False
) -> dict[str, Any]:
    """Run (or resume) a hyperparameter search; write ``best.yaml`` and ``trials.csv``.

    Args:
        config: the run to tune; ``config.search`` holds the space, metric and storage.
        output: the search folder: trial runs, the SQLite study, the results.
        trials: finished trials to reach, counting those of earlier runs (default
            ``search.trials``).
        overwrite: start a new study instead of resuming the one in ``output``.

    Returns:
        ``{"best_value", "best_params", "default_value", "metric", "trials": {...}, ...}``.

    Raises:
        UserError: for an unknown search key, no validation data, or a missing optuna.
    """
    try:
        import optuna
    except ImportError:
        raise UserError("tunelab search needs optuna; pip install 'tunelab[search]'") from None
    config = config.model_copy(deep=True)  # the data fills the task and columns once, for all
    guess_from_data(config)  # trials (each trial's config then names them)
    settings = config.search
    space = settings.space or default_space(config)
    tree = config.model_dump(mode="json")
    defaults = {key: _current_value(tree, key) for key in space}
    for key, spec in space.items():  # a bad range fails now, not in trial 7
        sample = spec.choices[0] if spec.choices is not None else spec.low
        try:
            build_config(tree, [f"{key}={sample}"])
        except UserError as exc:
            raise UserError(f"search.space '{key}': {exc}") from None
    task = task_from_run_config(config)
    metric = settings.metric or task.main_metric
    grows = task_metric_grows(metric, task.main_metric, task.greater_is_better)
    direction = "maximize" if grows else "minimize"

    if overwrite and output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)
    storage = settings.storage or f"sqlite:///{(output / 'study.db').resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=settings.study_name or output.resolve().name,
        storage=_storage(storage),
        load_if_exists=True,
        direction=direction,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
        if settings.pruning
        else optuna.pruners.NopPruner(),
    )
    # a second worker, or a resumed search, must not replay the first one's suggestions
    study.sampler = optuna.samplers.TPESampler(seed=config.seed + len(study.trials))
    if not study.trials and all(_fits(defaults[k], space[k]) for k in space):
        study.enqueue_trial(defaults, user_attrs={"defaults": True})

    def objective(trial: Any) -> float:
        params = {key: _suggest(trial, key, spec) for key, spec in space.items()}
        folder = output / f"trial-{trial.number:03d}"
        overrides = [f"{k}={v}" for k, v in params.items()] + [f"output={folder}"]
        trial_config = build_config(tree, overrides)
        callbacks = [_pruning_callback(trial, metric)] if settings.pruning else []
        try:
            result = api.train(trial_config, overwrite=True, callbacks=callbacks)
        except optuna.TrialPruned:
            shutil.rmtree(folder, ignore_errors=True)
            log.info("trial %d pruned", trial.number)
            raise
        scores = result["metrics"].get("validation", {})
        if metric not in scores:
            raise UserError(
                f"search metric '{metric}' is not among the validation metrics "
                f"({', '.join(sorted(scores)) or 'no validation split'}); give a validation "
                "file or split, or set search.metric"
            )
        if not settings.keep_models:
            shutil.rmtree(folder / "model", ignore_errors=True)
            shutil.rmtree(folder / "checkpoints", ignore_errors=True)
        log.info("trial %d: %s=%.4f with %s", trial.number, metric, scores[metric], params)
        return float(scores[metric])

    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    target = trials or settings.trials
    done = len(study.get_trials(deepcopy=False, states=finished))
    if done < target:
        study.optimize(objective, n_trials=target - done, catch=())
    return _summarise(study, config, tree, metric, output)


def _summarise(
    study: Any, config: RunConfig, tree: dict[str, Any], metric: str, output: Path
) -> dict[str, Any]:
    import optuna

    states = optuna.trial.TrialState
    complete = study.get_trials(deepcopy=False, states=(states.COMPLETE,))
    if not complete:
        raise UserError(f"no trial of the search in {output} finished; see the log above")
    best = study.best_trial
    default = [t for t in complete if t.user_attrs.get("defaults")]
    best_config = build_config(tree, [f"{k}={v}" for k, v in best.params.items()])
    write_text(output / "best.yaml", commented_yaml(best_config) + "\n")
    write_text(output / "trials.csv", study.trials_dataframe().to_csv(index=False))
    summary = {
        "metric": metric,
        "direction": study.direction.name.lower(),
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best.params,
        "default_value": default[0].value if default else None,
        "trials": {
            state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,)))
            for state in (states.COMPLETE, states.PRUNED, states.FAIL, states.RUNNING)
        },
        "best_config": str(output / "best.yaml"),
    }
    write_json(output / "search.json", summary)
    return summary
