"""The REST server: ``POST /predict``, ``GET /health``, ``GET /metadata`` over a trained model,
for sentence encoders OpenAI's ``POST /v1/embeddings`` and for causal models OpenAI's
``POST /v1/chat/completions`` (:mod:`tunelab.serving.chat_completions`). Image and audio models
take files on ``/predict``: multipart uploads or base64 in JSON (:mod:`tunelab.serving.uploads`).

Every task is served by the same code as ``tunelab predict``: the texts become a frame with
:func:`tunelab.api.text_frame`, ``task.forward`` runs the model (PyTorch, or ONNX Runtime
behind the same interface) and ``task.predictions`` writes the records; ``/v1/embeddings``
answers with the ``embedding`` of those same records, batched with ``/predict``'s requests.
"""

# no ``from __future__ import annotations``: FastAPI reads the endpoint signatures below at
# run time, and their types are imported inside create_app
import base64
import contextlib
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.api import load_trained, text_frame
from tunelab.errors import UserError
from tunelab.inference import resolve_prediction_precision
from tunelab.models.trained import model_folder
from tunelab.serving.batching import Item, MicroBatcher
from tunelab.serving.chat_completions import add_chat_completions_route
from tunelab.serving.model_folder import check_files_inside, require_extra
from tunelab.serving.onnx_model import load_onnx, onnx_folder
from tunelab.serving.schemas import (
    EmbeddingRequest,
    EmbeddingResponse,
    Metadata,
    Prediction,
    PredictRequest,
)
from tunelab.serving.uploads import CHECKS, read_prompt, read_uploads

log = logging.getLogger("tunelab")

API_KEY_ENV = "TUNELAB_API_KEY"
SETTINGS_ENV = "TUNELAB_SERVE_SETTINGS"  # create_app's arguments for uvicorn worker processes
BACKENDS = ("torch", "onnx")
FORWARD_BATCH = 64  # rows per forward pass, as tunelab predict
# Idle seconds before the server closes a kept-alive connection. uvicorn's 5 s default races
# with clients that reuse a connection just as it closes (a reset, seen under load); 75 s is
# above the idle timeout of common proxies and load balancers, so they close first.
KEEP_ALIVE_SECONDS = 75


def load_backend(
    model_dir: str | Path, backend: str, threads: int | None = None
) -> tuple[Any, Any, Any, int, Path]:
    """Model, tokenizer, task, token limit and the folder read, after the path checks.

    ``threads`` caps the CPU threads of one forward pass (PyTorch or ONNX Runtime); default:
    the library's own choice (all cores).

    Raises:
        UserError: for an unknown backend, a folder that is not a model, a file that leads
            outside the named folder, or a missing export or extra.
    """
    if backend not in BACKENDS:
        raise UserError(f"--backend {backend} is not one of {', '.join(BACKENDS)}")
    if backend == "onnx":
        folder = onnx_folder(model_dir)
        check_files_inside(model_dir, folder)
        return (*load_onnx(folder, threads=threads), folder)

    if threads:
        import torch

        torch.set_num_threads(threads)

    folder = model_folder(model_dir)
    check_files_inside(model_dir, folder)
    return (*load_trained(folder), folder)


