"""Streamed OpenAI-style calls: ``data: <chunk>`` events, then ``data: [DONE]``.

The run is recorded as a streamed session run is (see ``runs.streaming``): the complete
reply once the upstream finishes; a failed run, and no reply, when the upstream breaks
off or the client goes away (the upstream request is then closed at once).

The first piece is awaited before the response starts, so a call that fails before
producing anything (rate limit, timeout, ...) is an ordinary OpenAI error answer with
its status code. A failure after that arrives as ``data: {"error": {...}}``, then
``data: [DONE]``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

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
from chatmodel_service.runs.service import FinishedRun
from chatmodel_service.runs.streaming import Recorded, relay_and_record, relay_session_run

SSE_TERMINATOR = "data: [DONE]\n\n"


@dataclass(frozen=True)
class Finished:
    """A stream's end: the outcome as recorded (a session's call that lost its lease:
    ``interrupted``) and the stored reply's uuid, if any."""

    outcome: LLMOutcome
    message_uuid: uuid.UUID | None


Event = StreamDelta | Finished


async def _relay(
    database: Database, gateway: LLMGateway, prepared: PreparedCompletion
) -> AsyncGenerator[Event]:
    """The model's deltas, then the call as recorded. A session's call streams as a
    native streamed run does (``runs.streaming.relay_session_run``: its lease renewed)."""

    async def store(outcome: LLMOutcome) -> None:
        await record_sessionless(database, prepared, outcome, stream=True)

    session_run = prepared.recorded_session_run()
    events: AsyncGenerator[StreamDelta | Recorded[FinishedRun] | Recorded[None]]
    if session_run is not None:
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
    database: Database, gateway: LLMGateway, prepared: PreparedCompletion
) -> OpenedStream:
    """Start the call and wait for its first event; a call that failed before producing
    anything raises its OpenAI error (its run is recorded by then)."""
    events = _relay(database, gateway, prepared)
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


async def chat_sse(
    prepared: PreparedCompletion, stream: OpenedStream, include_usage: bool
) -> AsyncIterator[str]:
    """``chat.completion.chunk`` events: the role, the deltas, the finish reason (with the
    ``chatmodel`` object), with ``include_usage`` a last chunk with usage and no choices."""

    def chunk(
        choices: list[ChatChunkChoice],
        usage: Usage | None = None,
        chatmodel: CallDetail | None = None,
    ) -> str:
        return _data(
            ChatCompletionChunk(
                id=prepared.completion_id("chatcmpl"),
                created=prepared.created,
                model=prepared.model,
                choices=choices,
                usage=usage,
                chatmodel=chatmodel,
            )
        )

    yield chunk([ChatChunkChoice(delta=ChunkDelta(role="assistant", content=""))])
    async with aclosing(stream.events()) as events:
        async for event in events:
            if isinstance(event, StreamDelta):
                yield chunk([ChatChunkChoice(delta=_chat_delta(event))])
            elif isinstance(event.outcome, LLMFailure):
                yield _error_data(prepared, event.outcome)
            else:
                result = event.outcome
                detail = prepared.detail(result, event.message_uuid)
                finish = ChatChunkChoice(delta=ChunkDelta(), finish_reason=finish_reason(result))
                yield chunk([finish], chatmodel=detail)
                if include_usage:
                    yield chunk([], usage=usage_of(result))
    yield SSE_TERMINATOR


async def text_sse(
    prepared: PreparedCompletion, stream: OpenedStream, include_usage: bool
) -> AsyncIterator[str]:
    """``text_completion`` events: the text pieces, then the finish reason."""

    def chunk(
        choices: list[TextChunkChoice],
        usage: Usage | None = None,
        chatmodel: CallDetail | None = None,
    ) -> str:
        return _data(
            TextCompletionChunk(
                id=prepared.completion_id("cmpl"),
                created=prepared.created,
                model=prepared.model,
                choices=choices,
                usage=usage,
                chatmodel=chatmodel,
            )
        )

    async with aclosing(stream.events()) as events:
        async for event in events:
            if isinstance(event, StreamDelta):
                if event.content:
                    yield chunk([TextChunkChoice(text=event.content)])
            elif isinstance(event.outcome, LLMFailure):
                yield _error_data(prepared, event.outcome)
            else:
                result = event.outcome
                detail = prepared.detail(result, event.message_uuid)
                finish = TextChunkChoice(text="", finish_reason=finish_reason(result))
                yield chunk([finish], chatmodel=detail)
                if include_usage:
                    yield chunk([], usage=usage_of(result))
    yield SSE_TERMINATOR
