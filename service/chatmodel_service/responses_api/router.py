"""The Responses and Conversations API routes (``/v1/responses``, ``/v1/conversations``),
for OpenAI's SDKs. Errors answer in OpenAI's shape, as on the OpenAI-compatible routes
(a busy conversation: 409 ``session_busy``). Creating a response takes the database
factory, not a request transaction: none is held while the model answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from chatmodel_service.deps import (
    BackgroundRunsDep,
    CallerDep,
    DatabaseDep,
    DbSession,
    GatewayDep,
    ProjectId,
    SettingsDep,
)
from chatmodel_service.openai_compat import service as completions
from chatmodel_service.openai_compat.chunks import open_stream
from chatmodel_service.openai_compat.errors import OpenAIRoute
from chatmodel_service.openai_compat.schemas import ErrorBody
from chatmodel_service.responses import EventStream, schema_response
from chatmodel_service.responses_api import conversations, service
from chatmodel_service.responses_api.schemas import (
    ConversationCreate,
    ConversationDeleted,
    ConversationObject,
    ConversationUpdate,
    Item,
    ItemPage,
    ItemsCreate,
    ResponseCreate,
    ResponseDeleted,
    ResponseObject,
)
from chatmodel_service.responses_api.stream import (
    background_events,
    response_events,
    responses_closing,
)
from chatmodel_service.runs import logged

router = APIRouter(prefix="/v1", tags=["responses"], route_class=OpenAIRoute)

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 404, 409, 413, 429, 502, 504, "4XX")
}
Id = Annotated[str, Path(max_length=200)]
Limit = Annotated[int, Query(ge=1, le=100)]
Order = Literal["asc", "desc"]
After = Annotated[str | None, Query(max_length=200)]


@router.post(
    "/responses",
    response_model=None,
    responses={
        200: {
            "model": ResponseObject,
            "description": "A Response, or with `stream: true` a text/event-stream of "
            "Responses stream events ending with `response.completed` (or `.failed`, "
            "`.incomplete`).",
        },
        **ERRORS,
    },
)
async def create_response(
    body: ResponseCreate,
    database: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    project: ProjectId,
    caller: CallerDep,
    background_runs: BackgroundRunsDep,
) -> Response:
    prepared = await service.prepare_response(
        database, gateway, settings, project, body, caller.key_name
    )
    run = prepared.completion.recorded_session_run()
    if body.background and run is not None:  # stored: checked by prepare_response
        run = replace(run, keep_result=True)
        if not body.stream:
            background_runs.start(database, gateway, run)
            return schema_response(service.started_response(prepared))
        produced = background_events(
            database, gateway, prepared, project, background_runs.cut_short
        )
        events = background_runs.start_frames(run, produced, "responses")
        # The stream goes on without its reader: resume it with starting_after.
        return EventStream(background_runs.events.follow_live(events))
    if body.stream:
        opened = await open_stream(
            database, gateway, prepared.completion, background_runs.cut_short
        )
        frames: AsyncIterator[str] = response_events(prepared, opened)
        if run is not None:
            frames = logged(frames, background_runs.events.open(run.run_id), "")
        return EventStream(frames, closing=responses_closing)
    result, _ = await completions.complete(database, gateway, prepared.completion)
    return schema_response(service.completed_response(prepared, result))


@router.get(
    "/responses/{response_id}",
    response_model=None,
    responses={
        200: {
            "model": ResponseObject,
            "description": "The Response; with `stream=true` its stream events after "
            "`starting_after` (all without it), live while it runs, to its end.",
        },
        **ERRORS,
    },
)
async def get_response(
    response_id: Id,
    database: DatabaseDep,
    project: ProjectId,
    background_runs: BackgroundRunsDep,
    stream: bool = False,
    starting_after: Annotated[int | None, Query(ge=-1, le=10**9)] = None,
) -> Response:
    if not stream:
        return schema_response(await service.get_response(database, project, response_id))
    run_id = await service.streamed_run(database, project, response_id)
    after = -1 if starting_after is None else starting_after
    return EventStream(background_runs.events.follow(run_id, project, after, "responses"))


@router.post("/responses/{response_id}/cancel", responses=ERRORS)
async def cancel_response(
    response_id: Id, database: DatabaseDep, project: ProjectId, background_runs: BackgroundRunsDep
) -> ResponseObject:
    """Stop a response in progress (a background one, or one whose caller still waits):
    `cancelled`, nothing stored for its output. A finished one is answered unchanged."""
    return await service.cancel_response(database, background_runs, project, response_id)


@router.delete("/responses/{response_id}", responses=ERRORS)
async def delete_response(
    response_id: Id, database: DatabaseDep, project: ProjectId
) -> ResponseDeleted:
    return await service.delete_response(database, project, response_id)


@router.get("/responses/{response_id}/input_items", responses=ERRORS)
async def list_input_items(
    response_id: Id,
    database: DatabaseDep,
    project: ProjectId,
    after: After = None,
    limit: Limit = 20,
    order: Order = "desc",
) -> ItemPage:
    return await service.input_items(
        database, project, response_id, after=after, limit=limit, order=order
    )


@router.post("/conversations", responses=ERRORS)
async def create_conversation(
    body: ConversationCreate,
    db: DbSession,
    settings: SettingsDep,
    gateway: GatewayDep,
    project: ProjectId,
) -> ConversationObject:
    return await conversations.create_conversation(
        db, settings, project, body, gateway.count_message_tokens
    )


@router.get("/conversations/{conversation_id}", responses=ERRORS)
async def get_conversation(
    conversation_id: Id, db: DbSession, project: ProjectId
) -> ConversationObject:
    return await conversations.get_conversation(db, project, conversation_id)


@router.post("/conversations/{conversation_id}", responses=ERRORS)
async def update_conversation(
    conversation_id: Id, body: ConversationUpdate, db: DbSession, project: ProjectId
) -> ConversationObject:
    return await conversations.update_conversation(db, project, conversation_id, body.metadata)


@router.delete("/conversations/{conversation_id}", responses=ERRORS)
async def delete_conversation(
    conversation_id: Id, db: DbSession, project: ProjectId
) -> ConversationDeleted:
    return await conversations.delete_conversation(db, project, conversation_id)


@router.post("/conversations/{conversation_id}/items", responses=ERRORS)
async def add_items(
    conversation_id: Id,
    body: ItemsCreate,
    db: DbSession,
    settings: SettingsDep,
    gateway: GatewayDep,
    project: ProjectId,
) -> ItemPage:
    return await conversations.add_items(
        db, settings, project, conversation_id, body.items, gateway.count_message_tokens
    )


@router.get("/conversations/{conversation_id}/items", responses=ERRORS)
async def list_items(
    conversation_id: Id,
    db: DbSession,
    project: ProjectId,
    after: After = None,
    limit: Limit = 20,
    order: Order = "desc",
) -> ItemPage:
    return await conversations.list_items(
        db, project, conversation_id, after=after, limit=limit, order=order
    )


@router.get("/conversations/{conversation_id}/items/{item_id}", responses=ERRORS)
async def get_item(conversation_id: Id, item_id: Id, db: DbSession, project: ProjectId) -> Item:
    return await conversations.get_item(db, project, conversation_id, item_id)


@router.delete("/conversations/{conversation_id}/items/{item_id}", responses=ERRORS)
async def delete_item(
    conversation_id: Id, item_id: Id, db: DbSession, project: ProjectId
) -> ConversationObject:
    return await conversations.delete_item(db, project, conversation_id, item_id)