def create_app(
    model_dir: str | Path,
    backend: str = "torch",
    api_key: str | None = None,
    max_texts: int = 64,
    max_chars: int = 10000,
    batch_wait_ms: float = 5,
    max_batch: int = 64,
    threads: int | None = None,
    max_file_bytes: int = 10 * 2**20,
    precision: str = "fp32",
) -> Any:
    """A FastAPI app serving the model in ``model_dir`` (a run folder or its ``model/``).

    Args:
        backend: ``torch`` (the saved model) or ``onnx`` (the export of ``tunelab export``).
        api_key: required in ``Authorization: Bearer <key>`` or ``X-API-Key`` on ``/predict``
            and ``/metadata``; default: the ``TUNELAB_API_KEY`` environment variable, if set.
        max_texts: texts per request; more answer 413.
        max_chars: characters per text; longer texts answer 413.
        batch_wait_ms: how long the batcher waits for more requests to join a batch.
        max_batch: texts per batch the batcher aims for.
        threads: CPU threads per forward pass (default: all cores); fewer can be faster on
            a machine other processes share.
        max_file_bytes: bytes per uploaded file (image and audio models); larger files answer 413.
        precision: the torch backend's, as ``tunelab predict`` reads it (``fp32``, ``bf16``,
            ``checked``, ``auto``); ``checked`` needs more rows than a micro-batch holds to
            pay, so under it a server runs fp32: ``bf16`` is the fast choice for serving.

    Raises:
        UserError: see :func:`load_backend`, or a missing ``serve`` extra.
    """
    require_extra("serve")
    from fastapi import FastAPI

    precision = _served_precision(backend, precision)
    model, tokenizer, task, max_length, folder = load_backend(model_dir, backend, threads)
    files = task.input_kind != "text"  # requests carry the files themselves, never paths
    if files and task.input_kind not in CHECKS:
        raise UserError(
            f"{model_dir} holds a {task.name} model, whose inputs are {task.input_kind} files; "
            "tunelab serve does not take those yet: use tunelab predict for this model"
        )
    api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
    infer = _inference(task, model, tokenizer, max_length, precision)
    batcher = MicroBatcher(infer, max_batch, batch_wait_ms)
    # the width of the vectors, measured once: pooling or dense modules may change it, and an
    # ONNX graph leaves it symbolic
    dimensions = len(infer([("dimensions", None)])[0]["embedding"]) if task.embeds else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await batcher.close()

    app = FastAPI(
        title="tunelab model server",
        description=f"A {task.name} model fine-tuned with tunelab ({backend} backend).",
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    check_key = _key_check(api_key)

    body_limit = max_texts * (
        (4 * max_file_bytes // 3 + 1024) if files else 2 * (4 * max_chars + 16)
    )
    _answer_errors_in_one_sentence(app, body_limit=body_limit + 4096)
    described = dict(
        task=task.name, labels=list(task.labels) or None, problem_type=task.problem_type,
        text_pair=bool(task.text_pair_column), max_length=max_length, backend=backend,
        precision=precision, dimensions=dimensions, max_texts=max_texts, max_chars=max_chars,
        inputs=task.input_kind, max_file_bytes=max_file_bytes if files else None,
    )  # fmt: skip
    _add_health_and_metadata_routes(app, check_key, folder / "README.md", described)

    if files:
        _add_files_route(app, task, batcher, check_key, max_texts, max_file_bytes)
        return app
    _add_predict_route(app, batcher, check_key, bool(task.text_pair_column), max_texts, max_chars)
    _add_embeddings_route(
        app, task, tokenizer, batcher, check_key, max_length, (max_texts, max_chars),
        dimensions, _served_name(model_dir),
    )  # fmt: skip
    add_chat_completions_route(
        app, task, model, tokenizer, check_key, max_length, _served_name(model_dir)
    )
    return app


def _served_precision(backend: str, precision: str) -> str:
    """The precision the backend serves in: ``precision`` resolved for the torch backend;
    an exported graph runs as exported, so another backend takes fp32 only."""
    if backend != "torch" and precision != "fp32":
        raise UserError(
            f"--precision {precision} is for the torch backend; the {backend} backend runs "
            "its exported graph as exported: leave --precision out"
        )
    return resolve_prediction_precision(precision)


def _add_health_and_metadata_routes(
    app: Any, check_key: Any, card: Path, described: dict[str, Any]
) -> None:
    """``/health`` (no key) and ``/metadata``: ``described`` plus the model card, read when
    asked (the folder's ``README.md``, if any)."""
    from fastapi import Depends

    @app.get("/health", summary="Liveness check (no API key needed)")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata", response_model=Metadata, dependencies=[Depends(check_key)])
    async def metadata() -> Metadata:
        model_card = card.read_text(encoding="utf-8") if card.is_file() else None
        return Metadata(model_card=model_card, **described)


def _add_predict_route(
    app: Any, batcher: Any, check_key: Any, pair_model: bool, max_texts: int, max_chars: int
) -> None:
    """``/predict`` for text models: one record per text, as ``tunelab predict`` gives."""
    from fastapi import Depends

    @app.post(
        "/predict",
        response_model=list[Prediction],
        response_model_exclude_unset=True,
        dependencies=[Depends(check_key)],
        summary="Predict for one text or a batch; one record per text, as tunelab predict",
        responses={
            401: {"description": "API key missing or wrong"},
            413: {"description": "too many texts, or a text too long"},
            422: {"description": "malformed body"},
        },
    )
    async def predict(request: PredictRequest) -> list[dict[str, Any]]:
        items = _items(request, pair_model, max_texts, max_chars)
        return await batcher.submit(items)


def _inference(
    task: Any, model: Any, tokenizer: Any, max_length: int, precision: str = "fp32"
) -> Any:
    """The batch function the micro-batcher calls: items (a text or file, and its pair or a
    vision-language model's prompt) to prediction records."""
    pair_model = bool(task.text_pair_column)
    asks = getattr(task, "question_frame", None)  # a vision-language model: image + prompt

    def infer(items: list[Item]) -> list[dict[str, Any]]:
        if asks is not None:
            frame = asks([file for file, _ in items], [str(prompt) for _, prompt in items],
                         "request")  # fmt: skip
        else:
            pairs = [str(pair) for _, pair in items] if pair_model else None
            frame = text_frame(task, [text for text, _ in items], pairs, source="request")
        outputs = task.forward(model, tokenizer, frame, max_length, FORWARD_BATCH, precision)
        return task.predictions(outputs, frame)

    return infer


# the two bodies ``POST /predict`` takes for file models, for the OpenAPI page (FastAPI cannot
# infer them: the route reads the request itself, to check each file as it streams)
FILES_REQUEST_BODY = {
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    "prompt": {"type": "string"},
                },
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "base64"},
                    "files": {"type": "array", "items": {"type": "string", "format": "base64"}},
                    "names": {"type": "array", "items": {"type": "string"}},
                    "prompt": {"type": "string"},
                },
            }
        },
    }
}


