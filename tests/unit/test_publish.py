"""`tunelab push`: --dry-run lists the model folder's files without any network; a push creates
a private repository and uploads the folder with the card naming the repository; no Hub, or a
refusing one, is one sentence with exit code 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from huggingface_hub import ModelCard

from tests.unit.data.test_bad_inputs import assert_one_line_error, run_cli
from tests.unit.evaluation.synthetic_runs import classification_run
from tunelab import publish
from tunelab.errors import UserError
from tunelab.evaluation.model_card import write_model_card


@pytest.fixture
def run(tmp_path: Path) -> Path:
    folder = classification_run(tmp_path / "runs" / "reviews")
    (folder / "model" / "model.safetensors").write_bytes(b"\0" * 4096)
    (folder / "model" / ".model.safetensors.tmp").write_bytes(b"half-written")
    write_model_card(folder, command="tunelab train --data reviews.xlsx")
    return folder


class FakeApi:
    """Records what a push asks of the Hub; ``fail`` makes create_repo raise it."""

    calls: ClassVar[list[tuple[str, Any]]] = []
    fail: ClassVar[Exception | None] = None

    def create_repo(self, repo_id: str, **kwargs: Any) -> str:
        if FakeApi.fail is not None:
            raise FakeApi.fail
        FakeApi.calls.append(("create_repo", (repo_id, kwargs)))
        return f"https://huggingface.co/{repo_id}"

    def create_commit(self, repo_id: str, operations: list[Any], **kwargs: Any) -> None:
        FakeApi.calls.append(("create_commit", (repo_id, operations)))


def test_dry_run_lists_the_files_with_sizes_and_touches_no_network(run, monkeypatch, capsys):
    from tunelab import cli

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a dry run must not touch the network")

    monkeypatch.setattr(publish, "hub_reachable", no_network)
    monkeypatch.setattr("huggingface_hub.HfApi", no_network)
    monkeypatch.setattr("sys.argv", ["tunelab", "push", str(run), "--repo", "me/reviews",
                                     "--dry-run"])  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code in (0, None)
    lines = capsys.readouterr().out.splitlines()
    total = sum(size for _, size in publish.upload_plan(run, "me/reviews").files)
    assert lines[0] == (
        f"would upload {run / 'model'} to the Hugging Face Hub as me/reviews (private): "
        f"3 files, {publish.size_text(total)}"
    )
    listed = {line.split()[0]: line for line in lines[1:]}
    assert set(listed) == {"README.md", "config.json", "model.safetensors"}  # no hidden file
    assert listed["model.safetensors"].endswith("4.1 kB")
    assert listed["README.md"].endswith("(model card)")


def test_a_push_creates_a_private_repo_and_uploads_the_folder_and_card(run, monkeypatch):
    FakeApi.calls, FakeApi.fail = [], None
    monkeypatch.setattr(publish, "hub_reachable", lambda: True)
    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    result = publish.push(run, "me/reviews")
    assert result["uploaded"] and result["url"] == "https://huggingface.co/me/reviews"
    (_, (repo, kwargs)), (_, (_, operations)) = FakeApi.calls
    assert repo == "me/reviews" and kwargs == {"private": True, "exist_ok": True}
    uploaded = {op.path_in_repo: op for op in operations}
    assert set(uploaded) == {"README.md", "config.json", "model.safetensors"}  # no hidden files
    card = ModelCard(bytes(uploaded["README.md"].path_or_fileobj).decode("utf-8"))
    assert card.data.pipeline_tag == "text-classification"
    assert 'model="me/reviews"' in card.text and str(run) not in card.text.split("## How")[1]
    publish.push(run, "me/reviews", private=False)
    assert FakeApi.calls[2][1][1]["private"] is False


def test_no_hub_and_a_refusing_hub_are_one_line_and_exit_2(run, monkeypatch, capsys):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    code, err = run_cli(["push", str(run), "--repo", "me/reviews"], monkeypatch, capsys)
    assert code == 2
    assert_one_line_error(err, r"the Hugging Face Hub \(http://127.0.0.1:9\) cannot be reached")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, err = run_cli(["push", str(run), "--repo", "me/reviews"], monkeypatch, capsys)
    assert code == 2
    assert_one_line_error(err, r"HF_HUB_OFFLINE is set.*--dry-run")
    monkeypatch.delenv("HF_HUB_OFFLINE")

    class Refused(Exception):
        response = type("Response", (), {"status_code": 401})()

    FakeApi.calls, FakeApi.fail = [], Refused("Invalid credentials")
    monkeypatch.setattr(publish, "hub_reachable", lambda: True)
    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    code, err = run_cli(["push", str(run), "--repo", "me/reviews"], monkeypatch, capsys)
    assert code == 2
    assert_one_line_error(err, r"refused to create or write me/reviews \(401\); log in")
    FakeApi.fail = None


def test_a_folder_that_is_no_model_and_a_bad_name_are_refused_before_any_network(tmp_path, run):
    with pytest.raises(UserError, match="neither a run folder nor a model folder"):
        publish.upload_plan(tmp_path, "me/x")
    with pytest.raises(UserError, match="'me/x y' is not a Hugging Face repository name"):
        publish.upload_plan(run, "me/x y")


def test_a_run_from_before_cards_gets_one_made_for_the_upload(run):
    (run / "model" / "README.md").unlink()
    plan = publish.upload_plan(run, "me/reviews")
    assert plan.files[0][0] == "README.md" and not plan.card_written
    assert ModelCard(plan.card).data.eval_results
    assert not (run / "model" / "README.md").exists()  # planning writes nothing
