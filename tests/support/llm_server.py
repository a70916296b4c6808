"""Scripted OpenAI-compatible HTTP server for tests.

A :class:`ScriptedLLMServer` runs a small Starlette app under real uvicorn in a
background thread on ``127.0.0.1`` (free port), so the real LiteLLM client talks
to it over real HTTP::

    server.enqueue(Reply("hello"), ErrorReply(429))
    await litellm.acompletion(
        model="openai/anything", api_base=server.base_url, api_key="sk-test",
        messages=[...], num_retries=0, max_retries=0,
    )

Every ``POST /v1/chat/completions`` or ``POST /v1/completions`` consumes one
scripted step (FIFO) and records its JSON body in ``server.requests``. When the
queue is empty the server answers 500 "no scripted reply left", so a test that
forgot to script fails loudly.

Fixtures: ``llm_server_session`` (session scope, yields a started server) and
``llm_server`` (function scope, depends on the session one and calls
``reset()`` before each test). Use them from a conftest with::

    from tests.support.llm_server import llm_server, llm_server_session  # noqa: F401

The fixtures carry explicit names, so importing them under an alias (to avoid
ruff F811 when a test takes ``llm_server`` as an argument) registers them under
the same fixture names. If you write your own wrapper fixture instead, make it
function-scoped and call ``reset()`` on the session server for every test.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = [
    "CutBody",
    "Delay",
    "ErrorReply",
    "FunctionCallReply",
    "MalformedBody",
    "RawBody",
    "Reply",
    "ScriptedLLMServer",
    "SlowStream",
    "Step",
    "StreamDrop",
    "ToolCall",
    "ToolCallsReply",
    "llm_server",
    "llm_server_session",
    "sse_body",
]


@dataclass(frozen=True)
class Reply:
    """Plain assistant text."""

    content: str
    prompt_tokens: int = 10
    completion_tokens: int = 5
    finish_reason: str = "stop"


@dataclass(frozen=True)
class FunctionCallReply:
    """Legacy OpenAI ``function_call`` reply (finish_reason ``function_call``)."""

    name: str
    arguments: str
    prompt_tokens: int = 10
    completion_tokens: int = 5


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolCallsReply:
    """``tool_calls`` reply (finish_reason ``tool_calls``, content ``None``)."""

    calls: tuple[ToolCall, ...]
    prompt_tokens: int = 10
    completion_tokens: int = 5


@dataclass(frozen=True)
class ErrorReply:
    """HTTP error with an OpenAI error body; ``retry_after`` sets ``Retry-After``."""

    status: int
    message: str = "scripted error"
    type: str = "server_error"
    retry_after: float | None = None


@dataclass(frozen=True)
class Delay:
    """Sleep (asyncio, server side) before producing ``then``."""

    seconds: float
    then: Step


@dataclass(frozen=True)
class MalformedBody:
    """200, ``Content-Type: application/json``, body that is not valid JSON."""

    body: str = '{"id": "chatcmpl-broken", "choices": [ {'


@dataclass(frozen=True)
class RawBody:
    """Stream and non-stream requests alike: ``status`` with exactly ``body`` (see
    ``sse_body``), for shapes no well-behaved provider sends."""

    body: str
    media_type: str = "application/json"
    status: int = 200


@dataclass(frozen=True)
class CutBody:
    """Non-stream requests: 200 with ``reply``'s JSON body and its full Content-Length, but
    only the first ``sent_bytes`` bytes of it before the connection is closed."""

    reply: Reply | FunctionCallReply | ToolCallsReply
    sent_bytes: int = 40


@dataclass(frozen=True)
class StreamDrop:
    """Stream requests only: send the first ``after_chunks`` chunks of ``reply``,
    then abort the connection mid-body (no ``[DONE]``, no chunked terminator)."""

    reply: Reply | FunctionCallReply | ToolCallsReply
    after_chunks: int = 2


@dataclass(frozen=True)
class SlowStream:
    """Stream requests: send ``reply`` with ``chunk_delay`` seconds between chunks (for
    disconnect tests); non-stream requests get the reply at once."""

    reply: Reply | FunctionCallReply | ToolCallsReply
    chunk_delay: float = 0.2


Step = (
    Reply
    | FunctionCallReply
    | ToolCallsReply
    | ErrorReply
    | Delay
    | MalformedBody
    | StreamDrop
    | SlowStream
    | RawBody
    | CutBody
)

_Kind = Literal["chat", "text"]
_ARG_FRAGMENT = 4  # characters per streamed argument fragment


class _StreamDropped(Exception):
    """Raised inside a streaming body to make uvicorn close the socket mid-response."""


class _DropLogFilter(logging.Filter):
    """Hide uvicorn's "Exception in ASGI application" record for deliberate drops."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not _is_drop(exc)


def _is_drop(exc: BaseException | None) -> bool:
    if isinstance(exc, _StreamDropped):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_drop(e) for e in exc.exceptions)
    return False


