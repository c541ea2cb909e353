"""Every registered task declares what shared code asks of it (the protocol in tasks/base.py)."""

from __future__ import annotations

import inspect

import pytest

from tunelab.tasks import TASKS
from tunelab.tasks.base import Task

MEMBERS = sorted(
    {name for name in vars(Task) if not name.startswith("_")} | set(inspect.get_annotations(Task))
)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_a_registered_task_has_every_member_of_the_protocol(name):
    task = TASKS[name]()  # a task can be built with its defaults (the report does)
    missing = [member for member in MEMBERS if not hasattr(task, member)]
    assert not missing, f"{name} lacks {missing}"
    assert task.name == name
    assert task.explains in (None, "text", "tokens", "occlusion")
    # occlusion explains one label of an image or clip, never generated text
    assert task.explains != "occlusion" or task.model_kind in ("image", "audio")
    assert set(task.exportable) <= {"onnx", "gguf"}
    assert (task.onnx_graph is not None) == ("onnx" in task.exportable)  # export needs both
    assert isinstance(task.embeds, bool)
    assert task.search_batch_sizes and all(size > 0 for size in task.search_batch_sizes)
    assert callable(task.report_sections)
    kinds = ("encoder", "seq2seq", "causal", "image", "audio", "image-text", "vision-chat")
    assert task.model_kind in kinds
    assert task.input_kind in ("text", "image", "audio")
    assert task.doctor_checks in (None, "texts", "tags", "images")
    flags = (task.trains_few_shot, task.takes_virtual_tokens, task.packs_rows,
             task.batch_tokens_from_rows)  # fmt: skip
    assert all(isinstance(flag, bool) for flag in flags)


def test_the_protocol_declares_what_callers_read():
    read_by_callers = {
        "problem_type", "labels", "targets", "from_run_config", "from_metadata", "clean_text",
        "explains", "exportable", "report_sections", "search_batch_sizes", "onnx_graph", "embeds",
        "model_kind", "trains_few_shot", "takes_virtual_tokens", "packs_rows", "doctor_checks",
        "input_kind", "processor_class", "batch_tokens_from_rows",
    }  # fmt: skip
    assert read_by_callers <= set(MEMBERS)