def _add_files_route(
    app: Any, task: Any, batcher: MicroBatcher, check_key: Any, max_files: int,
    max_file_bytes: int,
) -> None:  # fmt: skip
    """``POST /predict`` for models that read files: each file is checked on its own before
    it joins a batch; the records name the files as sent (``path``). A vision-language model
    also takes the question about the images (``prompt``, a form field or JSON key)."""
    from fastapi import Depends, HTTPException, Request

    check = CHECKS[task.input_kind]
    kind = task.input_kind
    asks_questions = hasattr(task, "question_frame")  # each image comes with a prompt

    @app.post(
        "/predict",
        response_model=list[Prediction],
        response_model_exclude_unset=True,
        dependencies=[Depends(check_key)],
        summary=f"Predict for {kind} files: multipart uploads, or JSON with base64 file(s)",
        responses={
            401: {"description": "API key missing or wrong"},
            413: {"description": "too many files, or a file too large"},
            415: {"description": "neither multipart/form-data nor JSON"},
            422: {"description": "malformed body, or a file that is no readable " + kind},
        },
        openapi_extra={"requestBody": FILES_REQUEST_BODY},
    )
    async def predict_files(request: Request) -> list[dict[str, Any]]:
        uploads = await read_uploads(request, max_files, max_file_bytes)
        for name, data in uploads:
            problem = check(data)
            if problem:
                raise HTTPException(problem[0], f"file {name} {problem[1]}")
        prompt = await read_prompt(request) if asks_questions else None
        records = await batcher.submit([(data, prompt) for _, data in uploads])
        named = zip(records, uploads, strict=True)
        return [{**record, "path": name} for record, (name, _) in named]