def _error(
    status: int, message: str, type_: str = "server_error", retry_after: float | None = None
) -> Response:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    body = {"error": {"message": message, "type": type_, "param": None, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers)


def sse_body(*events: dict[str, Any] | str, done: bool = True) -> str:
    """An SSE body: ``data: <event>`` per event (dicts as JSON), then ``data: [DONE]``
    unless ``done`` is False."""
    lines = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    return "".join(lines) + ("data: [DONE]\n\n" if done else "")


def _words(text: str) -> list[str]:
    """Split into word chunks keeping whitespace, so ``"".join`` gives ``text``."""
    return re.findall(r"\s*\S+\s*", text) or [text]


def _fragments(arguments: str) -> list[str]:
    return [arguments[i : i + _ARG_FRAGMENT] for i in range(0, len(arguments), _ARG_FRAGMENT)]


def _usage(step: Reply | FunctionCallReply | ToolCallsReply) -> dict[str, int]:
    return {
        "prompt_tokens": step.prompt_tokens,
        "completion_tokens": step.completion_tokens,
        "total_tokens": step.prompt_tokens + step.completion_tokens,
    }


def _finish_reason(step: Reply | FunctionCallReply | ToolCallsReply) -> str:
    if isinstance(step, Reply):
        return step.finish_reason
    return "function_call" if isinstance(step, FunctionCallReply) else "tool_calls"


def _message(step: Reply | FunctionCallReply | ToolCallsReply) -> dict[str, Any]:
    if isinstance(step, Reply):
        return {"role": "assistant", "content": step.content}
    if isinstance(step, FunctionCallReply):
        return {
            "role": "assistant",
            "content": None,
            "function_call": {"name": step.name, "arguments": step.arguments},
        }
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in step.calls
        ],
    }


def _deltas(step: Reply | FunctionCallReply | ToolCallsReply) -> list[dict[str, Any]]:
    """Chat stream deltas (without the final finish_reason chunk)."""
    if isinstance(step, Reply):
        deltas: list[dict[str, Any]] = [{"content": w} for w in _words(step.content)]
        deltas[0] = {"role": "assistant", **deltas[0]}
        return deltas
    if isinstance(step, FunctionCallReply):
        deltas = [
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": step.name, "arguments": ""},
            }
        ]
        deltas += [{"function_call": {"arguments": f}} for f in _fragments(step.arguments)]
        return deltas
    deltas = [{"role": "assistant", "content": None}]
    for index, call in enumerate(step.calls):
        head = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        deltas.append({"tool_calls": [head]})
        deltas += [
            {"tool_calls": [{"index": index, "function": {"arguments": f}}]}
            for f in _fragments(call.arguments)
        ]
    return deltas


