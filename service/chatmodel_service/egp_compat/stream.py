"""Streamed EGP completions: ``data: <piece>`` events and no ``[DONE]`` line (EGP's SDK
json-parses every ``data:`` line). The last event carries the finish reason,
``token_usage`` and the ``chatmodel`` object; a failure after the stream started arrives
as ``data: {"error", "detail", "field"}``.

The call itself streams through the OpenAI-compatible API's ``open_stream``: the first
piece is awaited before the response starts (a call that fails at once is an ordinary
error answer), and the run is recorded as a streamed call without a session.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

from pydantic import BaseModel

from chatmodel_service.egp_compat.errors import error_body
from chatmodel_service.egp_compat.replies import chat_completion, completion
from chatmodel_service.egp_compat.schemas import (
    AgentMessage,
    ChatCompletion,
    ChatCompletionContent,
    Completion,
    CompletionContent,
)
from chatmodel_service.llm.types import LLMFailure, LLMResult, StreamDelta
from chatmodel_service.openai_compat.chunks import OpenedStream
from chatmodel_service.openai_compat.errors import upstream_error
from chatmodel_service.openai_compat.schemas import CallDetail
from chatmodel_service.openai_compat.service import PreparedCompletion

Piece = Callable[[str], BaseModel]
Last = Callable[[LLMResult, CallDetail], BaseModel]


def _data(body: BaseModel) -> str:
    # exclude_unset: a piece has no token_usage or chatmodel field rather than nulls
    return f"data: {body.model_dump_json(exclude_unset=True)}\n\n"


def _text_piece(text: str) -> Completion:
    return Completion(completion=CompletionContent(text=text, finish_reason=None))


def _chat_piece(text: str) -> ChatCompletion:
    message = AgentMessage(role="agent", content=text, tool_request=None)
    return ChatCompletion(
        chat_completion=ChatCompletionContent(message=message, finish_reason=None)
    )


async def _events(
    prepared: PreparedCompletion, opened: OpenedStream, piece: Piece, last: Last
) -> AsyncIterator[str]:
    async with aclosing(opened.events()) as events:
        async for event in events:
            if isinstance(event, StreamDelta):
                if event.content:
                    yield _data(piece(event.content))
            elif isinstance(event.outcome, LLMFailure):
                failure = upstream_error(event.outcome, passthrough=prepared.passthrough)
                yield f"data: {json.dumps(error_body(failure))}\n\n"
            else:
                detail = prepared.detail(event.outcome, event.message_uuid)
                yield _data(last(event.outcome, detail))


def text_sse(prepared: PreparedCompletion, opened: OpenedStream) -> AsyncIterator[str]:
    """``{"completion": {"text", "finish_reason"}}`` events; the last one has empty text."""
    return _events(prepared, opened, _text_piece, lambda r, d: completion(r, d, text=""))


def chat_sse(prepared: PreparedCompletion, opened: OpenedStream) -> AsyncIterator[str]:
    """``{"chat_completion": {"message": {"role": "agent", "content", "tool_request"},
    "finish_reason"}}`` events; the last one has empty content (and any tool request)."""
    return _events(prepared, opened, _chat_piece, lambda r, d: chat_completion(r, d, text=""))
