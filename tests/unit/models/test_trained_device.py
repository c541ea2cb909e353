"""A loaded model goes to the GPU when there is one, so prediction does not stay on the CPU."""

from __future__ import annotations

import torch

from tunelab.models.trained import on_fastest_device


def test_a_model_stays_on_the_cpu_without_a_gpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model = torch.nn.Linear(2, 2)
    assert on_fastest_device(model) is model
    assert next(model.parameters()).device.type == "cpu"


def test_a_model_moves_to_the_gpu_when_one_is_available(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    model = torch.nn.Linear(2, 2)
    moved: list[str] = []
    monkeypatch.setattr(model, "to", lambda device: moved.append(device) or model)
    assert on_fastest_device(model) is model
    assert moved == ["cuda"]


def test_an_export_keeps_its_model_on_the_cpu_beside_a_gpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    model = torch.nn.Linear(2, 2)
    moved: list[str] = []
    monkeypatch.setattr(model, "to", lambda device: moved.append(device) or model)
    assert on_fastest_device(model, device="cpu") is model
    assert moved == []
