"""Without a terminal, training progress is whole lines (never carriage-return redraws): at
each tenth of the steps, at least every N seconds, and at the end."""

from __future__ import annotations

from types import SimpleNamespace

from tunelab.training.progress import PlainProgress


def _run(progress: PlainProgress, steps: int, logs: dict[int, float] | None = None) -> None:
    state = SimpleNamespace(global_step=0, max_steps=steps, epoch=0.0, num_train_epochs=2)
    progress.on_train_begin(None, state, None)
    for step in range(1, steps + 1):
        state.global_step, state.epoch = step, 2 * step / steps
        if logs and step in logs:
            progress.on_log(None, state, None, logs={"loss": logs[step], "learning_rate": 1e-4})
        progress.on_step_end(None, state, None)


def test_a_line_at_each_part_of_the_run_with_loss_speed_and_time_left():
    ticks = iter(range(0, 1000, 2))  # a fake clock: two seconds per call
    lines: list[str] = []
    progress = PlainProgress(every_seconds=10_000, parts=4, clock=lambda: next(ticks),
                             write=lines.append)  # fmt: skip
    _run(progress, 20, logs={3: 0.6931, 12: 0.25})
    # before the first step, which may take minutes, what is under way
    assert lines.pop(0) == ("training: 20 steps over 2 epochs; a line each tenth of them and at "
                            "least every 10000 s, the first after step 1")  # fmt: skip
    assert [line.split(",")[0] for line in lines] == [
        "training: step 5/20 (25%)", "training: step 10/20 (50%)", "training: step 15/20 (75%)",
        "training: step 20/20 (100%)",
    ]  # fmt: skip
    assert lines[0] == (
        "training: step 5/20 (25%), epoch 0.50/2, loss 0.6931 (step 3), 2.0 s/step, 0:00:30 left"
    )
    assert "loss 0.2500 (step 12)" in lines[2]
    assert lines[-1].endswith("0:00:00 left")
    assert not any("\r" in line for line in lines)


def test_long_runs_also_get_a_line_every_so_many_seconds():
    ticks = iter(range(0, 10_000, 6))
    lines: list[str] = []
    progress = PlainProgress(every_seconds=10, parts=1, clock=lambda: next(ticks),
                             write=lines.append)  # fmt: skip
    _run(progress, 7)
    assert [line.split(",")[0].removeprefix("training: step ") for line in lines[1:]] == [
        "2/7 (29%)", "4/7 (57%)", "6/7 (86%)", "7/7 (100%)",
    ]  # fmt: skip


def test_evaluations_are_one_line_of_scores():
    lines: list[str] = []
    progress = PlainProgress(write=lines.append)
    metrics = {"eval_loss": 0.41234, "eval_f1_macro": 0.8333, "eval_runtime": 1.2, "epoch": 1.0,
               "eval_samples_per_second": 90.0}  # fmt: skip
    progress.on_evaluate(None, SimpleNamespace(global_step=40), None, metrics=metrics)
    args = SimpleNamespace(metric_for_best_model="f1_macro")
    progress.on_evaluate(args, SimpleNamespace(global_step=80), None, metrics=metrics)
    # the held-out losses after training name their split, not a step of training
    held_out = {"test_loss": 1.4772, "test_runtime": 3.0, "epoch": 1.0}
    progress.on_evaluate(args, SimpleNamespace(global_step=80), None, metrics=held_out)
    assert lines == [
        "evaluation at step 40: loss 0.4123, f1_macro 0.8333",
        "evaluation at step 80: f1_macro 0.8333, loss 0.4123",
        "test after training: loss 1.477",
    ]


def test_a_resumed_run_says_where_it_starts():
    lines: list[str] = []
    progress = PlainProgress(write=lines.append)
    state = SimpleNamespace(global_step=120, max_steps=400, epoch=0.9, num_train_epochs=3)
    progress.on_train_begin(None, state, None)
    assert lines == ["training: from step 120 of 400 steps over 3 epochs; a line each tenth of "
                     "them and at least every 30 s, the first after step 121"]  # fmt: skip
    progress.on_train_begin(None, SimpleNamespace(global_step=0, max_steps=1, epoch=0,
                                                  num_train_epochs=1), None)  # fmt: skip
    assert lines[-1].startswith("training: 1 step over 1 epoch; ")