def _key_check(api_key: str | None) -> Any:
    """The FastAPI dependency that asks for ``api_key`` (lets everything pass without one)."""
    from fastapi import Depends, HTTPException
    from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

    bearer = HTTPBearer(auto_error=False)
    header_key = APIKeyHeader(name="X-API-Key", auto_error=False)

    def check_key(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
        key: str | None = Depends(header_key),
    ) -> None:
        if api_key is None:
            return
        given = credentials.credentials if credentials is not None else key
        if given is None or not hmac.compare_digest(given.encode(), api_key.encode()):
            raise HTTPException(
                401,
                "missing or wrong API key; send it as Authorization: Bearer <key> or X-API-Key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check_key


def _add_embeddings_route(
    app: Any, task: Any, tokenizer: Any, batcher: MicroBatcher, check_key: Any, max_length: int,
    limits: tuple[int, int], dimensions: int | None, served_name: str,
) -> None:  # fmt: skip
    """``POST /v1/embeddings``, OpenAI's shape, through the same batcher and key as /predict;
    ``limits`` are (texts per request, characters per text)."""
    from fastapi import Depends, HTTPException

    max_texts, max_chars = limits

    @app.post(
        "/v1/embeddings",
        response_model=EmbeddingResponse,
        dependencies=[Depends(check_key)],
        summary="OpenAI-compatible embeddings (sentence-embedding models)",
        responses={
            400: {"description": "the served model does not embed texts"},
            401: {"description": "API key missing or wrong"},
            413: {"description": "too many texts, or a text too long"},
            422: {"description": "malformed body, or dimensions other than the model's"},
        },
    )
    async def embeddings(request: EmbeddingRequest) -> dict[str, Any]:
        if not task.embeds:
            raise HTTPException(
                400,
                f"this server holds a {task.name} model, which does not embed texts; "
                "POST /predict instead",
            )
        if request.dimensions is not None and request.dimensions != dimensions:
            raise HTTPException(
                422,
                f"dimensions={request.dimensions}: this model writes vectors of {dimensions} "
                f"numbers and does not shorten them; send dimensions={dimensions} or leave it out",
            )
        texts = [request.input] if isinstance(request.input, str) else list(request.input)
        _check_texts(texts, max_texts, max_chars, "input")
        records = await batcher.submit([(text, None) for text in texts])
        tokens = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        used = sum(len(ids) for ids in tokens)
        return {
            "object": "list",
            "data": [
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": _encoded(record["embedding"], request.encoding_format),
                }
                for i, record in enumerate(records)
            ],
            "model": served_name,
            "usage": {"prompt_tokens": used, "total_tokens": used},
        }


def _served_name(model_dir: str | Path) -> str:
    """The name ``/v1/embeddings`` answers with: the run's folder name (not ``model``/``onnx``)."""
    path = Path(model_dir).resolve()
    while path.name in ("model", "onnx") and path.parent != path:
        path = path.parent
    return path.name or "tunelab"


def _encoded(vector: list[float], encoding_format: str) -> list[float] | str:
    """A vector as OpenAI sends it: numbers, or base64 of little-endian float32 bytes."""
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector


