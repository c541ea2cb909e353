"""The workbench's web app: the pages (``static/``) and the JSON API they call.

Every route is a thin layer over a function the CLI also calls (see ``data_view``, ``form``,
``jobs``, ``trying``, :mod:`tunelab.runs`); an error comes back as ``{"error": the line the
CLI prints, "field": the config key it is about}``, which the page shows next to that field.
Training runs in worker processes (:mod:`tunelab.ui.jobs`), so the pages stay responsive.
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations, and the
# ones of its own types (Request) are imported inside create_app, with the optional extra
import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tunelab.errors import UserError, one_line
from tunelab.runs import compare_runs
from tunelab.ui import data_view, trying, views
from tunelab.ui.form import WORKSPACE_PATHS, equivalent, field_of, fields, form_tree
from tunelab.ui.form import overrides_from_form as form_overrides
from tunelab.ui.jobs import ENDED, JobStore, Scheduler
from tunelab.ui.labelling import Labelling
from tunelab.ui.security import FILE_POLICY, PAGE_POLICY, check_request
from tunelab.ui.workspace import UploadTooLarge, Workspace

log = logging.getLogger("tunelab")
STATIC = Path(__file__).parent / "static"
EVENT_POLL_SECONDS = 0.4
KEEP_ALIVE_SECONDS = 15.0


class PageError(Exception):
    """An error the page shows next to ``field`` (a config key, or a control of the page)."""

    def __init__(self, message: str, field: str | None, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.field, self.status = message, field, status


class Values(BaseModel):
    """The Train form's values: dotted config key -> what its input holds."""

    values: dict[str, Any] = Field(default_factory=dict)
    overwrite: bool = False


class DataRequest(BaseModel):
    path: str
    task: str = "text-classification"
    format: str = "auto"
    encoding: str | None = None
    mapping: dict[str, str | None] | None = None


class DoctorRequest(BaseModel):
    path: str
    task: str = "text-classification"
    text_column: str = "text"
    label_column: str | None = "label"
    encoding: str | None = None
    fix: bool = False


class RecommendRequest(BaseModel):
    task: str = "text-classification"
    path: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    language: str | None = None
    examples: int | None = None
    classes: int | None = None


class TryRequest(BaseModel):
    run: str
    texts: list[str] = Field(default_factory=list)
    path: str | None = None
    text_column: str | None = None
    messages: list[dict[str, str]] = Field(default_factory=list)


class LabelRequest(BaseModel):
    """The Label page's data file, label set (comma-separated, as ``--labels``, or the entity
    types with ``entities``) and answer (a label, or entity spans [start, end, type])."""

    path: str
    labels: str
    annotator: str = "me"
    item: str = ""
    label: str = ""
    entities: bool = False
    spans: list[tuple[int, int, str]] = Field(default_factory=list)
    note: str = ""  # goes into the journal with the label or skip
    holdout: int = 0  # random texts held out to measure the model (--holdout)
    target: float = 0.9  # the score the learning-curve estimate aims at (--target)
    double_rate: float = 0.0  # share of texts a second annotator labels too (--double-rate)
    later: list[str] = Field(default_factory=list)  # review: disagreements put off this pass


