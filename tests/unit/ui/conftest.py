"""The workbench's app on a temporary workspace, with a client that sends what its pages send."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_reviews

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

PAGE_HEADERS = {"X-Tunelab-UI": "1"}


def workbench(workspace: Path, **settings: Any) -> TestClient:
    """A client of the workbench for ``workspace``; jobs stay queued unless ``run_jobs``."""
    from tunelab.ui.app import create_app

    settings.setdefault("run_jobs", False)
    app = create_app(workspace, **settings)
    return TestClient(app, base_url="http://127.0.0.1:7860", headers=PAGE_HEADERS)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "workspace"


@pytest.fixture
def client(workspace: Path) -> Iterator[TestClient]:
    with workbench(workspace) as test_client:
        yield test_client


@pytest.fixture
def uploaded(client: TestClient) -> str:
    """The example CSV of 120 reviews, uploaded; its path in the workspace."""
    body = make_reviews(120).to_csv(index=False).encode("utf-8")
    answer = client.put("/api/files/reviews.csv", content=body)
    assert answer.status_code == 200, answer.text
    return answer.json()["path"]


def cli_line(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: Any) -> str:
    """The last line ``tunelab ARGS`` prints to stderr through the real entry point (every
    call here fails before a model is loaded: the line is its error)."""
    import sys

    from tunelab import cli

    monkeypatch.setattr(sys, "argv", ["tunelab", *args])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]