def _answer_errors_in_one_sentence(app: Any, body_limit: int) -> None:
    """Every error as ``{"error": sentence}`` with its status (under ``/v1/``, OpenAI's
    ``{"error": {"message": sentence, "type": ...}}``, which its clients read); bodies over
    ``body_limit`` bytes are refused (413) before they are read and parsed."""
    from fastapi import HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    def answer(request: Request, sentence: str, status: int, headers: Any = None) -> JSONResponse:
        body: dict[str, Any] = {"error": sentence}
        if request.url.path.startswith("/v1/"):
            kind = "invalid_request_error" if status < 500 else "server_error"
            body = {"error": {"message": sentence, "type": kind, "param": None, "code": None}}
        return JSONResponse(body, status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return answer(request, exc.detail, exc.status_code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        return answer(request, _validation_sentence(exc.errors()), 422)

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError) -> JSONResponse:
        return answer(request, str(exc), 422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("prediction failed")
        return answer(request, f"internal error: {type(exc).__name__}: {exc}", 500)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > body_limit:
            sentence = f"request body of {length} bytes is over the limit of {body_limit}"
            return answer(request, sentence, 413)
        return await call_next(request)


def _items(request: Any, pair_model: bool, max_texts: int, max_chars: int) -> list[Item]:
    """The request's texts (and pairs), checked against the model and the limits."""
    from fastapi import HTTPException

    if (request.text is None) == (request.texts is None):
        raise HTTPException(422, "give either text (one string) or texts (a list), not both")
    texts = [request.text] if request.text is not None else list(request.texts)
    single_pair = request.text_pair is not None
    if request.texts is not None and single_pair:
        raise HTTPException(422, "with texts, give the second texts as text_pairs (a list)")
    pairs = [request.text_pair] if single_pair else request.text_pairs
    _check_texts(texts, max_texts, max_chars, "texts")
    if pair_model and (pairs is None or len(pairs) != len(texts)):
        raise HTTPException(
            422, "this model classifies text pairs; give text_pair (or text_pairs, one per text)"
        )
    if not pair_model and pairs is not None:
        raise HTTPException(422, "this model reads single texts; leave out text_pair(s)")
    if pairs:  # as many as texts, checked above
        _check_texts(pairs, max_texts, max_chars, "text_pairs")
    return [(text, pairs[i] if pairs else None) for i, text in enumerate(texts)]


def _check_texts(texts: list[str], max_texts: int, max_chars: int, field: str) -> None:
    """Refuse an empty request (422), and too many or too long texts (413)."""
    from fastapi import HTTPException

    if not texts:
        raise HTTPException(422, f"{field} is empty; give at least one text")
    if len(texts) > max_texts:
        raise HTTPException(
            413, f"{len(texts)} texts in one request; the server takes at most {max_texts}"
        )
    for i, text in enumerate(texts):
        if len(text) > max_chars:
            raise HTTPException(
                413,
                f"text {i} has {len(text)} characters; the server takes at most {max_chars} "
                "per text",
            )


def _validation_sentence(errors: Any) -> str:
    """One sentence for FastAPI's list of validation errors: the first one, with its place."""
    first = next(iter(errors), {})
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON"
    place = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = first.get("msg", "invalid request")
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{place or 'request body'}: {message}{more}"


def app_from_environment() -> Any:
    """The app for uvicorn worker processes: ``create_app`` with the settings in the env."""
    return create_app(**json.loads(os.environ[SETTINGS_ENV]))


def serve(
    model_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
    **settings: Any,
) -> None:
    """Run the server with uvicorn until interrupted (``settings`` go to :func:`create_app`).

    Raises:
        UserError: for any problem :func:`create_app` finds, before the port is bound.
    """
    require_extra("serve")
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1") and not (
        settings.get("api_key") or os.environ.get(API_KEY_ENV)
    ):
        log.warning("serving on %s without an API key: anyone who can reach it can use it", host)
    if workers == 1:
        app = create_app(model_dir, **settings)
        uvicorn.run(
            app, host=host, port=port, log_level=log_level, timeout_keep_alive=KEEP_ALIVE_SECONDS
        )
        return
    load_backend(model_dir, settings.get("backend", "torch"))  # fail here, not in each worker
    os.environ[SETTINGS_ENV] = json.dumps({"model_dir": str(model_dir), **settings})
    uvicorn.run(
        "tunelab.serving.server:app_from_environment", factory=True, host=host, port=port,
        workers=workers, log_level=log_level, timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )  # fmt: skip