def create_app(
    workspace: Path,
    token: str | None = None,
    loopback_only: bool = True,
    max_upload_bytes: int = 200 * 2**20,
    max_running: int = 1,
    run_jobs: bool = True,
) -> Any:
    """The workbench app for ``workspace``.

    Args:
        workspace: the folder the pages read and write (created if missing).
        token: the token every request must carry; ``None``: none (loopback only).
        loopback_only: answer only requests addressed to a loopback name (bound to
            127.0.0.1).
        max_upload_bytes: the largest file one upload may hold.
        max_running: training jobs at once; more are queued.
        run_jobs: start queued jobs (False in tests that only look at the API).
    """
    from fastapi import FastAPI

    ws = Workspace(workspace, max_upload_bytes)
    store = JobStore(ws.state / "jobs.db")
    scheduler = Scheduler(store, ws.root, max_running)
    specs = fields(_form())
    keys = [*specs, "run", "input", "upload"]

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        if run_jobs:
            scheduler.start()
        # read the runs once now: the first visit of the Runs page then finds them parsed
        threading.Thread(target=views.read_runs_quietly, args=(ws,), daemon=True).start()
        yield
        scheduler.stop()

    app = FastAPI(title="tunelab workbench", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.workspace, app.state.store, app.state.scheduler = ws, store, scheduler
    add_guards(app, ws, keys, token, loopback_only)
    about = _about(ws, keys)
    add_page_routes(app, ws, scheduler)
    add_file_routes(app, ws, about)
    add_data_routes(app, ws, about)
    add_job_routes(app, ws, store, scheduler, specs, about, run_jobs)
    add_run_routes(app, ws, store, about)
    add_try_routes(app, ws, about)
    add_label_routes(app, Labelling(ws), ws)
    return app


def add_guards(
    app: Any, ws: Workspace, keys: list[str], token: str | None, loopback_only: bool
) -> None:
    """The request guard (token, loopback, security headers) and the error answers: one
    sentence and the form field it is about."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        refused = check_request(
            request.method, request.url.path, request.headers, request.cookies,
            request.query_params, token, loopback_only,
        )  # fmt: skip
        if refused is not None:
            return JSONResponse({"error": refused[1], "field": None}, status_code=refused[0])
        response = await call_next(request)
        if token is not None and request.query_params.get("token"):
            from tunelab.ui.security import COOKIE

            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        return response

    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> Any:
        return JSONResponse({"error": exc.message, "field": exc.field}, status_code=exc.status)

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError) -> Any:
        message = ws.shorten(one_line(exc))
        status = 413 if isinstance(exc, UploadTooLarge) else 400
        return JSONResponse({"error": message, "field": field_of(message, keys)}, status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Any:
        first = exc.errors()[0] if exc.errors() else {}
        place = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"error: {place or 'request'}: {first.get('msg', 'invalid request')}"
        return JSONResponse({"error": message, "field": None}, status_code=422)


def _about(ws: Workspace, keys: list[str]) -> Any:
    """A context manager factory: user errors inside are about a form field."""

    @contextlib.contextmanager
    def about(field: str | None) -> Iterator[None]:
        """User errors inside are about ``field`` unless their sentence names another key."""
        try:
            yield
        except UserError as exc:
            message = ws.shorten(one_line(exc))
            status = 413 if isinstance(exc, UploadTooLarge) else 400
            raise PageError(message, field_of(message, keys) or field, status) from None

    return about


def add_page_routes(app: Any, ws: Workspace, scheduler: Scheduler) -> None:
    """The page itself, its static files and what it needs to know first."""
    from fastapi.responses import FileResponse

    @app.get("/", include_in_schema=False)
    def index() -> Any:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Any:
        file = STATIC / name
        if "/" in name or name.startswith(".") or not file.is_file():
            raise PageError(f"error: no such page file: {name}", None, 404)
        return FileResponse(file, headers={"Cache-Control": "no-cache"})

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        from tunelab.data.examples import EXAMPLES
        from tunelab.tasks import TASKS, doctor_checks

        checks = doctor_checks()
        return {
            "workspace": str(ws.root),
            "tasks": list(TASKS),
            "doctor_tasks": list(checks),
            "doctor_fixes": [task for task, kind in checks.items() if kind in ("texts", "tags")],
            "examples": list(EXAMPLES),
            "max_upload_bytes": ws.max_upload_bytes,
            "max_running": scheduler.max_running,
        }


def add_file_routes(app: Any, ws: Workspace, about: Any) -> None:
    """Workspace files: list, upload, read, and the example data sets."""
    from fastapi import Request
    from fastapi.responses import FileResponse

    @app.get("/api/files")
    def list_files() -> list[dict[str, Any]]:
        return ws.files()

    @app.put("/api/files/{name:path}")
    async def upload(name: str, request: Request) -> dict[str, Any]:
        declared = int(request.headers.get("content-length") or 0)
        with about("upload"):
            if declared > ws.max_upload_bytes:  # refused before a byte is read
                limit = ws.max_upload_bytes / 2**20
                raise UploadTooLarge(
                    f"upload '{name}' is larger than the limit of {limit:g} MB; start tunelab "
                    f"ui with a higher --max-upload-mb, or copy the file into {ws.root}/uploads"
                )
            saved = await ws.save_upload(name, request.stream())
        return {"path": ws.relative(saved), "bytes": saved.stat().st_size}

    @app.get("/files/{name:path}", include_in_schema=False)
    def workspace_file(name: str, download: bool = False) -> Any:
        with about("path"):
            file = ws.path(name)
        if not file.is_file():
            raise PageError(f"error: {name} is not a file in the workspace", "path", 404)
        headers = {"Content-Security-Policy": FILE_POLICY, "Cache-Control": "no-cache"}
        return FileResponse(file, headers=headers,
                            filename=file.name if download else None)  # fmt: skip

    @app.post("/api/examples/{name}")
    def example(name: str) -> dict[str, Any]:
        from tunelab.data.examples import build_example

        out = ws.root / "data" / name
        with about("example"):
            summary = build_example(name, out)
        command = f"tunelab data example {name} --out {ws.relative(out)}"
        return {"folder": ws.relative(out), "summary": summary, "command": command}


def add_data_routes(app: Any, ws: Workspace, about: Any) -> None:
    """The Data page: preview, the doctor and model suggestions."""

    @app.post("/api/data/preview")
    def preview(request: DataRequest) -> dict[str, Any]:
        with about("data.train"):
            return data_view.preview(ws, request.path, request.task, request.format,
                                     request.encoding, request.mapping)  # fmt: skip

    @app.post("/api/data/doctor")
    def doctor(request: DoctorRequest) -> dict[str, Any]:
        with about("data.train"):
            return data_view.run_doctor(
                ws, request.path, request.task, request.text_column, request.label_column,
                request.fix, request.encoding,
            )  # fmt: skip

    @app.post("/api/recommend")
    def recommend(request: RecommendRequest) -> dict[str, Any]:
        with about("model.name"):
            return data_view.suggest_models(
                ws, request.task, request.path, request.text_column, request.label_column,
                request.language, request.examples, request.classes,
            )  # fmt: skip


def add_job_routes(
    app: Any, ws: Workspace, store: JobStore, scheduler: Scheduler, specs: Any, about: Any,
    run_jobs: bool,
) -> None:  # fmt: skip
    """The Train form (its YAML and command as the user types) and the training jobs: start,
    list, cancel, resume, log and live events."""
    from fastapi import Request
    from fastapi.responses import StreamingResponse

    @app.get("/api/form")
    def form() -> list[dict[str, Any]]:
        return _form()

    @app.post("/api/config")
    def config(values: Values) -> dict[str, Any]:
        """The form's YAML and command, or the first error (live, as the user types): a
        check that found a problem has still answered, so this is no HTTP error."""
        try:
            with about(None):
                found = equivalent(form_overrides(values.values, specs))
                for key in WORKSPACE_PATHS:
                    value = views.dotted_value(found["config"], key)
                    if value is not None:
                        ws.path(str(value), key)
        except PageError as exc:
            return {"ok": False, "error": exc.message, "field": exc.field}
        return {"ok": True, **{k: v for k, v in found.items() if k != "config"}}

    @app.post("/api/jobs")
    def start_job(values: Values) -> dict[str, Any]:
        with about(None):
            found = equivalent(form_overrides(values.values, specs))
            views.preflight(ws, found["config"], values.overwrite)
        command = found["command"] + (" --overwrite" if values.overwrite else "")
        output = ws.relative(ws.path(str(found["config"].output), "output"))
        job = store.add(output, found["overrides"], command, values.overwrite)
        if run_jobs:
            scheduler.tick()
        return views.job_view(ws, store.get(job))

    @app.get("/api/jobs")
    def jobs() -> list[dict[str, Any]]:
        return [views.job_view(ws, job) for job in store.all()]

    @app.get("/api/jobs/{job}")
    def job_state(job: int) -> dict[str, Any]:
        return views.job_view(ws, _existing(store, job))

    @app.post("/api/jobs/{job}/cancel")
    def cancel(job: int) -> dict[str, Any]:
        _existing(store, job)
        return views.job_view(ws, scheduler.cancel(job))

    @app.post("/api/jobs/{job}/resume")
    def resume(job: int) -> dict[str, Any]:
        found = _existing(store, job)
        if found["status"] not in ("failed", "cancelled", "interrupted"):
            raise PageError(f"error: job {job} is {found['status']}; only a cancelled, "
                            "interrupted or failed job can be resumed", None, 409)  # fmt: skip
        resumed = scheduler.resume(job)
        if run_jobs:
            scheduler.tick()
        return views.job_view(ws, resumed)

    @app.get("/api/jobs/{job}/log")
    def job_log(job: int, lines: int = 200) -> dict[str, Any]:
        _existing(store, job)
        return {"lines": views.log_tail(scheduler.log_path(job), min(max(lines, 1), 2000))}

    @app.get("/api/jobs/{job}/events")
    async def events(job: int, request: Request, after: int = 0) -> Any:
        """Server-sent events: the job's progress and logs from ``after`` (or the browser's
        Last-Event-ID after a reconnect), then as they come; ``end`` once the job ended."""
        _existing(store, job)
        last = int(request.headers.get("last-event-id") or after)

        async def stream() -> AsyncIterator[str]:
            nonlocal last
            quiet = time.monotonic()
            yield "retry: 2000\n\n"
            while True:
                new = await asyncio.to_thread(store.events, job, last)
                for event in new:
                    last = event["seq"]
                    data = json.dumps({**event["data"], "time": event["time"]})
                    yield f"id: {last}\nevent: {event['kind']}\ndata: {data}\n\n"
                state = await asyncio.to_thread(store.get, job)
                if state is not None and state["status"] in ENDED and not new:
                    yield f"event: done\ndata: {json.dumps(views.job_view(ws, state))}\n\n"
                    return
                if new:
                    quiet = time.monotonic()
                elif time.monotonic() - quiet > KEEP_ALIVE_SECONDS:
                    quiet = time.monotonic()
                    yield ": still here\n\n"
                await asyncio.sleep(EVENT_POLL_SECONDS)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})  # fmt: skip


def add_run_routes(app: Any, ws: Workspace, store: JobStore, about: Any) -> None:
    """The Runs page: the list and the comparison of runs."""
    from fastapi import Query

    @app.get("/api/runs")
    def runs() -> list[dict[str, Any]]:
        return views.runs_with_jobs(ws, store)

    @app.get("/api/runs/compare")
    def compare(run: list[str] = Query()) -> dict[str, Any]:  # noqa: B008
        with about("run"):
            folders = [ws.path(name, "run") for name in run]
            result = compare_runs(folders)
        result["paths"] = [ws.relative(Path(p)) for p in result["paths"]]
        result["curves"] = [views.curves(folder) for folder in folders]
        result["command"] = "tunelab runs compare " + " ".join(result["paths"])
        return result


def add_try_routes(app: Any, ws: Workspace, about: Any) -> None:
    """The Try page: a trained model's facts, predictions, explanations, chat and batches."""

    @app.get("/api/try/model")
    def model(run: str) -> dict[str, Any]:
        with about("run"):
            return trying.model_facts(ws, run)

    @app.post("/api/try/predict")
    def try_predict(request: TryRequest) -> dict[str, Any]:
        with about("texts"):
            return trying.predict_texts(ws, request.run, request.texts)

    @app.post("/api/try/explain")
    def try_explain(request: TryRequest) -> dict[str, Any]:
        with about("texts"):
            return trying.explain_texts(ws, request.run, request.texts)

    @app.post("/api/try/chat")
    def try_chat(request: TryRequest) -> dict[str, Any]:
        with about("messages"):
            return trying.chat_answer(ws, request.run, request.messages)

    @app.post("/api/try/batch")
    def try_batch(request: TryRequest) -> dict[str, Any]:
        with about("input"):
            return trying.predict_file(ws, request.run, request.path or "", request.text_column)


