"""OpenAI's ``POST /v1/chat/completions`` for causal models, so the ``openai`` client (and the
tools built on it) talk to a tunelab run unchanged.

The chat is rendered with the model's own chat template (the same :func:`prompt_ids` as
``tunelab predict`` and ``tunelab chat``), decoding stops at the tokens the saved
``generation_config`` names (EOS and the template's end-of-turn token), and a stop sequence
ends the answer where it first appears (it is not part of the answer, as in OpenAI's API).
Streaming sends server-sent events, ``data: {chunk}`` lines ending with ``data: [DONE]``, the
text held back while it could still be the start of a stop sequence.

A request with ``tools`` lists them in the system turn and reads the answer's calls back as
``tool_calls`` (finish reason ``tool_calls``), in the Hermes format that tunelab trains tool
data in (:mod:`tunelab.data.tool_calls`); ``tool`` messages hand results back.
"""

# no ``from __future__ import annotations``: FastAPI reads the endpoint signature at run time
import asyncio
import json
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tunelab.data.chat_formats import joined_tool_turns, tool_turn
from tunelab.data.tool_calls import CALL_OPEN, parse_calls, read_tools, with_tools
from tunelab.errors import UserError
from tunelab.tasks.causal_encoding import prompt_ids


class ChatMessage(BaseModel):
    """One turn; ``content`` may be OpenAI's list of text parts; an assistant turn may hold
    the ``tool_calls`` it made, and a ``tool`` turn a call's result."""

    model_config = ConfigDict(extra="ignore")  # name, tool_call_id, ...: accepted, not used
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(part.get("text", "")) for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    """OpenAI's chat-completions request, the fields a local causal model can honour."""

    model_config = ConfigDict(
        extra="ignore",  # OpenAI clients send fields (user, metadata, store, ...) we don't use
        json_schema_extra={
            "examples": [{"messages": [{"role": "user", "content": "你好"}], "max_tokens": 32}]
        },
    )
    messages: list[ChatMessage] = Field(min_length=1, description="the conversation so far")
    model: str | None = Field(None, description="any name; the answer names the run")
    max_tokens: int | None = Field(None, ge=1, description="new tokens at most")
    max_completion_tokens: int | None = Field(None, ge=1, description="same as max_tokens")
    temperature: float | None = Field(
        None, ge=0, le=2, description="0: greedy; default: the model's generation_config"
    )
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = Field(None, description="up to 4 sequences that end the answer")
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, description="answers per request: only 1")
    seed: int | None = Field(None, description="fixes sampling")
    tools: list[dict[str, Any]] | None = Field(
        None, description="functions the model may call; its calls come back as tool_calls"
    )
    tool_choice: str | dict[str, Any] | None = Field(
        None, description="auto (the default with tools) or none (the tools are not shown)"
    )


@dataclass
class Generation:
    """What one request asks the model for."""

    ids: list[int]
    max_new_tokens: int
    stops: list[str]
    sampling: dict[str, Any]
    seed: int | None = None
    tools: bool = False  # calls in the answer are read back as tool_calls
    finish_reason: str = "length"
    completion_tokens: int = 0
    cancelled: threading.Event = field(default_factory=threading.Event)