class ScriptedLLMServer:
    """OpenAI-compatible server answering from a FIFO script of :data:`Step` values."""

    def __init__(self) -> None:
        self.base_url: str = ""
        self.requests: list[dict[str, Any]] = []
        # Streaming responses in flight, and those whose client went away before the end.
        self.open_streams = 0
        self.abandoned_streams = 0
        self._steps: deque[Step] = deque()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._log_filter = _DropLogFilter()
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/completions", self._text, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    # -- public API ---------------------------------------------------------

    def enqueue(self, *steps: Step) -> None:
        with self._lock:
            self._steps.extend(steps)

    def reset(self) -> None:
        with self._lock:
            self._steps.clear()
            self.requests.clear()
            self.abandoned_streams = 0

    def start(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            raise RuntimeError("server already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            log_config=None,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").addFilter(self._log_filter)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="scripted-llm", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError("scripted LLM server failed to start")
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}/v1"

    def stop(self, timeout: float = 5.0) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout)
            if thread.is_alive():
                server.force_exit = True
                thread.join(timeout)
        logging.getLogger("uvicorn.error").removeFilter(self._log_filter)

    def __enter__(self) -> ScriptedLLMServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- request handling ---------------------------------------------------

    async def _models(self, request: Request) -> Response:
        ids = ["gpt-4o-mini", "gpt-3.5-turbo-instruct", "scripted"]
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": i, "object": "model", "created": 0, "owned_by": "scripted"} for i in ids
                ],
            }
        )

    async def _chat(self, request: Request) -> Response:
        return await self._complete(request, "chat")

    async def _text(self, request: Request) -> Response:
        return await self._complete(request, "text")

    async def _complete(self, request: Request, kind: _Kind) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "request body is not valid JSON", "invalid_request_error")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object", "invalid_request_error")
        with self._lock:
            self.requests.append(body)
            step = self._steps.popleft() if self._steps else None
        if step is None:
            return _error(500, f"no scripted reply left for {request.url.path}")
        while isinstance(step, Delay):
            await asyncio.sleep(step.seconds)
            step = step.then
        if isinstance(step, ErrorReply):
            return _error(step.status, step.message, step.type, step.retry_after)
        if isinstance(step, MalformedBody):
            return Response(step.body, media_type="application/json")
        if isinstance(step, RawBody):
            return Response(step.body, status_code=step.status, media_type=step.media_type)
        stream = bool(body.get("stream"))
        reply = step.reply if isinstance(step, StreamDrop | SlowStream | CutBody) else step
        if isinstance(step, StreamDrop) and not stream:
            return _error(500, "StreamDrop scripted for a non-stream request")
        if kind == "text" and not isinstance(reply, Reply):
            return _error(500, f"{type(reply).__name__} is not supported on /v1/completions")
        model = str(body.get("model", "scripted"))
        if isinstance(step, CutBody):
            if stream:
                return _error(500, "CutBody scripted for a stream request")
            return self._cut(json.dumps(self._full(kind, reply, model)), step.sent_bytes)
        if not stream:
            return JSONResponse(self._full(kind, reply, model))
        chunks = self._chunks(kind, reply, model)
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            chunks.append(self._envelope(kind, model, [], _usage(reply)))
        drop_after = step.after_chunks if isinstance(step, StreamDrop) else None
        delay = step.chunk_delay if isinstance(step, SlowStream) else 0.0
        return StreamingResponse(
            self._sse(chunks, drop_after, delay), media_type="text/event-stream"
        )

    @staticmethod
    def _cut(full: str, sent_bytes: int) -> Response:
        """``full`` announced by its Content-Length, cut after ``sent_bytes`` bytes."""
        encoded = full.encode()

        async def part() -> AsyncIterator[bytes]:
            yield encoded[:sent_bytes]
            await asyncio.sleep(0.05)  # let the sent part reach the socket
            raise _StreamDropped("scripted body cut")

        headers = {"content-length": str(len(encoded))}
        return StreamingResponse(part(), media_type="application/json", headers=headers)

    @staticmethod
    def _envelope(
        kind: _Kind, model: str, choices: list[dict[str, Any]], usage: dict[str, int] | None = None
    ) -> dict[str, Any]:
        prefix, obj = (
            ("chatcmpl", "chat.completion.chunk") if kind == "chat" else ("cmpl", "text_completion")
        )
        out: dict[str, Any] = {
            "id": f"{prefix}-{uuid.uuid4().hex[:24]}",
            "object": obj,
            "created": int(time.time()),
            "model": model,
            "choices": choices,
        }
        if usage is not None:
            out["usage"] = usage
        return out

    def _full(
        self, kind: _Kind, reply: Reply | FunctionCallReply | ToolCallsReply, model: str
    ) -> dict[str, Any]:
        if kind == "chat":
            choice: dict[str, Any] = {"index": 0, "message": _message(reply), "logprobs": None}
            out = self._envelope(kind, model, [choice], _usage(reply))
            out["object"] = "chat.completion"
        else:
            assert isinstance(reply, Reply)
            choice = {"index": 0, "text": reply.content, "logprobs": None}
            out = self._envelope(kind, model, [choice], _usage(reply))
        choice["finish_reason"] = _finish_reason(reply)
        return out

    def _chunks(
        self, kind: _Kind, reply: Reply | FunctionCallReply | ToolCallsReply, model: str
    ) -> list[dict[str, Any]]:
        base = self._envelope(kind, model, [])
        finish = _finish_reason(reply)
        choices: list[dict[str, Any]]
        if kind == "chat":
            choices = [
                {"index": 0, "delta": d, "logprobs": None, "finish_reason": None}
                for d in _deltas(reply)
            ]
            choices.append({"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish})
        else:
            assert isinstance(reply, Reply)
            choices = [
                {"index": 0, "text": w, "logprobs": None, "finish_reason": None}
                for w in _words(reply.content)
            ]
            choices.append({"index": 0, "text": "", "logprobs": None, "finish_reason": finish})
        return [{**base, "choices": [c]} for c in choices]

    async def _sse(
        self, chunks: list[dict[str, Any]], drop_after: int | None, delay: float
    ) -> AsyncIterator[str]:
        with self._lock:
            self.open_streams += 1
        finished = False
        try:
            for n, chunk in enumerate(chunks):
                if drop_after is not None and n >= drop_after:
                    await asyncio.sleep(0.05)  # let the sent chunks reach the socket
                    raise _StreamDropped("scripted stream drop")
                if delay and n:
                    await asyncio.sleep(delay)
                yield f"data: {json.dumps(chunk)}\n\n"
            if drop_after is not None:  # asked to drop after everything: still no [DONE]
                await asyncio.sleep(0.05)
                raise _StreamDropped("scripted stream drop")
            yield "data: [DONE]\n\n"
            finished = True
        finally:
            with self._lock:
                self.open_streams -= 1
                if not finished and drop_after is None:
                    self.abandoned_streams += 1


@pytest.fixture(scope="session", name="llm_server_session")
def llm_server_session() -> Iterator[ScriptedLLMServer]:
    """Session-wide started server. Prefer ``llm_server``, which resets it per test."""
    with ScriptedLLMServer() as server:
        yield server


@pytest.fixture(name="llm_server")
def llm_server(llm_server_session: ScriptedLLMServer) -> Iterator[ScriptedLLMServer]:
    """Function-scoped view of the session server: queue and recorded requests reset."""
    llm_server_session.reset()
    yield llm_server_session
    llm_server_session.reset()