def add_label_routes(app: Any, labelling: Labelling, ws: Workspace) -> None:
    """The Label page's routes: state, label, skip and undo, the held-out progress while the
    model retrains, and the review of disagreements (review, settle), each through
    ``labelling``."""

    @contextlib.contextmanager
    def labelling_errors() -> Iterator[None]:
        """The labelling code's user errors name the Label page's control they are about."""
        try:
            yield
        except UserError as exc:
            message = ws.shorten(one_line(exc))
            raise PageError(message, getattr(exc, "field", None) or "path") from None

    @app.post("/api/label/state")
    def label_state(request: LabelRequest) -> dict[str, Any]:
        with labelling_errors():
            return labelling.state(request.path, request.labels, request.annotator or "me",
                                   request.entities, request.holdout, request.target,
                                   request.double_rate)  # fmt: skip

    @app.post("/api/label/label")
    def label_text(request: LabelRequest) -> dict[str, Any]:
        with labelling_errors():
            answer = request.spans if request.entities else request.label
            return labelling.label(request.path, request.labels, request.annotator or "me",
                                   request.item, answer, request.entities, request.holdout,
                                   request.target, request.note, request.double_rate)  # fmt: skip

    @app.post("/api/label/skip")
    def label_skip(request: LabelRequest) -> dict[str, Any]:
        with labelling_errors():
            return labelling.skip(request.path, request.labels, request.annotator or "me",
                                  request.item, request.entities, request.holdout,
                                  request.target, request.note, request.double_rate)  # fmt: skip

    @app.post("/api/label/undo")
    def label_undo(request: LabelRequest) -> dict[str, Any]:
        with labelling_errors():
            return labelling.undo(request.path, request.labels, request.annotator or "me",
                                  request.entities, request.holdout, request.target,
                                  request.double_rate)  # fmt: skip

    @app.post("/api/label/progress")
    def label_progress(request: LabelRequest) -> dict[str, Any]:
        with labelling_errors():
            return labelling.progress(request.path, request.labels, request.entities,
                                      request.holdout, request.target,
                                      request.double_rate)  # fmt: skip

    @app.post("/api/label/review")
    def label_review(request: LabelRequest) -> dict[str, Any]:
        with labelling_errors():
            return labelling.review(request.path, request.labels, request.annotator or "reviewer",
                                    request.later, request.entities, request.holdout,
                                    request.double_rate)  # fmt: skip

    @app.post("/api/label/settle")
    def label_settle(request: LabelRequest) -> dict[str, Any]:
        with labelling_errors():
            return labelling.settle(request.path, request.labels, request.annotator or "reviewer",
                                    request.item, request.label, request.later, request.holdout,
                                    request.double_rate)  # fmt: skip


