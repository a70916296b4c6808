"""Streamed OpenAI-style calls: ``data: <chunk>`` events, then ``data: [DONE]``.

The run is recorded as a streamed session run is (see ``runs.stream_run``): the complete
reply once the upstream finishes; a failed run, and no reply, when the upstream breaks
off or the client goes away (the upstream request is then closed at once).

The first piece is awaited before the response starts, so a call that fails before
producing anything (rate limit, timeout, ...) is an ordinary OpenAI error answer with
its status code. A failure after that arrives as ``data: {"error": {...}}``, then
``data: [DONE]``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel

from chatmodel_service.db import Database
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import LLMFailure, LLMOutcome, StreamDelta
from chatmodel_service.openai_compat.errors import upstream_error
from chatmodel_service.openai_compat.responses import finish_reason, usage_of
from chatmodel_service.openai_compat.schemas import (
    CallDetail,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChunkDelta,
    FunctionCallDelta,
    TextChunkChoice,
    TextCompletionChunk,
    ToolCallDelta,
    Usage,
)
from chatmodel_service.openai_compat.service import PreparedCompletion, record_sessionless
from chatmodel_service.runs import (
    EventFormat,
    FinishedRun,
    Recorded,
    get_run,
    relay_and_record,
    relay_session_run,
    server_shutdown,
)

SSE_TERMINATOR = "data: [DONE]\n\n"


@dataclass(frozen=True)
class Finished:
    """A stream's end: the outcome as recorded (a session's call that lost its lease:
    ``interrupted``) and the stored reply's uuid, if any."""

    outcome: LLMOutcome
    message_uuid: uuid.UUID | None


Event = StreamDelta | Finished


async def _relay(
    database: Database,
    gateway: LLMGateway,
    prepared: PreparedCompletion,
    cut_short: Callable[[int], LLMFailure] | None,
) -> AsyncGenerator[Event]:
    """The model's deltas, then the call as recorded. A session's call streams as a
    native streamed run does (``runs.relay_session_run``: its lease renewed); with
    ``cut_short`` (its stream goes on in a task of its own, ``BackgroundRuns``), a lost
    lease cancels it and a stream cut short is recorded so."""

    async def store(outcome: LLMOutcome) -> None:
        await record_sessionless(database, prepared, outcome, stream=True)

    session_run = prepared.recorded_session_run()
    events: AsyncGenerator[StreamDelta | Recorded[FinishedRun] | Recorded[None]]
    if session_run is not None and cut_short is not None:
        events = relay_session_run(
            database, gateway, session_run, cancel_on_lost_lease=True, cut_short=cut_short
        )
    elif session_run is not None:
        events = relay_session_run(database, gateway, session_run)
    else:
        events = relay_and_record(gateway, prepared.call, store)
    async with aclosing(events):
        async for event in events:
            if isinstance(event, StreamDelta):
                yield event
            elif event.stored is None:
                yield Finished(event.outcome, None)
            else:
                yield Finished(event.stored.outcome, event.stored.message_uuid)


@dataclass
class OpenedStream:
    first: Event
    rest: AsyncGenerator[Event]

    async def events(self) -> AsyncGenerator[Event]:
        async with aclosing(self.rest):
            yield self.first
            async for event in self.rest:
                yield event


async def open_stream(
    database: Database,
    gateway: LLMGateway,
    prepared: PreparedCompletion,
    cut_short: Callable[[int], LLMFailure] | None = None,
) -> OpenedStream:
    """Start the call and wait for its first event; a call that failed before producing
    anything raises its OpenAI error (its run is recorded by then). ``cut_short``: see
    ``_relay``."""
    events = _relay(database, gateway, prepared, cut_short)
    first = await anext(events)
    if isinstance(first, Finished) and isinstance(first.outcome, LLMFailure):
        await events.aclose()
        raise upstream_error(first.outcome, passthrough=prepared.passthrough)
    return OpenedStream(first, events)


def _data(chunk: BaseModel) -> str:
    return f"data: {chunk.model_dump_json()}\n\n"


def _error_data(prepared: PreparedCompletion, failure: LLMFailure) -> str:
    return _data(upstream_error(failure, passthrough=prepared.passthrough).body)


def _chat_delta(delta: StreamDelta) -> ChunkDelta:
    return ChunkDelta(
        content=delta.content,
        function_call=FunctionCallDelta(**delta.function_call) if delta.function_call else None,
        tool_calls=[ToolCallDelta.model_validate(piece) for piece in delta.tool_calls]
        if delta.tool_calls
        else None,
    )


ChoiceT = TypeVar("ChoiceT", ChatChunkChoice, TextChunkChoice)


