"""Streamed runs: the same read and write phases as a plain run, with the model's reply
relayed piece by piece as server-sent events.

What is stored:
* the upstream finishes: the complete reply (text and tool calls assembled from the
  deltas) is stored once, then the last event carries it with its uuid;
* the upstream fails mid-stream: the partial reply is dropped, the run is recorded as
  failed (``stream_interrupted``) and the last event says so;
* the HTTP client goes away: the upstream request is closed at once (no more tokens are
  paid for), nothing is stored for the reply, and the run is recorded as failed
  (``client_disconnected``). The stream holds no database connection while it runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

import anyio

from chatmodel_service.db import Database
from chatmodel_service.errors import StorageUnavailable
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import LLMCall, LLMFailure, LLMOutcome, StreamDelta
from chatmodel_service.observability.metrics import tracked_stream
from chatmodel_service.runs.lease import keep_lease
from chatmodel_service.runs.schemas import (
    AssembledMessage,
    FunctionCallDelta,
    LLMResponse,
    LLMStreamResponse,
    ToolCallDelta,
)
from chatmodel_service.runs.service import (
    FinishedRun,
    PreparedRun,
    finish_run,
    summarised,
    unstored_run,
)

SSE_TERMINATOR = "data: [DONE]\n\n"
_SHUTDOWN_TEXT = "The server shut down during the run; nothing was stored for it."

T = TypeVar("T")


def _delta_event(delta: StreamDelta) -> LLMStreamResponse:
    return LLMStreamResponse(
        content=delta.content,
        raw_output=delta.content,
        function_call=FunctionCallDelta(**delta.function_call) if delta.function_call else None,
        tool_calls=[ToolCallDelta(**piece) for piece in delta.tool_calls]
        if delta.tool_calls
        else None,
    )


def last_event(full: LLMResponse) -> LLMStreamResponse:
    """A stream's last event: the run's stored result (its LLMResponse) as one event."""
    message = None
    if not full.error:
        message = AssembledMessage(
            content=full.content, function_call=full.function_call, tool_calls=full.tool_calls
        )
    return LLMStreamResponse(
        done=True,
        message=message,
        finish_reason=full.finish_reason,
        usage=full.usage,
        cost=full.cost,
        latency_ms=full.latency_ms,
        error=full.error,
        error_type=full.error_type,
        error_log=full.error_log,
        detail=full.detail,
        attempts=full.attempts,
        messages_sent=full.messages_sent,
        messages_dropped=full.messages_dropped,
        prompt_tokens_estimate=full.prompt_tokens_estimate,
        messages_summarised=full.messages_summarised,
        summary_id=full.summary_id,
        summary_tokens=full.summary_tokens,
        summary_error=full.summary_error,
    )


@dataclass(frozen=True)
class Recorded(Generic[T]):
    """A relayed stream's last event: the outcome as recorded, and what recording returned."""

    outcome: LLMOutcome
    stored: T


def client_disconnected(latency_ms: int) -> LLMFailure:
    return LLMFailure(
        model="",
        error_type="client_disconnected",
        error_log="The client disconnected before the reply was complete; nothing was stored.",
        latency_ms=latency_ms,
    )


def server_shutdown(latency_ms: int = 0) -> LLMFailure:
    """What a run its server's shutdown cut short is recorded (and its stream ends) with."""
    return LLMFailure(
        model="", error_type="interrupted", error_log=_SHUTDOWN_TEXT, latency_ms=latency_ms
    )


# What a stream cut short is recorded as, given how long it ran (ms).
CutShort = Callable[[int], LLMFailure]


async def relay_and_record(
    gateway: LLMGateway,
    call: LLMCall,
    record: Callable[[LLMOutcome], Awaitable[T]],
    cut_short: CutShort = client_disconnected,
) -> AsyncGenerator[StreamDelta | Recorded[T]]:
    """Relay the model's deltas, then record the outcome exactly once (see module doc).

    ``record`` also runs when the consumer goes away mid-stream (closing this generator or
    cancelling its task), with the ``cut_short`` failure (``client_disconnected``),
    shielded from the cancellation; the upstream response is closed first.
    """
    started = time.perf_counter()
    outcome: LLMOutcome | None = None
    try:
        async with tracked_stream(), aclosing(gateway.stream(call)) as events:
            async for event in events:
                if isinstance(event, StreamDelta):
                    yield event
                else:
                    outcome = event
    finally:
        if outcome is not None:
            recorded = outcome
        else:
            failure = cut_short(int((time.perf_counter() - started) * 1000))
            recorded = replace(failure, model=call.model)
        with anyio.CancelScope(shield=True):
            stored = await record(recorded)
    yield Recorded(recorded, stored)


