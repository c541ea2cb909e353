"""Uploads stay in the workspace and within their size; loopback by default, a token elsewhere."""

from __future__ import annotations

import os

import pytest

from tests.unit.ui.conftest import workbench
from tunelab.errors import UserError
from tunelab.ui.security import token_for
from tunelab.ui.workspace import Workspace


def test_an_upload_lands_under_uploads(client, workspace):
    answer = client.put("/api/files/sub/reviews.csv", content=b"text,label\na,b\n")
    assert answer.status_code == 200
    assert answer.json() == {"path": "uploads/sub/reviews.csv", "bytes": 15}
    assert (workspace / "uploads" / "sub" / "reviews.csv").read_bytes() == b"text,label\na,b\n"
    assert [f["path"] for f in client.get("/api/files").json()] == ["uploads/sub/reviews.csv"]


@pytest.mark.parametrize("name", ["%2e%2e/escape.csv", "..%2fescape.csv", "a/..%2f..%2fescape.csv"])
def test_upload_names_cannot_leave_the_workspace(client, workspace, name):
    answer = client.put(f"/api/files/{name}", content=b"x")
    assert answer.status_code == 400
    assert answer.json()["field"] == "upload"
    assert "is not a path inside the workspace" in answer.json()["error"]
    assert not (workspace / "escape.csv").exists()
    assert not (workspace.parent / "escape.csv").exists()


def test_paths_refuse_absolute_names_dots_and_symlinks_out(tmp_path):
    ws = Workspace(tmp_path / "ws")
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (ws.root / "uploads" / "link.csv").symlink_to(outside)
    (ws.root / "uploads" / "folder").symlink_to(tmp_path, target_is_directory=True)
    for name in ["/etc/passwd", "../secret.txt", "uploads/../../secret.txt", "C:\\x.csv", ""]:
        with pytest.raises(UserError):
            ws.path(name)
    for name in ["uploads/link.csv", "uploads/folder/secret.txt"]:
        with pytest.raises(UserError, match="leads out of the workspace"):
            ws.path(name)
    assert ws.path("uploads/new.csv") == ws.root / "uploads" / "new.csv"


def test_an_upload_through_a_symlinked_folder_is_refused(client, workspace, tmp_path):
    (workspace / "uploads" / "out").symlink_to(tmp_path, target_is_directory=True)
    answer = client.put("/api/files/out/planted.csv", content=b"x")
    assert answer.status_code == 400
    assert not (tmp_path / "planted.csv").exists()


def test_uploads_over_the_limit_are_refused_and_leave_nothing(workspace):
    with workbench(workspace, max_upload_bytes=1000) as client:
        declared = client.put("/api/files/big.csv", content=b"x" * 1001)
        assert declared.status_code == 413
        assert declared.json()["error"].startswith("error: upload 'big.csv' is larger than the "
                                                   "limit of 0.000953674 MB")  # fmt: skip

        def chunks():  # no Content-Length: counted while it streams
            for _ in range(5):
                yield b"y" * 300

        streamed = client.put("/api/files/streamed.csv", content=chunks())
        assert streamed.status_code == 413
        assert client.put("/api/files/small.csv", content=b"z" * 1000).status_code == 200
    assert sorted(os.listdir(workspace / "uploads")) == ["small.csv"]  # no temporary files


def test_workspace_files_are_served_inside_only_and_inert(client, workspace, tmp_path):
    (workspace / "uploads" / "page.html").write_text("<script>alert(1)</script>")
    (tmp_path / "secret.txt").write_text("secret")
    served = client.get("/files/uploads/page.html")
    assert served.status_code == 200
    assert served.headers["content-security-policy"].startswith("sandbox")
    assert client.get("/files/%2e%2e/secret.txt").status_code == 400
    assert client.get("/files/uploads/missing.csv").status_code == 404


def test_loopback_needs_no_token_other_addresses_get_one():
    assert token_for("127.0.0.1", None) == (None, False)
    assert token_for("localhost", "chosen") == ("chosen", False)
    token, generated = token_for("0.0.0.0", None)
    assert generated and len(token) >= 30
    assert token_for("0.0.0.0", None)[0] != token  # random each time


def test_a_token_is_asked_for_and_compared(workspace):
    with workbench(workspace, token="s3cret", loopback_only=False) as client:
        refused = client.get("/api/info")
        assert refused.status_code == 401
        assert "needs its token" in refused.json()["error"]
        assert client.get("/api/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert (
            client.get("/api/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        )
        first = client.get("/?token=s3cret")  # the printed address sets a cookie for the pages
        assert first.status_code == 200
        assert "tunelab_ui_token=s3cret" in first.headers["set-cookie"]
        assert "HttpOnly" in first.headers["set-cookie"]
        assert client.get("/api/info").status_code == 200  # the cookie now


def test_loopback_server_answers_loopback_names_only(client):
    assert client.get("/api/info").status_code == 200
    assert client.get("/api/info", headers={"Host": "localhost:7860"}).status_code == 200
    rebound = client.get("/api/info", headers={"Host": "attacker.example:7860"})
    assert rebound.status_code == 403
    assert "127.0.0.1 or localhost only" in rebound.json()["error"]


def test_changes_need_the_pages_header(client):
    answer = client.put("/api/files/x.csv", content=b"x", headers={"X-Tunelab-UI": ""})
    assert answer.status_code == 403
    assert "from the workbench's own pages" in answer.json()["error"]


def test_pages_fetch_nothing_from_elsewhere(client):
    from tunelab.ui.app import STATIC

    page = client.get("/")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    for file in STATIC.iterdir():
        text = file.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text, file.name
        assert client.get(f"/static/{file.name}").status_code == 200
    for name in ("..%2fapp.py", ".hidden", "missing.js"):
        assert client.get(f"/static/{name}").status_code == 404