class ChatModel:
    """A causal model answering chats, one generation at a time (one model, one lock)."""

    def __init__(self, model: Any, tokenizer: Any, stop_ids: list[int], max_length: int) -> None:
        self.model, self.tokenizer, self.stop_ids = model.eval(), tokenizer, stop_ids
        self.context = int(getattr(model.config, "max_position_embeddings", 0) or max_length)
        self.default_new_tokens = int(
            getattr(model.generation_config, "max_new_tokens", None) or 256
        )
        self.lock = threading.Lock()

    def prepare(self, request: ChatRequest) -> Generation:
        """Token ids and decoding settings of a request.

        Raises:
            ValueError: with the sentence to answer (422), for a request the model cannot do.
        """
        if request.n != 1:
            raise ValueError(f"n={request.n}: this server writes one answer per request; send n=1")
        stops = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
        if len(stops) > 4 or any(not s for s in stops):
            raise ValueError("stop: give at most 4 non-empty sequences")
        messages, tools = chat_messages(request)
        ids = prompt_ids(self.tokenizer, messages, messages[-1]["content"])
        room = self.context - len(ids)
        if room < 1:
            raise ValueError(
                f"the chat is {len(ids)} tokens long and the model reads at most "
                f"{self.context}; send a shorter conversation"
            )
        wanted = request.max_completion_tokens or request.max_tokens or self.default_new_tokens
        sampling: dict[str, Any] = {}
        if request.temperature is not None:
            sampling["do_sample"] = request.temperature > 0
            if request.temperature > 0:
                sampling["temperature"] = request.temperature
                sampling["top_p"] = request.top_p if request.top_p is not None else 1.0
        elif request.top_p is not None:
            sampling.update(do_sample=True, top_p=request.top_p)
        return Generation(ids, min(wanted, room), stops, sampling, request.seed, bool(tools))

    def pieces(self, job: Generation) -> Iterator[str]:
        """The answer's text as it is generated, cut before the first stop sequence; sets
        ``job.finish_reason`` ("stop" or "length") and ``job.completion_tokens`` at the end."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600
        )

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), job.cancelled.is_set(), dtype=torch.bool)

        done: queue.Queue[BaseException | Any] = queue.Queue()

        def run() -> None:
            ids = torch.tensor([job.ids], device=self.model.device)
            try:
                with self.lock, torch.inference_mode():
                    if job.seed is not None:
                        torch.manual_seed(job.seed)
                    out = self.model.generate(
                        input_ids=ids, attention_mask=torch.ones_like(ids),
                        max_new_tokens=job.max_new_tokens, eos_token_id=self.stop_ids,
                        pad_token_id=self.tokenizer.pad_token_id, streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([Cancelled()]), **job.sampling,
                    )  # fmt: skip
                done.put(out[0, ids.shape[1] :].tolist())
            except BaseException as error:  # handed to the reading side, which raises it
                streamer.end()
                done.put(error)

        threading.Thread(target=run, daemon=True).start()
        text, sent = "", 0
        for piece in streamer:
            text += piece
            cut = _first_stop(text, job.stops)
            if cut is not None:
                job.cancelled.set()  # the model stops at its next token
                yield text[sent:cut]
                job.finish_reason = "stop"
                for _ in streamer:  # let the generating thread finish
                    pass
                break
            # keep back what could be the start of a stop sequence
            safe = len(text) - _held_back(text, job.stops)
            if safe > sent:
                yield text[sent:safe]
                sent = safe
        else:
            if sent < len(text):
                yield text[sent:]
        result = done.get()
        if isinstance(result, BaseException):
            raise result
        new = result
        job.completion_tokens = len(new)
        if job.finish_reason != "stop" and new and new[-1] in self.stop_ids:
            job.finish_reason = "stop"


def chat_messages(request: ChatRequest) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """The request's turns as ``{role, content}`` text, calls and results in the Hermes
    format with the tools listed in the system turn, and the tools it offers.

    Raises:
        ValueError: with the sentence to answer (422), for a tool_choice the server cannot
            honour or a malformed call or tool.
    """
    choice = request.tool_choice
    if choice not in (None, "auto", "none"):
        raise ValueError(
            f"tool_choice: {choice!r} is not supported; send auto or none (the model decides "
            "whether to call)"
        )
    try:
        messages = []
        for number, m in enumerate(request.messages, start=1):
            made = tool_turn(m.model_dump(), number, "messages")
            role = "system" if m.role == "developer" else m.role
            messages.append(made or {"role": role, "content": m.text()})
        tools = read_tools(request.tools, "tools") if request.tools and choice != "none" else []
    except UserError as error:
        raise ValueError(str(error)) from None
    return with_tools(joined_tool_turns(messages), tools), tools


def answer_message(text: str, tools: bool) -> tuple[dict[str, Any], str | None]:
    """The assistant message of an answer, its calls as OpenAI ``tool_calls`` where the
    request offered tools and the answer makes calls, and the finish reason that implies
    (``tool_calls``; None: the generation's own)."""
    calls = parse_calls(text) if tools else []
    if not calls:
        return {"role": "assistant", "content": text}, None
    said = text[: text.find(CALL_OPEN)].strip()
    return {
        "role": "assistant",
        "content": said or None,
        "tool_calls": [openai_call(call) for call in calls],
    }, "tool_calls"


def openai_call(call: dict[str, Any]) -> dict[str, Any]:
    """A parsed call as OpenAI writes it: an id, and the arguments as JSON text."""
    arguments = json.dumps(call["arguments"], ensure_ascii=False)
    return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": call["name"], "arguments": arguments}}  # fmt: skip


def _first_stop(text: str, stops: list[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def _held_back(text: str, stops: list[str]) -> int:
    """Characters at the end of ``text`` that begin some stop sequence."""
    return max((k for s in stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)


def add_chat_completions_route(
    app: Any, task: Any, model: Any, tokenizer: Any, check_key: Any, max_length: int,
    served_name: str,
) -> None:  # fmt: skip
    """``POST /v1/chat/completions`` for causal models; other models answer 400."""
    from fastapi import Depends, HTTPException
    from fastapi.responses import StreamingResponse

    chat_model = (
        ChatModel(model, tokenizer, task.stop_ids(tokenizer), max_length)
        if task.model_kind == "causal"
        else None
    )

    @app.post(
        "/v1/chat/completions",
        dependencies=[Depends(check_key)],
        summary="OpenAI-compatible chat completions (causal models), streamed with stream=true",
        responses={
            400: {"description": "the served model does not chat"},
            401: {"description": "API key missing or wrong"},
            422: {"description": "malformed body, n other than 1, or a chat too long"},
        },
    )
    async def chat_completions(request: ChatRequest) -> Any:
        if chat_model is None:
            raise HTTPException(
                400,
                f"this server holds a {task.name} model, which does not chat; POST /predict "
                "instead",
            )
        try:
            job = chat_model.prepare(request)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        answer_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        head = {"id": answer_id, "created": created, "model": served_name}
        if request.stream:
            usage = bool(request.stream_options and request.stream_options.include_usage)
            return StreamingResponse(
                _events(chat_model, job, head, usage), media_type="text/event-stream"
            )
        text = "".join(await asyncio.to_thread(lambda: list(chat_model.pieces(job))))
        message, called = answer_message(text, job.tools)
        return {
            **head,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": called or job.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": _usage(job),
        }


def _usage(job: Generation) -> dict[str, int]:
    return {
        "prompt_tokens": len(job.ids),
        "completion_tokens": job.completion_tokens,
        "total_tokens": len(job.ids) + job.completion_tokens,
    }


async def _events(
    chat_model: ChatModel, job: Generation, head: dict[str, Any], include_usage: bool
) -> AsyncIterator[str]:
    """Server-sent events of a streamed answer: a role chunk, text chunks, the finish reason,
    then (when asked) the usage, and ``[DONE]``. With tools, the text from the first
    ``<tool_call>`` on is held back and its calls sent whole, as one ``tool_calls`` chunk,
    when the answer is done."""

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        chunk = {**head, "object": "chat.completion.chunk", "choices": [choice], **extra}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    pieces = chat_model.pieces(job)
    end = object()
    text, sent, call_at = "", 0, None
    try:
        yield event({"role": "assistant", "content": ""})
        while (piece := await asyncio.to_thread(next, pieces, end)) is not end:
            text += piece
            if job.tools and call_at is None and CALL_OPEN in text:
                call_at = text.find(CALL_OPEN)
            if call_at is not None:
                shown = call_at
            else:  # with tools, keep back what could be the start of a call
                shown = len(text) - (_held_back(text, [CALL_OPEN]) if job.tools else 0)
            if shown > sent:
                yield event({"content": text[sent:shown]})
                sent = shown
        calls = [openai_call(c) for c in parse_calls(text[call_at:])] if call_at is not None else []
        if calls:
            yield event({"tool_calls": [{"index": i, **call} for i, call in enumerate(calls)]})
        elif sent < len(text):  # the held-back text was no call after all
            yield event({"content": text[sent:]})
        yield event({}, "tool_calls" if calls else job.finish_reason)
        if include_usage:
            chunk = {**head, "object": "chat.completion.chunk", "choices": [], "usage": _usage(job)}
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        job.cancelled.set()  # a client that hangs up stops the generation
