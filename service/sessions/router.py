"""Session and message routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from chatmodel_service.chat_models.schemas import MAX_NUMBER
from chatmodel_service.deps import AdminOnly, DbSession, ProjectId, SettingsDep
from chatmodel_service.limits import check_messages
from chatmodel_service.sessions import service
from chatmodel_service.sessions.schemas import (
    MessageList,
    MessagePage,
    MessagesAdd,
    SessionCreate,
    SessionOut,
    SessionPage,
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
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=500, description="next_cursor of the previous page.")
    ] = None,
) -> SessionPage:
    return await service.list_sessions(db, project, chat_model, limit, cursor)


@router.get("/{session_uuid}")
async def get_session(session_uuid: uuid.UUID, db: DbSession, project: ProjectId) -> SessionOut:
    return await service.get_session(db, project, session_uuid)


@router.get("/{session_uuid}/messages")
async def list_messages(
    session_uuid: uuid.UUID,
    db: DbSession,
    project: ProjectId,
    after: Annotated[
        int, Query(ge=0, le=MAX_NUMBER, description="Return messages with seq > after.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MessagePage:
    return await service.list_messages(db, project, session_uuid, after, limit)


@router.post("/{session_uuid}/messages", status_code=201)
async def add_messages(
    session_uuid: uuid.UUID,
    body: MessagesAdd,
    db: DbSession,
    project: ProjectId,
    settings: SettingsDep,
) -> MessageList:
    check_messages(settings, [m.content for m in body.messages], "messages")
    return await service.add_messages(db, project, session_uuid, body)
