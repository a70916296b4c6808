"""Session and message routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from chatmodel_service.chat_models.schemas import MAX_NUMBER
from chatmodel_service.deps import AdminOnly, DbSession, GatewayDep, ProjectId, SettingsDep
from chatmodel_service.limits import check_messages
from chatmodel_service.sessions import lifecycle, listing, service, summaries
from chatmodel_service.sessions.cursor import MessageWindow
from chatmodel_service.sessions.listing import SessionFilter
from chatmodel_service.sessions.metadata import MAX_USER_ID
from chatmodel_service.sessions.schemas import (
    MessageList,
    MessageOrder,
    MessagePage,
    MessagesAdd,
    SessionCreate,
    SessionFork,
    SessionOut,
    SessionPage,
    SummaryList,
)

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


@router.post("", status_code=201, responses={200: {"description": "The session already existed."}})
async def create_session(
    body: SessionCreate, db: DbSession, project: ProjectId, response: Response
) -> SessionOut:
    session, created = await service.create_session(db, project, body)
    if not created:
        response.status_code = 200
    return session


@router.get("", dependencies=[AdminOnly])
async def list_sessions(
    db: DbSession,
    project: ProjectId,
    chat_model: Annotated[
        str | None, Query(max_length=200, description="Only this chat model's sessions.")
    ] = None,
    version: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_NUMBER,
            description="Only the sessions pinned to this version number of chat_model "
            "(which it needs).",
        ),
    ] = None,
    user_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_USER_ID,
            description="Only the sessions whose metadata.user_id is this (an integer "
            "user_id matches its digits).",
        ),
    ] = None,
    created_after: Annotated[
        datetime | None,
        Query(
            description="Only sessions created at or after this time (ISO 8601; without "
            "an offset, UTC)."
        ),
    ] = None,
    created_before: Annotated[
        datetime | None,
        Query(
            description="Only sessions created before this time (ISO 8601; without an offset, UTC)."
        ),
    ] = None,
    has_errors: Annotated[
        bool | None,
        Query(
            description="true: only sessions with a failed run; false: only those without "
            "(cancelled runs are not failures)."
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Only sessions with a message whose content holds this text, "
            "ignoring case (SQLite folds ASCII letters only). Not indexed: it reads the "
            "messages of the sessions the other filters leave, newest first.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            max_length=500,
            description="next_cursor of the previous page (with the same filters).",
        ),
    ] = None,
) -> SessionPage:
    """Sessions newest first, a page at a time, matching every filter given; each with
    its message and run figures, user_id and first user message."""
    filters = SessionFilter(
        chat_model=chat_model,
        version=version,
        user_id=user_id,
        created_after=created_after,
        created_before=created_before,
        has_errors=has_errors,
        text=q,
    )
    return await listing.list_sessions(db, project, filters, limit, cursor)


@router.get("/{session_uuid}")
async def get_session(session_uuid: uuid.UUID, db: DbSession, project: ProjectId) -> SessionOut:
    return await service.get_session(db, project, session_uuid)


@router.delete("/{session_uuid}", status_code=204)
async def delete_session(
    session_uuid: uuid.UUID,
    db: DbSession,
    project: ProjectId,
    force: Annotated[
        bool,
        Query(description="Delete even while a run is in progress (it then stores nothing)."),
    ] = False,
) -> None:
    """Delete the session with its messages and runs; its forks keep existing."""
    await lifecycle.delete_session(db, project, session_uuid, force=force)


@router.post(
    "/{session_uuid}/fork",
    status_code=201,
    responses={200: {"description": "This fork (same session_uuid) already existed."}},
)
async def fork_session(
    session_uuid: uuid.UUID,
    body: SessionFork,
    db: DbSession,
    project: ProjectId,
    response: Response,
) -> SessionOut:
    """A new session on the same version and variables, holding copies of the messages up
    to and including ``at_message_uuid`` / ``at_seq`` (default: all of them)."""
    fork, created = await lifecycle.fork_session(db, project, session_uuid, body)
    if not created:
        response.status_code = 200
    return fork


@router.get("/{session_uuid}/messages")
async def list_messages(
    session_uuid: uuid.UUID,
    db: DbSession,
    project: ProjectId,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_NUMBER, description="Only messages with seq > after.")
    ] = None,
    before: Annotated[
        int | None,
        Query(ge=1, le=MAX_NUMBER, description="Only messages with seq < before."),
    ] = None,
    order: Annotated[
        MessageOrder | None,
        Query(
            description="Which end of the range pages are read from: asc, the oldest "
            "(follow next_after); desc, the newest (follow next_before). Default: desc when "
            "only before is given, else asc. A page's data is oldest first either way."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MessagePage:
    """A page of the session's messages, read forwards from the oldest or backwards from
    the newest; each page costs the same however long the history is."""
    window = MessageWindow(after=after, before=before, order=order, limit=limit)
    return await service.list_messages(db, project, session_uuid, window)


@router.get("/{session_uuid}/summaries")
async def list_summaries(
    session_uuid: uuid.UUID,
    db: DbSession,
    project: ProjectId,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SummaryList:
    """The summaries runs wrote of the session's older messages (context_strategy
    summarize), newest first: the first is the one runs send and extend. They are not
    messages of the conversation, which stays whole in GET .../messages."""
    return await summaries.list_summaries(db, project, session_uuid, limit)


@router.post("/{session_uuid}/messages", status_code=201)
async def add_messages(
    session_uuid: uuid.UUID,
    body: MessagesAdd,
    db: DbSession,
    project: ProjectId,
    settings: SettingsDep,
    gateway: GatewayDep,
) -> MessageList:
    check_messages(settings, [m.content for m in body.messages], "messages")
    return await service.add_messages(
        db, project, session_uuid, body, count_tokens=gateway.count_message_tokens
    )