class _ChunkType(Protocol[ChoiceT]):
    """A chunk class: ``ChatCompletionChunk`` or ``TextCompletionChunk``."""

    def __call__(
        self,
        *,
        id: str,
        created: int,
        model: str,
        choices: list[ChoiceT],
        usage: Usage | None,
        chatmodel: CallDetail | None,
    ) -> BaseModel: ...


@dataclass(frozen=True)
class _ChunkForm(Generic[ChoiceT]):
    """What sets one kind of completion's chunks apart from the other's."""

    id_prefix: str  # of the completion's id
    chunk: _ChunkType[ChoiceT]
    delta: Callable[[StreamDelta], ChoiceT | None]  # a delta's choice (None: send nothing)
    finish: Callable[[str], ChoiceT]  # the choice with the finish reason
    opening: Callable[[], ChoiceT] | None = None  # the choice of a chunk before the deltas


_CHAT = _ChunkForm[ChatChunkChoice](
    id_prefix="chatcmpl",
    chunk=ChatCompletionChunk,
    delta=lambda delta: ChatChunkChoice(delta=_chat_delta(delta)),
    finish=lambda reason: ChatChunkChoice(delta=ChunkDelta(), finish_reason=reason),
    opening=lambda: ChatChunkChoice(delta=ChunkDelta(role="assistant", content="")),
)
_TEXT = _ChunkForm[TextChunkChoice](
    id_prefix="cmpl",
    chunk=TextCompletionChunk,
    delta=lambda delta: TextChunkChoice(text=delta.content) if delta.content else None,
    finish=lambda reason: TextChunkChoice(text="", finish_reason=reason),
)


def chat_sse(
    prepared: PreparedCompletion, stream: OpenedStream, include_usage: bool
) -> AsyncIterator[str]:
    """``chat.completion.chunk`` events: the role, the deltas, the finish reason (with the
    ``chatmodel`` object), with ``include_usage`` a last chunk with usage and no choices."""
    return _completion_sse(_CHAT, prepared, stream, include_usage)


def text_sse(
    prepared: PreparedCompletion, stream: OpenedStream, include_usage: bool
) -> AsyncIterator[str]:
    """``text_completion`` events: the text pieces, then the finish reason (with the
    ``chatmodel`` object), with ``include_usage`` a last chunk with usage and no choices."""
    return _completion_sse(_TEXT, prepared, stream, include_usage)


async def _completion_sse(
    form: _ChunkForm[ChoiceT],
    prepared: PreparedCompletion,
    stream: OpenedStream,
    include_usage: bool,
) -> AsyncIterator[str]:
    """The stream's events as ``form``'s chunks; a failure as an error event."""

    def chunk(
        choices: list[ChoiceT], usage: Usage | None = None, chatmodel: CallDetail | None = None
    ) -> str:
        return _data(
            form.chunk(
                id=prepared.completion_id(form.id_prefix),
                created=prepared.created,
                model=prepared.model,
                choices=choices,
                usage=usage,
                chatmodel=chatmodel,
            )
        )

    if form.opening is not None:
        yield chunk([form.opening()])
    async with aclosing(stream.events()) as events:
        async for event in events:
            if isinstance(event, StreamDelta):
                choice = form.delta(event)
                if choice is not None:
                    yield chunk([choice])
            elif isinstance(event.outcome, LLMFailure):
                yield _error_data(prepared, event.outcome)
            else:
                result = event.outcome
                detail = prepared.detail(result, event.message_uuid)
                yield chunk([form.finish(finish_reason(result))], chatmodel=detail)
                if include_usage:
                    yield chunk([], usage=usage_of(result))
    yield SSE_TERMINATOR


def openai_closing(_: int) -> str:
    """A stream's end when the server shuts down before the call's own end came."""
    return _data(upstream_error(server_shutdown(), passthrough=False).body) + SSE_TERMINATOR


async def openai_end(
    database: Database, project_id: uuid.UUID, run_id: uuid.UUID, _: int
) -> str | None:
    """A chat or text completion stream's end, as stored: its error when the call failed;
    nothing else (its reply is in its session), before ``[DONE]``."""
    async with database.transaction(write=False) as db:
        response = (await get_run(db, project_id, run_id)).response
    if response is None or not response.error:
        return None
    failure = LLMFailure(
        model=response.detail.model if response.detail else "",
        error_type=response.error_type or "failed",
        error_log=response.error_log or "",
        latency_ms=response.latency_ms or 0,
    )
    return _data(upstream_error(failure, passthrough=False).body)


OPENAI_EVENTS = EventFormat("openai", SSE_TERMINATOR, openai_end)
