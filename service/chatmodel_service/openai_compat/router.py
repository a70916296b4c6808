"""OpenAI-compatible routes. Like runs, the completion routes take the database factory, not
a request transaction: none is held while the model answers.

``Authorization: Bearer KEY`` or ``x-api-key: KEY`` (a client or admin key); a missing or
bad key is a 401 in OpenAI's error shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Path
from fastapi.responses import Response
from pydantic import BaseModel

from chatmodel_service.db import Database
from chatmodel_service.deps import (
    BackgroundRunsDep,
    CallerDep,
    DatabaseDep,
    DbSession,
    GatewayDep,
    ProjectId,
    SettingsDep,
)
from chatmodel_service.limits import check_functions, check_messages
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import LLMResult
from chatmodel_service.openai_compat import model_cards, responses, service
from chatmodel_service.openai_compat.chunks import (
    SSE_TERMINATOR,
    OpenedStream,
    chat_sse,
    open_stream,
    openai_closing,
    text_sse,
)
from chatmodel_service.openai_compat.errors import OpenAIBodyLimit, OpenAIRoute
from chatmodel_service.openai_compat.schemas import (
    CallDetail,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    CompletionRequest,
    ContentPart,
    ErrorBody,
    ModelCard,
    ModelList,
    SamplingFields,
    TextCompletion,
    TextCompletionChunk,
)
from chatmodel_service.openai_compat.service import PreparedCompletion
from chatmodel_service.responses import EventStream, schema_response
from chatmodel_service.runs import BackgroundRuns, logged

router = APIRouter(prefix="/v1", tags=["openai compatible"], route_class=OpenAIRoute)

SessionHeader = Annotated[
    str | None,
    Header(
        alias="X-Session-Id",
        description="Continue (or start) this session: the request repeats its history.",
    ),
]
# "4XX" replaces the app-wide declaration of the service's own error body: every client
# error of these routes (a 405 or 422 included) answers in OpenAI's shape.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 404, 409, 413, 429, 502, 504, "4XX")
}


def _responses(body: type[Any], chunk: type[Any]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "model": body,
            "description": f"A {body.__name__}, or with `stream: true` a text/event-stream of "
            f"{chunk.__name__} events ending with `data: [DONE]`.",
            "content": {"text/event-stream": {"schema": chunk.model_json_schema()}},
        },
        **ERRORS,
    }


def _text(content: str | list[ContentPart] | None) -> str | None:
    if isinstance(content, list):
        return "".join(part.text or "" for part in content)
    return content


def _headers(prepared: PreparedCompletion) -> dict[str, str]:
    session = prepared.session_uuid
    return {"X-Session-Id": str(session)} if session else {}


async def _answer(
    database: Database,
    gateway: LLMGateway,
    prepared: PreparedCompletion,
    body: SamplingFields,
    key_name: str | None,
    background_runs: BackgroundRuns,
    completion: Callable[[PreparedCompletion, LLMResult, CallDetail], BaseModel],
    sse: Callable[[PreparedCompletion, OpenedStream, bool], AsyncIterator[str]],
) -> Response:
    """Call the model for a prepared call (recorded with the caller's ``key_name``) and
    answer: with ``stream: true`` as ``sse`` events, else as one ``completion``. A call
    on a session names it in ``X-Session-Id``, and its stream is kept for resuming
    (``GET /v1/runs/{uuid}/events``, the run named in ``X-Run-Id``)."""
    prepared = replace(prepared, key_name=key_name)
    headers = _headers(prepared)
    if body.stream:
        opened = await open_stream(database, gateway, prepared, background_runs.cut_short)
        frames = sse(prepared, opened, body.include_usage)
        session_run = prepared.recorded_session_run()
        if session_run is not None:
            events = background_runs.events.open(session_run.run_id)
            frames = logged(frames, events, SSE_TERMINATOR)
            headers = headers | {"X-Run-Id": str(session_run.run_id)}
        return EventStream(frames, headers, closing=openai_closing)
    result, detail = await service.complete(database, gateway, prepared)
    return schema_response(completion(prepared, result, detail), headers)


@router.post(
    "/chat/completions",
    response_model=None,
    responses=_responses(ChatCompletion, ChatCompletionChunk),
)
async def chat_completions(
    body: ChatCompletionRequest,
    database: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    project: ProjectId,
    caller: CallerDep,
    background_runs: BackgroundRunsDep,
    session: SessionHeader = None,
) -> Response:
    check_messages(settings, [_text(m.content) for m in body.messages], "messages")
    check_functions(settings, body.functions, "functions")
    check_functions(settings, body.tools, "tools")
    prepared = await service.prepare_chat(database, gateway, settings, project, body, session)
    return await _answer(
        database,
        gateway,
        prepared,
        body,
        caller.key_name,
        background_runs,
        responses.chat_completion,
        chat_sse,
    )


@router.post(
    "/completions", response_model=None, responses=_responses(TextCompletion, TextCompletionChunk)
)
async def completions(
    body: CompletionRequest,
    database: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    project: ProjectId,
    caller: CallerDep,
    background_runs: BackgroundRunsDep,
    session: SessionHeader = None,
) -> Response:
    # Never on a session: prepare_text refuses X-Session-Id (so _answer sends no such header).
    prepared = await service.prepare_text(database, gateway, settings, project, body, session)
    return await _answer(
        database,
        gateway,
        prepared,
        body,
        caller.key_name,
        background_runs,
        responses.text_completion,
        text_sse,
    )


@router.get("/models", responses=ERRORS)
async def list_models(db: DbSession, project: ProjectId) -> ModelList:
    """The chat models a call can name: those with a published version."""
    return await model_cards.list_models(db, project)


@router.get("/models/{model}", responses=ERRORS)
async def get_model(
    model: Annotated[str, Path(max_length=200)], db: DbSession, project: ProjectId
) -> ModelCard:
    return await model_cards.get_model(db, project, model)


def install(app: FastAPI) -> None:
    """Mount the routes, and the 413 check that answers oversized bodies in their shape."""
    app.include_router(router)
    app.add_middleware(OpenAIBodyLimit)