async def relay_session_run(
    database: Database,
    gateway: LLMGateway,
    prepared: PreparedRun,
    *,
    cancel_on_lost_lease: bool = False,
    cut_short: CutShort = client_disconnected,
) -> AsyncGenerator[StreamDelta | Recorded[FinishedRun]]:
    """A claimed session run's stream: the model's deltas, then the run as recorded
    (``finish_run``: its ``outcome`` is ``interrupted`` if the run lost its lease, or
    ``cancelled``). The lease is renewed for as long as the stream lasts (with
    ``cancel_on_lost_lease``, losing it cancels the task reading this stream). Every
    streamed run on a session goes through here."""

    async def record(outcome: LLMOutcome) -> FinishedRun:
        try:
            return await finish_run(database, prepared, outcome)
        except StorageUnavailable as exc:  # the stream has begun: its last event says so
            return unstored_run(prepared, outcome, exc)

    if prepared.rejected is not None:  # the prompt cannot fit: no model call
        yield Recorded(prepared.rejected, await record(prepared.rejected))
        return
    session_id = prepared.loaded.session.id
    async with keep_lease(
        database,
        prepared.lease_seconds,
        session_id,
        prepared.run_id,
        cancel_on_loss=cancel_on_lost_lease,
    ):
        try:
            # ``record`` stores the run as it is once its summary is written.
            prepared = await summarised(database, gateway, prepared)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await record(replace(cut_short(0), model=prepared.call.model))
            raise
        async with aclosing(relay_and_record(gateway, prepared.call, record, cut_short)) as events:
            async for event in events:
                yield event


async def stream_run(
    database: Database,
    gateway: LLMGateway,
    prepared: PreparedRun,
    *,
    cancel_on_lost_lease: bool = False,
    cut_short: CutShort = client_disconnected,
) -> AsyncGenerator[str]:
    """A claimed session run's SSE frames: deltas, then the stored outcome."""
    relayed = relay_session_run(
        database, gateway, prepared, cancel_on_lost_lease=cancel_on_lost_lease, cut_short=cut_short
    )
    async with aclosing(relayed) as events:
        async for event in events:
            if isinstance(event, StreamDelta):
                yield delta_frame(event)
            else:
                yield sse_frame(last_event(event.stored.response))


def sse_frame(event: LLMStreamResponse) -> str:
    """``data: <json>``: the event without its empty top-level fields (nested nulls such
    as ``detail.message_uuid`` stay: they carry meaning)."""
    fields = event.model_dump(mode="json")
    data = json.dumps({k: v for k, v in fields.items() if v is not None}, separators=(",", ":"))
    return f"data: {data}\n\n"


def _content_frame_parts() -> tuple[str, str, str]:
    """The native frame of a text-only delta cut around its text's two places, so each
    such frame is three joins and one ``json.dumps`` (it is most of a stream's frames)."""
    marker = "\u0000chatmodel-text\u0000"
    frame = sse_frame(LLMStreamResponse(content=marker, raw_output=marker))
    before, middle, after = frame.split(json.dumps(marker))
    return before, middle, after


_CONTENT_FRAME = _content_frame_parts()


def delta_frame(delta: StreamDelta) -> str:
    """``sse_frame(_delta_event(delta))``, cheaply for a text-only delta."""
    if delta.content is not None and delta.function_call is None and delta.tool_calls is None:
        text = json.dumps(delta.content)
        before, middle, after = _CONTENT_FRAME
        return f"{before}{text}{middle}{text}{after}"
    return sse_frame(_delta_event(delta))


def native_closing(_: int) -> str:
    """A native stream's end when the server shuts down before the run's own end came
    (the run is recorded ``interrupted`` with the same text)."""
    failure = server_shutdown()
    ended = LLMResponse(error=True, error_type=failure.error_type, error_log=failure.error_log)
    return sse_frame(last_event(ended)) + SSE_TERMINATOR
