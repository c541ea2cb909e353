"""Early stopping that waits for a raised run's training.min_steps."""

from types import SimpleNamespace

from tunelab.training.early_stopping import EarlyStoppingAfter


def _evaluations(callback, steps_and_scores):
    """Feed evaluations to the callback as the Trainer does; the step it stopped at, if any."""
    args = SimpleNamespace(metric_for_best_model="f1_macro", greater_is_better=True)
    state = SimpleNamespace(best_metric=None, global_step=0)
    control = SimpleNamespace(should_training_stop=False)
    for step, score in steps_and_scores:
        state.global_step = step
        callback.on_evaluate(args, state, control, metrics={"eval_f1_macro": score})
        if state.best_metric is None or score > state.best_metric:
            state.best_metric = score  # what the Trainer's best-checkpoint tracking does
        if control.should_training_stop:
            return step
    return None


NOISY = [(45, 0.12), (90, 0.21), (135, 0.35), (180, 0.56), (225, 0.54), (270, 0.51),
         (315, 0.58), (360, 0.66), (405, 0.71), (450, 0.74)]  # fmt: skip


def test_patience_counts_only_from_the_given_step():
    # digits, seed 42: two dips after epoch 4 stopped the plain callback at epoch 6
    assert _evaluations(EarlyStoppingAfter(2), NOISY) == 270
    assert _evaluations(EarlyStoppingAfter(2, not_before_step=500), NOISY) is None
    # after the step the patience counts as usual
    late = [(100, 0.5), (200, 0.6), (600, 0.55), (700, 0.54), (800, 0.9)]
    assert _evaluations(EarlyStoppingAfter(2, not_before_step=500), late) == 700


def test_a_checkpoint_keeps_the_step_to_wait_for():
    saved = EarlyStoppingAfter(3, not_before_step=500).state()
    restored = EarlyStoppingAfter.from_state(saved)
    assert (restored.early_stopping_patience, restored.not_before_step) == (3, 500)


def test_only_models_from_random_weights_wait_for_their_raised_steps():
    from tunelab.config import RunConfig
    from tunelab.training.finetune import _patience_from_step

    def config(model: str) -> RunConfig:
        return RunConfig.model_validate({"data": {"train": "x.csv"}, "model": {"name": model}})

    raised = {"epochs": {"value": 10.0, "before": 3.0, "steps": 450}}
    assert _patience_from_step(config("scratch-vit"), raised) == 500
    assert _patience_from_step(config("scratch-vit"), {}) == 0  # epochs as configured
    # a pretrained model overfits early: the first-contact run stopped at epoch 5 of 10
    assert _patience_from_step(config("zh-bert-mini"), raised) == 0