def _form() -> list[dict[str, Any]]:
    from tunelab.tasks import TASKS

    return form_tree(choices={"task": list(TASKS)})


def _existing(store: JobStore, job: int) -> dict[str, Any]:
    found = store.get(job)
    if found is None:
        raise PageError(f"error: there is no job {job} in this workspace", None, 404)
    return found


def serve(
    workspace: Path,
    host: str = "127.0.0.1",
    port: int = 7860,
    token: str | None = None,
    max_upload_mb: float = 200.0,
    max_running: int = 1,
    echo: Any = print,
) -> None:
    """Run the workbench with uvicorn until interrupted.

    Raises:
        UserError: for a missing ``serve`` extra or a bad setting, before the port is bound.
    """
    from tunelab.serving.model_folder import require_extra
    from tunelab.ui.security import is_loopback, token_for

    require_extra("serve")
    import uvicorn

    if max_upload_mb <= 0:
        raise UserError(f"--max-upload-mb {max_upload_mb} must be above 0")
    if max_running < 1:
        raise UserError(f"--jobs {max_running} must be 1 or more")
    token, generated = token_for(host, token)
    app = create_app(workspace, token, is_loopback(host), int(max_upload_mb * 2**20), max_running)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    address = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    echo(f"tunelab workbench for {Path(workspace).resolve()}: open {address}")
    if generated:
        echo("(a token was generated for this address; pass --token to choose one)")
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)
