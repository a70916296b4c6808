"""Where an LLM Engine completion happens: the request read as ``POST /v1/completions``
reads its own, then called and recorded through the OpenAI-compatible API's service
functions (``openai_compat.service``, ``openai_compat.chunks``), never a store of its own.

``model_endpoint_name`` names a chat model of the project (or, with
``CHATMODEL_OPENAI_PASSTHROUGH`` on, a raw LiteLLM model string), exactly as ``model``
does there; the prompt is one user message after the version's system prompt; the call
is recorded as a run without a session, whose uuid is the ``request_id``.

Parameters this server cannot honour are a 400 naming them, not silently dropped, since
the caller relies on what they promise (a JSON reply, token log probabilities): guided
decoding (``guided_json``, ``guided_regex``, ``guided_choice``, ``guided_grammar``),
``return_token_log_probs: true``, ``top_k`` (LiteLLM's OpenAI-style call has none; ``-1``,
"all tokens", is accepted), ``include_stop_str_in_output: true`` and
``skip_special_tokens: false``. The values the SDK sends by default mean what this server
does anyway and are accepted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import replace

from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.errors import InvalidInput
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import LLMFailure, LLMResult, StreamDelta
from chatmodel_service.llm_engine_compat.schemas import (
    CompletionOutput,
    CompletionStreamOutput,
    CompletionStreamV1Response,
    CompletionSyncV1Response,
    CompletionV1Request,
    StreamError,
    StreamErrorContent,
)
from chatmodel_service.openai_compat import service as openai_service
from chatmodel_service.openai_compat.chunks import OpenedStream, open_stream
from chatmodel_service.openai_compat.errors import upstream_error
from chatmodel_service.openai_compat.schemas import CompletionRequest
from chatmodel_service.openai_compat.service import PreparedCompletion

_GUIDED = ("guided_json", "guided_regex", "guided_choice", "guided_grammar")


def refuse_unhonoured(body: CompletionV1Request) -> None:
    """A 400 for the first parameter whose promise this server cannot keep."""
    for name in _GUIDED:
        if getattr(body, name) is not None:
            raise InvalidInput(
                f"{name}: guided decoding is not supported by this server; leave it out.",
                field=name,
            )
    refused = {
        "return_token_log_probs": (
            body.return_token_log_probs is True,
            "token log probabilities are not available from this server",
        ),
        "top_k": (body.top_k not in (None, -1), "top_k sampling is not supported"),
        "include_stop_str_in_output": (
            body.include_stop_str_in_output is True,
            "the stop sequence is never included in the output",
        ),
        "skip_special_tokens": (
            body.skip_special_tokens is False,
            "special tokens are never included in the output",
        ),
    }
    for name, (unhonoured, why) in refused.items():
        if unhonoured:
            raise InvalidInput(f"{name}: {why}; leave it out.", field=name)


def _as_text_completion(model: str, body: CompletionV1Request, stream: bool) -> CompletionRequest:
    return CompletionRequest.model_validate(
        {
            "model": model,
            "prompt": body.prompt,
            "max_tokens": body.max_new_tokens,
            "temperature": body.temperature,
            "top_p": body.top_p,
            "stop": body.stop_sequences,
            "presence_penalty": body.presence_penalty,
            "frequency_penalty": body.frequency_penalty,
            "stream": stream,
        }
    )


async def _prepare(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    project_id: uuid.UUID,
    model: str,
    body: CompletionV1Request,
    *,
    stream: bool,
    key_name: str | None,
) -> PreparedCompletion:
    refuse_unhonoured(body)
    request = _as_text_completion(model, body, stream)
    prepared = await openai_service.prepare_text(
        database, gateway, settings, project_id, request, None
    )
    return replace(prepared, key_name=key_name)


def _request_id(prepared: PreparedCompletion) -> str:
    return str(prepared.call_id)


async def complete(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    project_id: uuid.UUID,
    model: str,
    body: CompletionV1Request,
    key_name: str | None,
) -> CompletionSyncV1Response:
    """One completion, recorded as a run; a failed call raises its error."""
    prepared = await _prepare(
        database, gateway, settings, project_id, model, body, stream=False, key_name=key_name
    )
    result, _ = await openai_service.complete(database, gateway, prepared)
    return CompletionSyncV1Response(
        request_id=_request_id(prepared),
        output=CompletionOutput(
            text=result.content or "",
            num_prompt_tokens=result.prompt_tokens,
            num_completion_tokens=result.completion_tokens or 0,
        ),
    )


async def open_completion_stream(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    project_id: uuid.UUID,
    model: str,
    body: CompletionV1Request,
    key_name: str | None,
) -> AsyncIterator[str]:
    """Start a streamed completion. A call that fails before its first piece raises its
    error here (an ordinary error answer); the events follow as ``data:`` lines."""
    prepared = await _prepare(
        database, gateway, settings, project_id, model, body, stream=True, key_name=key_name
    )
    opened = await open_stream(database, gateway, prepared)
    return _events(prepared, opened)


def _data(event: CompletionStreamV1Response) -> str:
    return f"data: {event.model_dump_json()}\n\n"


def _piece(request_id: str, text: str) -> str:
    output = CompletionStreamOutput(text=text, finished=False)
    return _data(CompletionStreamV1Response(request_id=request_id, output=output))


def _last_piece(request_id: str, text: str, result: LLMResult) -> str:
    output = CompletionStreamOutput(
        text=text,
        finished=True,
        num_prompt_tokens=result.prompt_tokens,
        num_completion_tokens=result.completion_tokens or 0,
    )
    return _data(CompletionStreamV1Response(request_id=request_id, output=output))


def _failure(prepared: PreparedCompletion, failure: LLMFailure) -> str:
    error = upstream_error(failure, passthrough=prepared.passthrough)
    content = StreamErrorContent(
        error=failure.error_log, timestamp=dt.datetime.now(dt.UTC).isoformat()
    )
    return _data(
        CompletionStreamV1Response(
            request_id=_request_id(prepared),
            output=None,
            error=StreamError(status_code=error.status_code, content=content),
        )
    )


async def _events(prepared: PreparedCompletion, opened: OpenedStream) -> AsyncIterator[str]:
    """LLM Engine's events: each piece of text with ``finished: false``, the last one
    with ``finished: true`` and the token counts (so each piece is sent once the next
    one has arrived), or after the pieces so far a failure event. Nothing else follows."""
    request_id = _request_id(prepared)
    held: str | None = None  # the newest piece, not sent yet: it may be the last
    async with aclosing(opened.events()) as events:
        async for event in events:
            if isinstance(event, StreamDelta):
                if event.content:
                    if held is not None:
                        yield _piece(request_id, held)
                    held = event.content
            elif isinstance(event.outcome, LLMFailure):
                if held is not None:
                    yield _piece(request_id, held)
                yield _failure(prepared, event.outcome)
            else:
                yield _last_piece(request_id, held or "", event.outcome)
